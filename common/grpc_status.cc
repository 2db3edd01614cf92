#include "common/grpc_status.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/error_reason.h"
#include "common/utf8.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace ffibroker {

namespace {

// Metadata values and field violations name what a request sent; their
// bound leaves the whole of a status far below gRPC's metadata limit.
constexpr size_t kMaxDetailBytes = 256;

ErrorMetadata BoundedMetadata(const absl::Status& status) {
  ErrorMetadata metadata = ErrorMetadataOf(status);
  for (auto& [key, value] : metadata) value = BoundedStatusText(value, kMaxDetailBytes);
  return metadata;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const std::string message = BoundedStatusText(status.message(), kMaxStatusMessageBytes);
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(message);
  google::rpc::ErrorInfo info;
  info.set_reason(ErrorReason(status));
  info.set_domain(kErrorDomain);
  for (const auto& [key, value] : BoundedMetadata(status)) (*info.mutable_metadata())[key] = value;
  details.add_details()->PackFrom(info);
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  google::rpc::BadRequest bad;
  if (payload.has_value() && bad.ParseFromString(std::string(*payload))) {
    for (auto& v : *bad.mutable_field_violations()) {
      v.set_field(BoundedStatusText(v.field(), kMaxDetailBytes));
      v.set_description(BoundedStatusText(v.description(), kMaxDetailBytes));
    }
    details.add_details()->PackFrom(bad);
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message,
                      details.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(static_cast<absl::StatusCode>(status.error_code()),
                   status.error_message());
  google::rpc::Status details;
  if (status.error_details().empty() || !details.ParseFromString(status.error_details())) {
    return out;
  }
  for (const google::protobuf::Any& any : details.details()) {
    if (any.type_url() == kErrorInfoTypeUrl || any.type_url() == kBadRequestTypeUrl) {
      out.SetPayload(any.type_url(), absl::Cord(any.value()));
    }
  }
  return out;
}

v1::CallStatus ToCallStatus(const absl::Status& status) {
  v1::CallStatus out;
  out.set_code(static_cast<int>(status.code()));
  out.set_message(BoundedStatusText(status.message(), kMaxStatusMessageBytes));
  if (status.ok()) return out;
  out.set_reason(ErrorReason(status));
  for (const auto& [key, value] : BoundedMetadata(status)) (*out.mutable_metadata())[key] = value;
  return out;
}

absl::Status FromCallStatus(const v1::CallStatus& status) {
  if (status.code() == 0) return absl::OkStatus();
  const int code = status.code();
  absl::Status out(code > 0 && code <= 16 ? static_cast<absl::StatusCode>(code)
                                          : absl::StatusCode::kUnknown,
                   status.message());
  if (status.reason().empty()) return out;
  ErrorMetadata metadata(status.metadata().begin(), status.metadata().end());
  return WithReason(std::move(out), status.reason(), metadata);
}

}  // namespace ffibroker
