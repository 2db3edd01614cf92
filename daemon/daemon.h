// Daemon: ffibrokerd's parts wired together (policy, token authority, audit
// log, sessions, executor, gRPC server with health checking and reflection,
// the unix-socket acceptor and the optional mTLS listener) and their
// lifecycle. SIGHUP reloads the policy atomically, and the token keyring. Under systemd it takes
// its listeners from socket activation and reports its state with
// sd_notify (activated_listeners.h, service_notifier.h).
//
// Not thread-safe; owned and driven by main().
//
//   ASSIGN_OR_RETURN(auto daemon, Daemon::Start(options));
//   daemon->RunUntilSignal();   // SIGTERM/SIGINT: graceful stop
#ifndef FFIBROKER_DAEMON_DAEMON_H_
#define FFIBROKER_DAEMON_DAEMON_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/audit_log.h"
#include "daemon/authenticator.h"
#include "daemon/broker_service.h"
#include "daemon/executor.h"
#include "daemon/metrics_server.h"
#include "daemon/peer_acceptor.h"
#include "daemon/pinned_library.h"
#include "daemon/prestart_pool.h"
#include "daemon/policy_holder.h"
#include "daemon/profiles.h"
#include "common/shm_ring.h"
#include "daemon/worker_launcher.h"
#include "daemon/worker_watcher.h"
#include "daemon/service_notifier.h"
#include "daemon/session_manager.h"
#include "daemon/tcp_handover.h"
#include "daemon/token_authority.h"
#include "daemon/token_service.h"

namespace ffibroker {

struct DaemonOptions {
  std::string policy_path;
  std::string listen;          // overrides the policy's when non-empty
  std::string worker_path;     // ffibroker-worker; default: beside ffibrokerd
  std::string profiles_dir;    // confinement profiles; default: profiles/ beside the policy
  // Namespace layers not to use, comma-separated ("net_namespace,..."): for
  // hosts where they are unwanted. Reported as refused, like the kernel's.
  std::string disable_layers;
  std::string tls_cert_path;   // PEM; required for a non-loopback TCP listener
  std::string tls_key_path;
  // Where durable state lives (the token journal, used when the policy has
  // a token_secret_file). The default is here and only here.
  std::string state_dir = "/var/lib/ffibroker";
  int threads = 16;
  // How many of those threads one principal's blocking requests (opens,
  // grants, closes, status) may hold at once (--threads-per-principal);
  // 0: a quarter of `threads`, at least 1.
  int threads_per_principal = 0;
  // Host uids for workers, "FIRST-LAST" (--worker-uids): a root daemon
  // gives each worker one of its own. Empty: kDefaultWorkerUids.
  std::string worker_uids;
  // Workers started and locked down ahead, per confinement profile in use
  // (--prestart-workers; 0: none), and how many such starts run at once
  // (--prestart-refill). See docs/prestart.md.
  int prestart_workers = kDefaultPrestartWorkers;
  int prestart_refill = kDefaultPrestartRefill;
  // The two shared-memory rings of each worker's channel, KiB each
  // (--channel-ring-kib; a power of two; 0: the socket alone). See
  // docs/worker-protocol.md.
  int channel_ring_kib = kDefaultRingBytes / 1024;
  // Connections one local user may hold open on the unix socket at once
  // (--max-connections-per-user); all users together hold at most half
  // the daemon's file descriptors (RLIMIT_NOFILE). See peer_acceptor.h.
  int max_connections_per_user = 128;
  absl::Duration shutdown_grace = absl::Seconds(5);
  // Where to serve metrics over HTTP (--metrics-listen, "HOST:PORT" or
  // "PORT" for 127.0.0.1:PORT). Empty: not served (unless socket activation
  // passes a socket named "metrics").
  std::string metrics_listen;
};

class Daemon {
 public:
  // Loads the policy, starts the server. The calling thread must have
  // SIGINT, SIGTERM and SIGHUP blocked (see BlockDaemonSignals) so every
  // thread started here inherits that mask.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const DaemonOptions& options);
  ~Daemon();

  // Serves until SIGTERM or SIGINT, expiring idle sessions once a second;
  // then stops accepting, lets in-flight RPCs finish within the grace period,
  // kills and reaps every worker. SIGHUP reloads the policy: a valid new one
  // replaces the old atomically for new sessions and authentication; an
  // invalid one is logged and the old one stays.
  void RunUntilSignal();

  const std::string& address() const { return address_; }

 private:
  Daemon() = default;
  void Stop();
  void ReloadPolicy();
  // SIGHUP with a token keyring: re-reads it (a rotation); an invalid one
  // is logged and the old keys stay.
  void ReloadTokenKeys();
  // The STATUS= line for systemd: where it serves, which policy.
  std::string ServingStatus() const;

  DaemonOptions options_;
  std::unique_ptr<PolicyHolder> policies_;
  std::unique_ptr<TokenAuthority> token_authority_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<PinnedLibraries> pins_;
  std::unique_ptr<ProfileSet> profiles_;
  std::unique_ptr<WorkerWatcher> watcher_;  // outlives every worker
  std::unique_ptr<WorkerLauncher> launcher_;
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<TokenService> token_service_;
  std::unique_ptr<PeerAcceptor> acceptor_;
  std::unique_ptr<TcpHandover> tcp_handover_;  // a TCP socket from socket activation
  ServiceNotifier notifier_;
  std::unique_ptr<MetricsServer> metrics_server_;
  std::unique_ptr<Authenticator> authenticator_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<BrokerService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  // The token key files of the policy at start (fixed until a restart).
  std::string token_keyring_path_;
  std::string token_secret_path_;
};

// Blocks the signals the daemon handles synchronously and ignores SIGPIPE
// (writes to a peer that is gone fail with EPIPE). Call first in main().
void BlockDaemonSignals();

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_DAEMON_H_
