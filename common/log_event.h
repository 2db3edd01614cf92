// Log events with structured fields, and where log lines go.
//
// A call site that knows what an event is about says so with LogFields;
// the fields reach the systemd journal as FFIBROKER_<NAME>=value
// (daemon/journal_log.h) and are filterable there
// (`journalctl -o verbose FFIBROKER_LIBRARY=/usr/lib/libz.so.1`). On stderr
// (plain lines, common/log.h) only the message is written, so the message
// must still say everything.
//
// Thread-safe: SetLogSink once at start-up, before other threads log.
//
//   LOG_EVENT(LogLevel::kWarning,
//             LogFields().Event("worker_ended").Library(path).Signal("SIGSEGV"),
//             "worker pid %d serving %s ended ...", pid, path);
#ifndef FFIBROKER_COMMON_LOG_EVENT_H_
#define FFIBROKER_COMMON_LOG_EVENT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "common/log.h"

namespace ffibroker {

// The fields of one event, in the order added; empty values are left out.
// Names are documented in docs/systemd.md ("Logging to the journal").
class LogFields {
 public:
  // What happened, a short snake_case word: worker_ended, open_library,
  // close_session, auth_denied, ...
  LogFields& Event(absl::string_view v) { return Add("EVENT", v); }
  LogFields& Principal(absl::string_view v) { return Add("PRINCIPAL", v); }
  // The session's serial as in the log ("s12"), never its id.
  LogFields& Session(uint64_t serial) { return Add("SESSION", absl::StrCat("s", serial)); }
  // A library's canonical path.
  LogFields& Library(absl::string_view v) { return Add("LIBRARY", v); }
  LogFields& Symbol(absl::string_view v) { return Add("SYMBOL", v); }
  // A system call's name ("ptrace").
  LogFields& Syscall(absl::string_view v) { return Add("SYSCALL", v); }
  // A signal's name ("SIGSEGV").
  LogFields& Signal(absl::string_view v) { return Add("SIGNAL", v); }
  LogFields& WorkerPid(int64_t pid) { return Add("WORKER_PID", absl::StrCat(pid)); }
  // An authenticated identity ("uid:1000"; never a key or token).
  LogFields& Identity(absl::string_view v) { return Add("IDENTITY", v); }

  // (NAME without the FFIBROKER_ prefix, value) pairs.
  const std::vector<std::pair<const char*, std::string>>& list() const { return list_; }

 private:
  LogFields& Add(const char* name, absl::string_view value) {
    if (!value.empty()) list_.emplace_back(name, std::string(value));
    return *this;
  }
  std::vector<std::pair<const char*, std::string>> list_;
};

// Where events go instead of stderr (the journal). Receives events at or
// above the minimum level only.
using LogSink = std::function<void(LogLevel, const LogFields&, const std::string& message)>;
// Installs `sink` for the rest of the process (nullptr: back to stderr).
// Call before any other thread logs.
void SetLogSink(LogSink sink);

// Writes one event: to the sink if one is installed, else as a plain line.
void LogEvent(LogLevel level, const LogFields& fields, const std::string& message);

}  // namespace ffibroker

#define LOG_EVENT(level, fields, ...) \
  ::ffibroker::LogEvent(level, fields, ::absl::StrFormat(__VA_ARGS__))

#endif  // FFIBROKER_COMMON_LOG_EVENT_H_
