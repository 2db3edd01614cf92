// Fuzz target: the declaration parser, as the CLI and the daemon parse
// function declarations, class text and statics (common/signature.h), and
// what the daemon does next with a parsed class or signature
// (ClassTable::Register, ResolveSignature).
//
// Input: one selector byte, then the text. Invariants: every input gets a
// Status (INVALID_ARGUMENT with a message); an accepted declaration formats
// and parses back to the same signature; accepted class layouts keep every
// field inside the class.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include "common/signature.h"
#include "common/type_table.h"
#include "tests/fuzz/fuzz_values.h"

namespace ffibroker {
namespace {

const std::set<std::string>& KnownClasses() {
  static const auto* classes = new std::set<std::string>{"Point", "Rect", "Counter"};
  return *classes;
}

// The session a declaration is checked against: the classes it may name.
const ClassTable& Session() {
  static const ClassTable* table = [] {
    auto* t = new ClassTable();
    for (const char* text : {"Point { f64 x; mut f64 y; }", "Rect { Point a; Point b; u8[3] tag; }",
                             "opaque Counter"}) {
      absl::StatusOr<v1::ClassDefinition> def = ParseClass(text, {"Point", "Rect", "Counter"});
      FUZZ_CHECK(def.ok(), def.status().ToString());
      FUZZ_CHECK(t->Register(*def).ok(), text);
    }
    return t;
  }();
  return *table;
}

void CheckError(const absl::Status& status, const std::string& text) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, status.ToString());
  FUZZ_CHECK(!status.message().empty(), text);
}

void FuzzDeclaration(const std::string& text) {
  absl::StatusOr<Declaration> decl = ParseDeclaration(text, KnownClasses());
  if (!decl.ok()) return CheckError(decl.status(), text);
  // What the daemon does with a declaration: resolve it in the session.
  absl::StatusOr<ResolvedSignature> resolved = ResolveSignature(decl->signature, Session());
  if (resolved.ok()) {
    FUZZ_CHECK(resolved->params.size() == static_cast<size_t>(decl->signature.params_size()),
               text);
  }
  // The canonical form reads back as the same signature.
  std::string formatted = FormatDeclaration(decl->name, decl->signature);
  absl::StatusOr<Declaration> again = ParseDeclaration(formatted, KnownClasses());
  FUZZ_CHECK(again.ok(), text + " -> " + formatted + " -> " + again.status().ToString());
  FUZZ_CHECK(again->name == decl->name, formatted);
  FUZZ_CHECK(again->signature.SerializeAsString() == decl->signature.SerializeAsString(),
             text + " -> " + formatted);
}

void FuzzClass(const std::string& text) {
  absl::StatusOr<v1::ClassDefinition> def = ParseClass(text, KnownClasses());
  if (!def.ok()) return CheckError(def.status(), text);
  ClassTable table = Session();
  absl::StatusOr<v1::ClassLayout> layout = table.Register(*def);
  if (!layout.ok()) return;
  for (const v1::FieldLayout& field : layout->fields()) {
    FUZZ_CHECK(field.offset() <= layout->size() && field.size() <= layout->size() - field.offset(),
               text);
  }
}

void FuzzStatic(const std::string& text) {
  absl::StatusOr<v1::StaticDeclaration> decl = ParseStatic(text, KnownClasses());
  if (!decl.ok()) return CheckError(decl.status(), text);
  (void)Session().Resolve(decl->type(), TypeUse::kStatic);
}

}  // namespace
}  // namespace ffibroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: ffibroker::FuzzDeclaration(text); break;
    case 1: ffibroker::FuzzClass(text); break;
    default: ffibroker::FuzzStatic(text); break;
  }
  return 0;
}
