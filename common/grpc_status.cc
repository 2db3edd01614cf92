#include "common/grpc_status.h"

#include "absl/strings/cord.h"
#include "common/error_reason.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace ffibroker {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(std::string(status.message()));
  google::rpc::ErrorInfo info;
  info.set_reason(ErrorReason(status));
  info.set_domain(kErrorDomain);
  for (const auto& [key, value] : ErrorMetadataOf(status)) (*info.mutable_metadata())[key] = value;
  details.add_details()->PackFrom(info);
  auto bad = status.GetPayload(kBadRequestTypeUrl);
  if (bad.has_value()) {
    google::protobuf::Any* any = details.add_details();
    any->set_type_url(kBadRequestTypeUrl);
    any->set_value(std::string(*bad));
  }
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()), details.SerializeAsString());
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
  out.set_message(std::string(status.message()));
  if (status.ok()) return out;
  out.set_reason(ErrorReason(status));
  for (const auto& [key, value] : ErrorMetadataOf(status)) (*out.mutable_metadata())[key] = value;
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
