// The ffibroker CLI's exit codes and its two ways of reporting a failure,
// shared by every verb.
#ifndef FFIBROKER_CLIENT_CLI_CLI_OUTPUT_H_
#define FFIBROKER_CLIENT_CLI_CLI_OUTPUT_H_

#include <cstdio>
#include <string>

#include "common/error_reason.h"
#include "absl/status/status.h"

namespace ffibroker {

inline constexpr int kExitFailed = 1;       // the daemon answered with an error
inline constexpr int kExitUsage = 2;        // bad flags, declaration or literal
inline constexpr int kExitUnreachable = 3;  // the daemon could not be reached

// Prints "ffibroker: CODE: message" on stderr and returns `code`.
inline int Fail(int code, const absl::Status& status) {
  std::fprintf(stderr, "ffibroker: %s\n", StatusText(status).c_str());
  return code;
}

// Prints a usage error on stderr and returns kExitUsage.
inline int Usage(const std::string& message) {
  std::fprintf(stderr, "ffibroker: %s (see ffibroker --help)\n", message.c_str());
  return kExitUsage;
}

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_CLI_CLI_OUTPUT_H_
