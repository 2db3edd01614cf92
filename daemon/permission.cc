#include "daemon/permission.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"

namespace ffibroker {
namespace {

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list,
              absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

void ApplyPermissionDefaults(v1::Permission* permission) {
  if (permission->operations().empty()) {
    permission->add_operations(v1::OPEN_LIBRARY);
    permission->add_operations(v1::GRANT_TOKEN);
  }
  if (permission->confinement_profile().empty()) {
    permission->set_confinement_profile(kDefaultConfinementProfile);
  }
}

bool AllowsOperation(const v1::Permission& permission,
                     v1::PermissionOperation operation) {
  for (int op : permission.operations()) {
    if (op == operation) return true;
  }
  return false;
}

const v1::PermissionLibrary* FindLibrary(const v1::Permission& permission,
                                         absl::string_view path) {
  for (const v1::PermissionLibrary& entry : permission.libraries()) {
    if (entry.library() == path) return &entry;
  }
  return nullptr;
}

bool AllowsSymbol(const v1::PermissionLibrary& entry, absl::string_view symbol) {
  if (Contains(entry.deny_symbols(), symbol)) return false;
  return entry.allow_symbols().empty() || Contains(entry.allow_symbols(), symbol);
}

absl::Status AuthorizeOpen(const v1::Permission& permission, absl::string_view what,
                           absl::string_view path, const std::vector<NameToResolve>& names,
                           bool writes_statics) {
  if (!AllowsOperation(permission, v1::OPEN_LIBRARY)) {
    return WithReason(absl::PermissionDeniedError(
        absl::StrCat("opening libraries is not allowed by ", what)), "OPERATION_NOT_ALLOWED", {{"operation", "OPEN_LIBRARY"}});
  }
  const v1::PermissionLibrary* entry = FindLibrary(permission, path);
  if (entry == nullptr) {
    return WithReason(absl::PermissionDeniedError(absl::StrCat(kLibraryNotAllowed, what)), "LIBRARY_NOT_ALLOWED");
  }
  for (const NameToResolve& name : names) {
    if (!AllowsSymbol(*entry, name.name)) {
      return WithReason(absl::PermissionDeniedError(absl::StrCat(
          DescribeName(name), " of '", path, "' is not allowed by ", what)), "SYMBOL_NOT_ALLOWED", {{"symbol", name.name}});
    }
  }
  if (writes_statics && !AllowsOperation(permission, v1::WRITE_STATICS)) {
    return WithReason(absl::PermissionDeniedError(absl::StrCat(
        "writing statics (a static declared mut) is not allowed by ", what,
        " (operation WRITE_STATICS)")), "OPERATION_NOT_ALLOWED", {{"operation", "WRITE_STATICS"}});
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Permission> Narrow(
    const v1::Permission& parent, const std::vector<LibraryNarrowing>& libraries,
    const std::vector<v1::PermissionOperation>& operations) {
  v1::Permission child = parent;
  if (!operations.empty()) {
    child.clear_operations();
    std::set<int> seen;
    for (v1::PermissionOperation op : operations) {
      if (!AllowsOperation(parent, op)) {
        return absl::PermissionDeniedError(absl::StrCat(
            "operations: ", v1::PermissionOperation_Name(op), " is not allowed"));
      }
      if (seen.insert(op).second) child.add_operations(op);
    }
  }
  if (!libraries.empty()) {
    child.clear_libraries();
    std::set<std::string> seen;
    for (size_t i = 0; i < libraries.size(); ++i) {
      const LibraryNarrowing& want = libraries[i];
      const v1::PermissionLibrary* have = FindLibrary(parent, want.path);
      if (have == nullptr) {
        return absl::PermissionDeniedError(absl::StrCat(
            "libraries[", i, "]: '", want.requested_as, "' is not allowed"));
      }
      if (!seen.insert(want.path).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "libraries[", i, "]: '", want.requested_as, "' is listed twice"));
      }
      v1::PermissionLibrary* entry = child.add_libraries();
      *entry = *have;
      if (!want.symbols.empty()) {
        entry->clear_allow_symbols();
        for (const std::string& symbol : want.symbols) {
          if (!AllowsSymbol(*have, symbol)) {
            return absl::PermissionDeniedError(absl::StrCat(
                "libraries[", i, "]: symbol '", symbol, "' is not allowed"));
          }
          if (!Contains(entry->allow_symbols(), symbol)) entry->add_allow_symbols(symbol);
        }
      }
    }
  }
  return child;
}

bool IsSubset(const v1::Permission& child, const v1::Permission& parent) {
  for (int op : child.operations()) {
    if (!AllowsOperation(parent, static_cast<v1::PermissionOperation>(op))) return false;
  }
  for (const v1::PermissionLibrary& entry : child.libraries()) {
    const v1::PermissionLibrary* have = FindLibrary(parent, entry.library());
    if (have == nullptr || have->sha256() != entry.sha256()) return false;
    if (entry.allow_dependency_symbols() && !have->allow_dependency_symbols()) return false;
    // Every denial of the parent must survive; every allowed symbol must be
    // allowed by the parent; "all symbols" only if the parent allows all.
    for (const std::string& denied : have->deny_symbols()) {
      if (!Contains(entry.deny_symbols(), denied) && AllowsSymbol(entry, denied)) {
        return false;
      }
    }
    if (entry.allow_symbols().empty() && !have->allow_symbols().empty()) return false;
    for (const std::string& symbol : entry.allow_symbols()) {
      if (!AllowsSymbol(*have, symbol) && AllowsSymbol(entry, symbol)) return false;
    }
  }
  return child.confinement_profile() == parent.confinement_profile();
}

}  // namespace ffibroker
