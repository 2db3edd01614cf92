// ffibrokerd: the sandboxed FFI broker daemon.
//
// Reads the policy, listens (unix socket by default), and serves
// ffibroker.v1.Broker until SIGTERM/SIGINT. See README.md.
#include <cstdio>

#include "common/flags.h"
#include "common/log.h"
#include "absl/strings/str_cat.h"
#include "daemon/daemon.h"
#include "daemon/worker_uid_pool.h"

int main(int argc, char** argv) {
  using namespace ffibroker;
  BlockDaemonSignals();  // before any thread exists

  DaemonOptions options;
  options.policy_path = "/etc/ffibroker/policy.textproto";
  std::string log_level = "info";
  int64_t threads = options.threads;
  FlagSet flags("ffibrokerd [flags]\n\nServes ffibroker.v1.Broker: calls into native libraries, each run in a\nconfined ffibroker-worker process.");
  flags.String("policy", &options.policy_path, "policy file (text-format ffibroker.v1.Policy)");
  flags.String("listen", &options.listen,
               "listen address, unix:/ABS/PATH or tcp:HOST:PORT (default: the policy's, "
               "else unix:/run/ffibroker/ffibrokerd.sock)");
  flags.String("worker", &options.worker_path,
               "path of ffibroker-worker (default: beside ffibrokerd)");
  flags.String("profiles", &options.profiles_dir,
               "directory of confinement profiles (default: profiles/ beside the policy)");
  flags.String("disable-layers", &options.disable_layers,
               "namespace layers workers must not use, comma-separated (user_namespace, "
               "mount_namespace, pid_namespace, net_namespace, ipc_namespace, uts_namespace)");
  flags.String("tls-cert", &options.tls_cert_path, "PEM certificate chain for a TCP listener");
  flags.String("tls-key", &options.tls_key_path, "PEM private key for a TCP listener");
  flags.String("state-dir", &options.state_dir,
               "directory for durable state: the token journal (kept only when the "
               "policy sets token_secret_file)");
  flags.Int("threads", &threads, "threads serving requests");
  flags.String("worker-uids", &options.worker_uids,
               absl::StrCat("host uids FIRST-LAST a root daemon gives its workers, one each "
                            "(default: ", kDefaultWorkerUids, "; see docs/confinement.md)"));
  flags.Duration("shutdown-grace", &options.shutdown_grace,
                 "how long in-flight calls may finish after SIGTERM");
  flags.String("log-level", &log_level, "debug, info, warning or error");
  absl::StatusOr<std::vector<std::string>> rest = flags.Parse(argc, argv);
  if (flags.help_requested()) {
    std::fputs(flags.Usage().c_str(), stdout);
    return 0;
  }
  if (!rest.ok() || !rest->empty()) {
    std::fprintf(stderr, "ffibrokerd: %s\n",
                 rest.ok() ? "unexpected positional arguments (see --help)"
                           : std::string(rest.status().message()).c_str());
    return 2;
  }
  LogLevel level = log_level == "debug"     ? LogLevel::kDebug
                   : log_level == "warning" ? LogLevel::kWarning
                   : log_level == "error"   ? LogLevel::kError
                                            : LogLevel::kInfo;
  InitLogging("ffibrokerd", level);
  if (threads < 1 || threads > 1024) {
    std::fprintf(stderr, "ffibrokerd: --threads must be in 1..1024\n");
    return 2;
  }
  options.threads = static_cast<int>(threads);

  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  if (!daemon.ok()) {
    LOG_ERROR("cannot start: %s", daemon.status().ToString());
    return 1;
  }
  (*daemon)->RunUntilSignal();
  return 0;
}
