// C function declarations in the broker's readable syntax, and signature
// validation.
//
//   "f64 cos(f64)"            "i32 add(i32 a, i32 b)"      "void tick()"
//
// A declaration is `RESULT NAME(PARAMS)` where RESULT and each parameter
// type are scalar names (see ScalarNames()), NAME is a C identifier, and each
// parameter may carry a name. `void` alone in the parentheses means none.
#ifndef FFIBROKER_COMMON_SIGNATURE_H_
#define FFIBROKER_COMMON_SIGNATURE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// Most parameters a declared function may have.
inline constexpr int kMaxParams = 32;

struct Declaration {
  std::string name;
  v1::Signature signature;
};

// Parses a declaration. On failure returns INVALID_ARGUMENT saying what was
// expected at which column (1-based) of `text`.
absl::StatusOr<Declaration> ParseDeclaration(absl::string_view text);

// The declaration in the syntax ParseDeclaration reads: "f64 cos(f64 x)".
std::string FormatDeclaration(absl::string_view name,
                              const v1::Signature& signature);

// True for a C identifier: [A-Za-z_][A-Za-z0-9_]*.
bool IsIdentifier(absl::string_view name);

// Checks a signature received from a client: the result is a known type,
// every parameter a known non-void type with an identifier (or empty) name,
// at most kMaxParams. INVALID_ARGUMENT naming the offending part otherwise.
absl::Status ValidateSignature(const v1::Signature& signature);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_SIGNATURE_H_
