// Minimal structured logging to stderr.
//
// One line per event: "2026-11-23T14:00:00.123Z ffibrokerd[pid] LEVEL message".
// Thread-safe (each line is written with a single write()). Never log secrets
// (session ids, tokens): log their serial numbers instead.
//
//   LOG_INFO("listening on %s", address);
#ifndef FFIBROKER_COMMON_LOG_H_
#define FFIBROKER_COMMON_LOG_H_

#include <string>

#include "absl/strings/str_format.h"

namespace ffibroker {

enum class LogLevel { kDebug, kInfo, kWarning, kError };

// Sets the program name shown in every line and the minimum level written.
void InitLogging(const char* program, LogLevel min_level);
// Writes one line. Prefer the LOG_* macros.
// A log message holds at most this many bytes; a longer one is cut (and
// escaped) as status messages are (BoundedStatusText).
inline constexpr size_t kMaxLogMessageBytes = 8192;

void LogLine(LogLevel level, const std::string& message);

}  // namespace ffibroker

#define LOG_DEBUG(...) ::ffibroker::LogLine(::ffibroker::LogLevel::kDebug, ::absl::StrFormat(__VA_ARGS__))
#define LOG_INFO(...) ::ffibroker::LogLine(::ffibroker::LogLevel::kInfo, ::absl::StrFormat(__VA_ARGS__))
#define LOG_WARNING(...) ::ffibroker::LogLine(::ffibroker::LogLevel::kWarning, ::absl::StrFormat(__VA_ARGS__))
#define LOG_ERROR(...) ::ffibroker::LogLine(::ffibroker::LogLevel::kError, ::absl::StrFormat(__VA_ARGS__))

#endif  // FFIBROKER_COMMON_LOG_H_
