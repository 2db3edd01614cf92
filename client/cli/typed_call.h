// The `ffibroker call` command: one call with classes, handles, strings and
// buffers, in one short-lived session.
//
//   ffibroker call --class='Point { f64 x; mut f64 y; } ~point_free'
//       classes 'Point* point_new(f64, f64)' 1 2      # prints #H {x=1, y=2}
//   (one command line)
//
// Argument literals by parameter type: scalars and enums as in
// common/literal.h; a class by value as `{x=1, y=2}`; a class pointer as a
// `{...}` literal (a temporary instance is created, passed, and printed as
// `name = {...}` after the call) or `null`; `cstr` as the raw text (or
// `null`); in/inout buffers as `hex:0a0b` or raw text; out buffers as `-`.
#ifndef FFIBROKER_CLIENT_CLI_TYPED_CALL_H_
#define FFIBROKER_CLIENT_CLI_TYPED_CALL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/type_desc.h"
#include "ffibroker/client.h"

namespace ffibroker {

// Runs `call LIBRARY DECL ARGS...` (args[0] == "call") after registering
// `classes`, connecting with `options` and opening the library with `token`
// when it is not empty; prints the result (and out values) on stdout and
// errors on stderr; returns the exit code.
int RunTypedCall(const std::string& address, const ConnectOptions& options,
                 const std::string& token, absl::Duration timeout,
                 const std::vector<std::string>& classes,
                 const std::vector<std::string>& args);

// One command-line literal for a parameter of `type` that needs no
// temporary instance (everything but a `{...}` class pointer literal,
// which is INVALID_ARGUMENT here).
absl::StatusOr<v1::Value> ParsePlainArg(const TypeDesc& type, const std::string& text);

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_CLI_TYPED_CALL_H_
