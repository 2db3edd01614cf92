// The `ffibroker batch` command: many calls of one library in one CallBatch
// (one exchange with its worker), read from a file or standard input.
//
//   printf 'cos 0\ncos 0.5\npow 2 10\n' |
//     ffibroker batch libm.so.6 - 'f64 cos(f64)' 'f64 pow(f64, f64)'
//   0: 1
//   1: 0.8775825618903728
//   2: 1024
//
// Each line is `SYMBOL ARG...`, arguments separated by blanks, as `call`
// takes them (no `{...}` class pointer literals); blank lines and lines
// starting with # are skipped. One line of output per call, in order:
// `N: RESULT` (nothing after the colon for void), or `N: error CODE:
// MESSAGE`. Exit status 0 if every call succeeded, 1 otherwise.
#ifndef FFIBROKER_CLIENT_CLI_BATCH_COMMAND_H_
#define FFIBROKER_CLIENT_CLI_BATCH_COMMAND_H_

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ffibroker/client.h"

namespace ffibroker {

// Runs `batch LIBRARY FILE DECL...` (args[0] == "batch"); returns the exit
// code.
int RunBatch(const std::string& address, const ConnectOptions& options, const std::string& token,
             absl::Duration timeout, const std::vector<std::string>& args);

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_CLI_BATCH_COMMAND_H_
