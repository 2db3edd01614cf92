// ReadPrivateFile: reads a secret the daemon is configured with (the token
// secret file, the token keyring) after checking that nobody else can read
// or replace it.
//
// Thread-safe (no state).
//
//   ASSIGN_OR_RETURN(std::string text,
//                    ReadPrivateFile(path, "token keyring", kMaxKeyringBytes));
#ifndef FFIBROKER_DAEMON_PRIVATE_FILE_H_
#define FFIBROKER_DAEMON_PRIVATE_FILE_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ffibroker {

// The contents of `path`, opened without following a symlink.
// NOT_FOUND if it cannot be opened; FAILED_PRECONDITION if it is not a
// regular file owned by the daemon's effective uid with no group/other
// permission bits, or holds more than `max_bytes`. Messages start with
// `what` and the path, and never contain the contents.
absl::StatusOr<std::string> ReadPrivateFile(const std::string& path, absl::string_view what,
                                            size_t max_bytes);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PRIVATE_FILE_H_
