// The one place where absl::Status becomes grpc::Status.
#ifndef FFIBROKER_COMMON_GRPC_STATUS_H_
#define FFIBROKER_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace ffibroker {

// Same canonical code, same message.
grpc::Status ToGrpcStatus(const absl::Status& status);
// The inverse, for the client library.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_GRPC_STATUS_H_
