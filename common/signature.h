// C function declarations in the broker's readable syntax, and signature
// validation.
//
//   "f64 cos(f64)"            "i32 add(i32 a, i32 b)"      "void tick()"
//
// A declaration is `RESULT NAME(PARAMS)` where RESULT and each parameter
// type are scalar names (see ScalarNames()), NAME is a C identifier, and each
// parameter may carry a name. `void` alone in the parentheses means none.
//
// Classes (see docs/classes.md): a registered class name is the struct by
// value (`Point`), `Point*` an instance handle (an owned result; `Point*?`
// a parameter that may be null), `borrowed Point*` a result the library
// keeps. Also `enum i32{0,1,2}`, `cstr` / `cstr?` / `cstr[64]`, buffers
// `in u8[len]`, `out u8[16]`, `inout u8[n]`. Prefixes: `ffireturn` (iroha
// FfiReturn convention), `errno` (capture errno), `optional` (may be
// missing). Arrays `f64[3]` are only valid in class fields and statics.
//
// Callbacks (function-pointer parameters, docs/callbacks.md):
// `fn(usize a, usize b) -> i32 cmp`, `fn(cstr line) log` (void result when
// `->` is left out), `fn(in u8[n] data, usize n)? hook` (`?` right after
// the parameter list: NULL may be passed). Only valid as a parameter of a
// declared function; see ClassTable::Resolve for what a callback's own
// parameters and result may be.
//
// Classes are written `Point { f64 x; mut f64 y; } ~point_free` (fields in
// C order, `mut` = writable, optional `~destructor`) or `opaque Counter`.
#ifndef FFIBROKER_COMMON_SIGNATURE_H_
#define FFIBROKER_COMMON_SIGNATURE_H_

#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ffibroker/v1/broker.pb.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// Most parameters a declared function may have.
inline constexpr int kMaxParams = 32;

struct Declaration {
  std::string name;
  v1::Signature signature;
  bool capture_errno = false;  // `errno` prefix
  bool optional = false;       // `optional` prefix
};

// Parses a declaration. `classes` are the class names it may use (the
// session's registered classes); any other word where a type belongs is a
// syntax error. On failure returns INVALID_ARGUMENT saying what was
// expected at which column (1-based) of `text`.
absl::StatusOr<Declaration> ParseDeclaration(absl::string_view text,
                                             const std::set<std::string>& classes = {});

// Parses a class definition (see above). INVALID_ARGUMENT with the column
// on a syntax error; the daemon checks the rest at RegisterClass.
absl::StatusOr<v1::ClassDefinition> ParseClass(absl::string_view text,
                                              const std::set<std::string>& classes = {});

// Parses an exported variable: `[optional] [mut] TYPE NAME`
// ("mut i32 counter", "Point origin"). INVALID_ARGUMENT with the column.
absl::StatusOr<v1::StaticDeclaration> ParseStatic(absl::string_view text,
                                                  const std::set<std::string>& classes = {});

// The declaration in the syntax ParseDeclaration reads: "f64 cos(f64 x)".
std::string FormatDeclaration(absl::string_view name,
                              const v1::Signature& signature);

// True for a C identifier: [A-Za-z_][A-Za-z0-9_]*.
bool IsIdentifier(absl::string_view name);

// Checks a signature that uses no classes (ResolveSignature against an
// empty ClassTable; see common/type_table.h for signatures with classes).
// INVALID_ARGUMENT naming the offending part otherwise.
absl::Status ValidateSignature(const v1::Signature& signature);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_SIGNATURE_H_
