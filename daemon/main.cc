// ffibrokerd: the sandboxed FFI broker daemon.
//
// Reads the policy, listens (unix socket by default), and serves
// ffibroker.v1.Broker until SIGTERM/SIGINT. See README.md.
#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "common/error_reason.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/cli_flags.h"
#include "common/log.h"
#include "common/shm_ring.h"
#include "daemon/daemon.h"
#include "daemon/journal_log.h"
#include "daemon/worker_uid_pool.h"

int main(int argc, char** argv) {
  using namespace ffibroker;
  BlockDaemonSignals();  // before any thread exists
#ifndef FFIBROKER_SANITIZE
  // Debian's absl is built without NDEBUG, so every Mutex acquisition
  // feeds a global lock-order graph and a potential cycle aborts the
  // daemon. The sanitizer build keeps the check (tests catch lock-order
  // bugs there); a production daemon must not abort on a suspicion, nor
  // pay a global lock per acquisition.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif

  DaemonOptions options;
  options.policy_path = FFIBROKER_SYSCONFDIR "/ffibroker/policy.textproto";
  CLI::App app(
      "Serves ffibroker.v1.Broker: calls into native libraries, each run in a confined\n"
      "ffibroker-worker process. See ffibrokerd(8).",
      "ffibrokerd");
  app.add_option("--policy", options.policy_path, "policy file (text-format ffibroker.v1.Policy)")
      ->capture_default_str();
  app.add_option("--listen", options.listen,
                 "listen address, unix:/ABS/PATH or tcp:HOST:PORT (default: the policy's, "
                 "else unix:/run/ffibroker/ffibrokerd.sock)");
  app.add_option("--worker", options.worker_path,
                 "path of ffibroker-worker (default: beside ffibrokerd)");
  app.add_option("--profiles", options.profiles_dir,
                 "directory of confinement profiles (default: profiles/ beside the policy)");
  app.add_option("--disable-layers", options.disable_layers,
                 "namespace layers workers must not use, comma-separated (user_namespace, "
                 "mount_namespace, pid_namespace, net_namespace, ipc_namespace, uts_namespace)");
  app.add_option("--tls-cert", options.tls_cert_path, "PEM certificate chain for a TCP listener");
  app.add_option("--tls-key", options.tls_key_path, "PEM private key for a TCP listener");
  app.add_option("--state-dir", options.state_dir,
                 "directory for durable state: the token journal (kept only when the "
                 "policy sets token_secret_file)")
      ->capture_default_str();
  app.add_option("--threads", options.threads,
                 "threads for requests that block (grants, token exchanges, session "
                 "creation), and as many again for the worker starts of opens")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--max-connections-per-user", options.max_connections_per_user,
                 "connections one local user may hold open on the unix socket at once; one "
                 "more is closed as it arrives (all users together: half the file "
                 "descriptors the daemon may open)")
      ->capture_default_str()
      ->check(CLI::Range(1, 65536));
  app.add_option("--threads-per-principal", options.threads_per_principal,
                 "how many threads of each of those pools one principal may hold at once; "
                 "the rest of its requests wait their turn "
                 "(default: a quarter of --threads, at least 1)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--worker-uids", options.worker_uids,
                 "host uids FIRST-LAST a root daemon gives its workers, one each "
                 "(see docs/confinement.md)")
      ->default_str(kDefaultWorkerUids);
  app.add_option("--prestart-workers", options.prestart_workers,
                 "workers started and locked down ahead of need, per confinement profile in "
                 "use; OpenLibrary and crash replacements hand them their library "
                 "(0: none; see docs/prestart.md)")
      ->check(CLI::Range(0, kMaxPrestartWorkers))
      ->capture_default_str();
  app.add_option("--prestart-refill", options.prestart_refill,
                 "how many pre-starts may run at once, in the background")
      ->check(CLI::Range(1, kMaxPrestartRefill))
      ->capture_default_str();
  app.add_option("--channel-ring-kib", options.channel_ring_kib,
                 "size of each of the two shared-memory rings of a worker's channel, in KiB: "
                 "a power of two from 64 to 32768, or 0 to send every message over the "
                 "channel's socket (see docs/worker-protocol.md)")
      ->check(CLI::Validator(
          [](const std::string& text) -> std::string {
            int kib = std::atoi(text.c_str());
            if (text == "0" || (kib >= static_cast<int>(kMinRingBytes / 1024) &&
                                kib <= static_cast<int>(kMaxRingBytes / 1024) &&
                                (kib & (kib - 1)) == 0 && std::to_string(kib) == text)) {
              return "";
            }
            return absl::StrCat("must be 0, or a power of two from ", kMinRingBytes / 1024,
                                " to ", kMaxRingBytes / 1024);
          },
          "KIB"))
      ->capture_default_str();
  app.add_option("--metrics-listen", options.metrics_listen,
                 "serve Prometheus metrics at http://ADDRESS/metrics: HOST:PORT, or PORT "
                 "for 127.0.0.1:PORT (default: not served)");
  AddDurationFlag(app, "--shutdown-grace", &options.shutdown_grace,
                  "how long in-flight calls may finish after SIGTERM");
  const std::map<std::string, LogLevel> levels = {{"debug", LogLevel::kDebug},
                                                  {"info", LogLevel::kInfo},
                                                  {"warning", LogLevel::kWarning},
                                                  {"error", LogLevel::kError}};
  std::string level = "info";
  app.add_option("--log-level", level, "the least important messages logged")
      ->check(CLI::IsMember(levels))
      ->capture_default_str();
  const std::map<std::string, LogTarget> targets = {{"auto", LogTarget::kAuto},
                                                    {"journal", LogTarget::kJournal},
                                                    {"stderr", LogTarget::kStderr}};
  std::string target = "auto";
  app.add_option("--log-target", target,
                 "where log lines go: journal (structured fields, sd_journal_send), stderr "
                 "(plain lines), or auto: the journal when JOURNAL_STREAM names stderr "
                 "(under systemd), else stderr")
      ->check(CLI::IsMember(targets))
      ->capture_default_str();
  if (std::optional<int> exit_code = ParseFlags(app, argc, argv)) return *exit_code;
  InitLogging("ffibrokerd", levels.at(level));
  InstallLogTarget(targets.at(target), "ffibrokerd");

  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(options);
  if (!daemon.ok()) {
    LOG_ERROR("cannot start: %s", StatusText(daemon.status()));
    return 1;
  }
  (*daemon)->RunUntilSignal();
  return 0;
}
