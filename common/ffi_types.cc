#include "common/ffi_types.h"

#include <sys/types.h>

#include "common/status_macros.h"

namespace ffibroker {

static_assert(sizeof(ssize_t) == 8 && sizeof(size_t) == 8,
              "isize/usize are mapped to 64-bit libffi types");
static_assert(sizeof(bool) == 1, "bool is mapped to a 1-byte libffi type");

ffi_type* FfiScalarType(const ScalarInfo& info) {
  switch (info.scalar) {
    case v1::SCALAR_BOOL: return &ffi_type_uint8;
    case v1::SCALAR_I8: return &ffi_type_sint8;
    case v1::SCALAR_U8: return &ffi_type_uint8;
    case v1::SCALAR_I16: return &ffi_type_sint16;
    case v1::SCALAR_U16: return &ffi_type_uint16;
    case v1::SCALAR_I32: return &ffi_type_sint32;
    case v1::SCALAR_U32: return &ffi_type_uint32;
    case v1::SCALAR_I64:
    case v1::SCALAR_ISIZE: return &ffi_type_sint64;
    case v1::SCALAR_U64:
    case v1::SCALAR_USIZE: return &ffi_type_uint64;
    case v1::SCALAR_F32: return &ffi_type_float;
    case v1::SCALAR_F64: return &ffi_type_double;
    default: return &ffi_type_void;  // SCALAR_VOID; the table has no others
  }
}

absl::StatusOr<ffi_type*> FfiTypeOf(const v1::Type& type) {
  ASSIGN_OR_RETURN(const ScalarInfo* info, ScalarOf(type));
  return FfiScalarType(*info);
}

}  // namespace ffibroker
