// The one mapping from the broker's type model to libffi types.
#ifndef FFIBROKER_DAEMON_WORKER_FFI_TYPES_H_
#define FFIBROKER_DAEMON_WORKER_FFI_TYPES_H_

#include <ffi.h>

#include "absl/status/statusor.h"
#include "ffibroker/v1/types.pb.h"

namespace ffibroker {

// The libffi type describing `type` (static storage, never freed), or
// INVALID_ARGUMENT for a type libffi cannot express.
absl::StatusOr<ffi_type*> FfiTypeOf(const v1::Type& type);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_FFI_TYPES_H_
