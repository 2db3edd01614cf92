// NamesToResolve: every name a worker looks up in a library to serve one
// worker::v1::Open — the one list both sides use.
//
// The daemon authorizes an open by checking each of these names against
// the permission (allow_symbols / deny_symbols, see daemon/permission.h)
// before a worker starts; the worker (daemon/worker/call_engine.cc) calls
// dlsym for exactly these names and nothing else. So a name that is not in
// this list is never resolved, and a name in it is never resolved unchecked.
//
// The names, in order, without duplicates (a name used twice keeps its
// first use):
//  - each declared function (Open.symbols), kFunction;
//  - each declared static (Open.statics), kStatic;
//  - the destructor of each class a declared function returns as an owned
//    handle (`~name` of the class, or the implicit `Name__drop` of an
//    opaque class), kDestructor. Destructors of classes the session merely
//    registered are neither resolved nor checked.
//
// Pure function; thread-safe.
//
//   ASSIGN_OR_RETURN(std::vector<NameToResolve> names, NamesToResolve(open, classes));
//   for (const NameToResolve& n : names) RETURN_IF_ERROR(Check(n.name));
#ifndef FFIBROKER_COMMON_RESOLVED_NAMES_H_
#define FFIBROKER_COMMON_RESOLVED_NAMES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/type_table.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

struct NameToResolve {
  enum class Use { kFunction, kStatic, kDestructor };
  std::string name;
  Use use = Use::kFunction;
  // For a destructor: its class and the first function returning it owned.
  std::string klass;
  std::string needed_by;
};

// "function 'f'", "static 'v'", "destructor 'd' (of class C, needed by 'f')".
std::string DescribeName(const NameToResolve& name);

// The names the worker resolves to serve `open`, whose classes are
// `classes` (the same table the worker rebuilds from open.classes).
// INVALID_ARGUMENT if a signature does not resolve against `classes`.
absl::StatusOr<std::vector<NameToResolve>> NamesToResolve(const worker::v1::Open& open,
                                                          const ClassTable& classes);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_RESOLVED_NAMES_H_
