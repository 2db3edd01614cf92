#include "common/log.h"

#include "common/log_event.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/utf8.h"

namespace ffibroker {
namespace {

// Written once at start-up, before any thread logs.
const char* g_program = "ffibroker";
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};
// Set once at start-up (SetLogSink), before other threads log; the old
// one is kept alive, as a thread may have loaded it.
std::atomic<const LogSink*> g_sink{nullptr};

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "?";
}

}  // namespace

void InitLogging(const char* program, LogLevel min_level) {
  g_program = program;
  g_min_level = static_cast<int>(min_level);
}

void SetLogSink(LogSink sink) {
  // Every sink ever set stays alive (a thread may still be in an old one)
  // and reachable (no leak reported).
  static auto* sinks = new std::vector<std::unique_ptr<const LogSink>>();
  if (!sink) {
    g_sink.store(nullptr);
    return;
  }
  sinks->push_back(std::make_unique<const LogSink>(std::move(sink)));
  g_sink.store(sinks->back().get());
}

void LogLine(LogLevel level, const std::string& message) {
  LogEvent(level, LogFields(), message);
}

void LogEvent(LogLevel level, const LogFields& fields, const std::string& message) {
  if (static_cast<int>(level) < g_min_level.load()) return;
  if (message.size() > kMaxLogMessageBytes) {
    // A message may quote what a client sent, which can be megabytes.
    return LogEvent(level, fields, BoundedStatusText(message, kMaxLogMessageBytes));
  }
  if (const LogSink* sink = g_sink.load()) {
    (*sink)(level, fields, message);
    return;
  }
  std::string line = absl::StrFormat(
      "%s %s[%d] %s %s\n",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
      g_program, static_cast<int>(::getpid()), LevelName(level), message);
  // A single write keeps concurrent lines whole; a short write is ignored
  // (stderr is a pipe or terminal, and logging must never fail the caller).
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace ffibroker
