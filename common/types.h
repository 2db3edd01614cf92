// The one type model shared by the daemon, the worker and the client.
//
// Every scalar kind is described once, in a table (types.cc): its name in
// signatures ("u8"), its native size and alignment, and its value range.
// Everything else (codec, signature parser, libffi mapping) reads this table
// instead of switching on the kind again.
#ifndef FFIBROKER_COMMON_TYPES_H_
#define FFIBROKER_COMMON_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the native value encoding assumes a little-endian host");

// Which member of v1::Value carries a scalar kind, and how it is checked.
enum class ScalarClass { kVoid, kBool, kSigned, kUnsigned, kFloat };

struct ScalarInfo {
  v1::Scalar scalar;
  const char* name;      // as written in signatures: "i8", "f64", "void"
  size_t size;           // native size in bytes (0 for void)
  ScalarClass klass;
  int64_t min;           // integer range (kSigned/kUnsigned only)
  uint64_t max;
};

// The table entry for `scalar`, or nullptr for SCALAR_UNSPECIFIED and for
// numbers this build does not know.
const ScalarInfo* FindScalar(v1::Scalar scalar);
// The entry whose name is `name` ("u8"), or nullptr.
const ScalarInfo* FindScalarByName(absl::string_view name);
// All names, comma-separated, for error messages.
std::string ScalarNames();

// The scalar described by `type`, or INVALID_ARGUMENT if `type` is not a
// known scalar (unset oneof, unknown enum number).
absl::StatusOr<const ScalarInfo*> ScalarOf(const v1::Type& type);

// "f64" for a known type, "<invalid type>" otherwise. For messages only.
std::string TypeName(const v1::Type& type);

// Convenience: a Type holding `scalar`.
v1::Type MakeScalarType(v1::Scalar scalar);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_TYPES_H_
