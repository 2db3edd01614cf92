#include "common/resolved_names.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ffibroker {

std::string DescribeName(const NameToResolve& name) {
  switch (name.use) {
    case NameToResolve::Use::kFunction:
      return absl::StrCat("function '", name.name, "'");
    case NameToResolve::Use::kStatic:
      return absl::StrCat("static '", name.name, "'");
    case NameToResolve::Use::kDestructor:
      return absl::StrCat("destructor '", name.name, "' (of class ", name.klass,
                          ", needed by '", name.needed_by, "')");
  }
  return name.name;
}

absl::StatusOr<std::vector<NameToResolve>> NamesToResolve(const worker::v1::Open& open,
                                                          const ClassTable& classes) {
  std::vector<NameToResolve> names;
  std::set<std::string> seen;
  auto add = [&](NameToResolve n) {
    if (seen.insert(n.name).second) names.push_back(std::move(n));
  };
  for (const worker::v1::Symbol& symbol : open.symbols()) {
    add({symbol.name(), NameToResolve::Use::kFunction, "", ""});
  }
  for (const worker::v1::Symbol& symbol : open.statics()) {
    add({symbol.name(), NameToResolve::Use::kStatic, "", ""});
  }
  for (const worker::v1::Symbol& symbol : open.symbols()) {
    ASSIGN_OR_RETURN(ResolvedSignature sig, ResolveSignature(symbol.signature(), classes));
    const TypeDesc& result = *sig.result;
    if (result.kind == TypeKind::kHandle &&
        result.ownership == v1::HandleType::OWNERSHIP_OWNED &&
        !result.element->destructor.empty()) {
      add({result.element->destructor, NameToResolve::Use::kDestructor,
           result.element->name, symbol.name()});
    }
  }
  return names;
}

}  // namespace ffibroker
