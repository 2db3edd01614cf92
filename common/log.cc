#include "common/log.h"

#include <unistd.h>

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ffibroker {
namespace {

// Written once at start-up, before any thread logs.
const char* g_program = "ffibroker";
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kInfo)};

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

void LogLine(LogLevel level, const std::string& message) {
  if (static_cast<int>(level) < g_min_level.load()) return;
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
