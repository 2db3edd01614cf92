// Permission: the rules of the v1::Permission snapshot (a session's
// permission and a token's claims share this one representation).
//
// In a snapshot every PermissionLibrary.library is a canonical absolute path
// (the policy resolves names and symlinks when it loads), so checks are
// exact string comparisons and `..`, symlink or relative-path tricks in a
// request cannot match anything the snapshot does not name.
//
// Pure functions; thread-safe.
//
//   RETURN_IF_ERROR(AuthorizeOpen(permission, "the token", path, names, false));
//   ASSIGN_OR_RETURN(v1::Permission narrower, Narrow(parent, libraries, ops));
#ifndef FFIBROKER_DAEMON_PERMISSION_H_
#define FFIBROKER_DAEMON_PERMISSION_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/resolved_names.h"
#include "ffibroker/v1/broker.pb.h"
#include "ffibroker/v1/policy.pb.h"

namespace ffibroker {

inline constexpr char kDefaultConfinementProfile[] = "strict";

// Fills in the documented defaults (operations, profile) of a permission.
void ApplyPermissionDefaults(v1::Permission* permission);

// True if `permission` allows `operation`.
bool AllowsOperation(const v1::Permission& permission, v1::PermissionOperation operation);

// The entry for canonical `path`, or nullptr.
const v1::PermissionLibrary* FindLibrary(const v1::Permission& permission,
                                         absl::string_view path);

// True if `entry` allows declaring `symbol`.
bool AllowsSymbol(const v1::PermissionLibrary& entry, absl::string_view symbol);

// The one authorization of an open: OK if `permission` allows opening
// canonical `path` and resolving every name in `names` (NamesToResolve,
// common/resolved_names.h: functions, statics, destructors) and, if
// `writes_statics` (a static is declared `mut`), the operation
// WRITE_STATICS. PERMISSION_DENIED naming the operation or the first name
// not allowed; `what` ("the session's permission", "the token") ends the
// message. A library not allowed gets kLibraryNotAllowed + `what`, one
// message whatever the path was (so it tells nothing about the file system).
absl::Status AuthorizeOpen(const v1::Permission& permission, absl::string_view what,
                           absl::string_view path, const std::vector<NameToResolve>& names,
                           bool writes_statics);
inline constexpr char kLibraryNotAllowed[] = "the library requested is not allowed by ";

// A permission no wider than `parent`: only the libraries in `libraries`
// (paths already canonical; empty = all of parent's), each with the listed
// symbols (empty = parent's), and the listed operations (empty = parent's).
// PERMISSION_DENIED naming the first library, symbol or operation that
// `parent` does not allow. Profile, limits and pins are inherited.
struct LibraryNarrowing {
  std::string path;                  // canonical
  std::string requested_as;          // what the client wrote, for messages
  std::vector<std::string> symbols;  // empty = as parent
};
absl::StatusOr<v1::Permission> Narrow(
    const v1::Permission& parent, const std::vector<LibraryNarrowing>& libraries,
    const std::vector<v1::PermissionOperation>& operations);

// True if everything `child` allows, `parent` allows too (the invariant
// Narrow() guarantees; checked again before signing an exchanged token).
bool IsSubset(const v1::Permission& child, const v1::Permission& parent);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PERMISSION_H_
