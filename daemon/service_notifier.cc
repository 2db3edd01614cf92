#include "daemon/service_notifier.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/log.h"

namespace ffibroker {
namespace {

// STATUS= ends at the end of its line: keep a status to one line.
std::string OneLine(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"\n", " "}});
}

}  // namespace

void ServiceNotifier::Ready(absl::string_view status) {
  Send(absl::StrCat("READY=1\nSTATUS=", OneLine(status)));
}

void ServiceNotifier::Reloading() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  uint64_t usec = static_cast<uint64_t>(now.tv_sec) * 1000000u +
                  static_cast<uint64_t>(now.tv_nsec) / 1000u;
  Send(absl::StrCat("RELOADING=1\nMONOTONIC_USEC=", usec, "\nSTATUS=reloading the policy"));
}

void ServiceNotifier::Stopping() { Send("STOPPING=1\nSTATUS=stopping"); }

void ServiceNotifier::Status(absl::string_view status) {
  Send(absl::StrCat("STATUS=", OneLine(status)));
}

void ServiceNotifier::Send(const std::string& state) {
  int r = ::sd_notify(0, state.c_str());  // 0: no $NOTIFY_SOCKET
  if (r < 0 && !failure_logged_.exchange(true)) {
    LOG_WARNING("cannot notify the service manager: %s", std::strerror(-r));
  }
}

}  // namespace ffibroker
