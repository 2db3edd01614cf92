// ServiceNotifier: tells the service manager (systemd, Type=notify) how the
// daemon is doing, through libsystemd's sd_notify.
//
//   READY=1     once every listener accepts connections (and again after a
//               reload), with a STATUS= line saying where it listens
//   RELOADING=1 when SIGHUP starts a policy reload (with MONOTONIC_USEC)
//   STOPPING=1  when SIGTERM/SIGINT starts the graceful stop
//   STATUS=...  a one-line human-readable state (systemctl status shows it)
//
// Without $NOTIFY_SOCKET (not started by systemd) every call does nothing.
// A failure to send is logged once and otherwise ignored: the daemon serves
// whether or not anyone listens. Thread-safe (sd_notify is).
//
//   ServiceNotifier notifier;
//   notifier.Ready("listening on unix:/run/ffibroker/ffibrokerd.sock");
#ifndef FFIBROKER_DAEMON_SERVICE_NOTIFIER_H_
#define FFIBROKER_DAEMON_SERVICE_NOTIFIER_H_

#include <atomic>
#include <string>

#include "absl/strings/string_view.h"

namespace ffibroker {

class ServiceNotifier {
 public:
  void Ready(absl::string_view status);
  void Reloading();
  void Stopping();
  void Status(absl::string_view status);

 private:
  void Send(const std::string& state);
  std::atomic<bool> failure_logged_{false};
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_SERVICE_NOTIFIER_H_
