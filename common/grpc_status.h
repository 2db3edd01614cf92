// The one place where absl::Status becomes grpc::Status, and back.
#ifndef FFIBROKER_COMMON_GRPC_STATUS_H_
#define FFIBROKER_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/utf8.h"  // BoundedStatusText
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

// A status's message holds at most this many bytes (before the note of
// what was cut): messages quote what a request sent (a symbol, a library,
// a class name), and gRPC refuses a status whose trailer passes the
// client's metadata limit (8 KiB by default), losing the real error.
inline constexpr size_t kMaxStatusMessageBytes = 1024;


// Same canonical code, same message (bounded: BoundedStatusText with
// kMaxStatusMessageBytes, and metadata values and field violations with
// 256 bytes each), and google.rpc.Status details (the
// grpc-status-details-bin trailer): always an ErrorInfo with the status's
// reason (common/error_reason.h; the code's default when none was set),
// domain "ffibroker.v1" and metadata, and a BadRequest when the status
// carries field violations.
grpc::Status ToGrpcStatus(const absl::Status& status);
// The status of one call of a batch or a stream (v1::CallStatus): code,
// message, reason and metadata.
v1::CallStatus ToCallStatus(const absl::Status& status);
// Its inverse: code (UNKNOWN for one that is no canonical code), message,
// reason and metadata.
absl::Status FromCallStatus(const v1::CallStatus& status);
// The inverse of ToGrpcStatus, for the client library: the details become the payloads
// common/error_reason.h reads (ErrorReason, ErrorMetadataOf,
// FieldViolationsOf). Details that do not parse are ignored.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_GRPC_STATUS_H_
