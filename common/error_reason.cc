#include "common/error_reason.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "google/rpc/error_details.pb.h"

namespace ffibroker {
namespace {

google::rpc::ErrorInfo InfoOf(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  auto payload = status.GetPayload(kErrorInfoTypeUrl);
  if (payload.has_value()) info.ParseFromString(std::string(*payload));
  return info;
}

absl::Status WithInfo(absl::Status status, google::rpc::ErrorInfo info) {
  info.set_domain(kErrorDomain);
  status.SetPayload(kErrorInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

}  // namespace

absl::Status WithReason(absl::Status status, absl::string_view reason,
                        const ErrorMetadata& metadata) {
  if (status.ok()) return status;
  google::rpc::ErrorInfo info = InfoOf(status);
  info.set_reason(std::string(reason));
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  return WithInfo(std::move(status), std::move(info));
}

absl::Status WithMetadata(absl::Status status, const ErrorMetadata& metadata) {
  if (status.ok()) return status;
  google::rpc::ErrorInfo info = InfoOf(status);
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = value;
  return WithInfo(std::move(status), std::move(info));
}

absl::Status WithFieldViolation(absl::Status status, absl::string_view field,
                                absl::string_view description) {
  if (status.ok()) return status;
  google::rpc::BadRequest bad;
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  if (payload.has_value()) bad.ParseFromString(std::string(*payload));
  google::rpc::BadRequest::FieldViolation* v = bad.add_field_violations();
  v->set_field(std::string(field));
  v->set_description(std::string(description));
  status.SetPayload(kBadRequestTypeUrl, absl::Cord(bad.SerializeAsString()));
  return status;
}

absl::Status WithMessagePrefix(const absl::Status& status, absl::string_view prefix) {
  return WithNewMessage(status, absl::StrCat(prefix, status.message()));
}

absl::Status WithNewMessage(const absl::Status& status, absl::string_view message) {
  if (status.ok()) return status;
  absl::Status out(status.code(), message);
  status.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

std::string ErrorReason(const absl::Status& status) {
  if (status.ok()) return "";
  std::string reason = InfoOf(status).reason();
  return reason.empty() ? DefaultReason(status.code()) : reason;
}

ErrorMetadata ErrorMetadataOf(const absl::Status& status) {
  google::rpc::ErrorInfo info = InfoOf(status);
  return ErrorMetadata(info.metadata().begin(), info.metadata().end());
}

std::vector<std::pair<std::string, std::string>> FieldViolationsOf(const absl::Status& status) {
  std::vector<std::pair<std::string, std::string>> out;
  auto payload = status.GetPayload(kBadRequestTypeUrl);
  if (!payload.has_value()) return out;
  google::rpc::BadRequest bad;
  if (!bad.ParseFromString(std::string(*payload))) return out;
  for (const auto& v : bad.field_violations()) out.emplace_back(v.field(), v.description());
  return out;
}

std::string DefaultReason(absl::StatusCode code) {
  return absl::StatusCodeToString(code);  // "INVALID_ARGUMENT"
}

std::string StatusText(const absl::Status& status) {
  return status.ToString(absl::StatusToStringMode::kWithNoExtraData);
}

}  // namespace ffibroker
