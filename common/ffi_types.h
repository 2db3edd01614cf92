// The one mapping from the broker's scalar kinds to libffi types.
//
// Composite types (classes by value, arrays) get their libffi struct types
// from TypeDesc (common/type_desc.h), which builds them from this mapping.
#ifndef FFIBROKER_COMMON_FFI_TYPES_H_
#define FFIBROKER_COMMON_FFI_TYPES_H_

#include <ffi.h>

#include "absl/status/statusor.h"
#include "common/types.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// The libffi type of a scalar kind (static storage, never freed).
ffi_type* FfiScalarType(const ScalarInfo& info);

// The libffi type describing a scalar `type`, or INVALID_ARGUMENT if `type`
// is not a known scalar.
absl::StatusOr<ffi_type*> FfiTypeOf(const v1::Type& type);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_FFI_TYPES_H_
