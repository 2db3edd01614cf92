// The client's class and instance helpers (ffibroker/instance.h and the
// class methods of Session and Library).
#include "ffibroker/instance.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/signature.h"
#include "common/status_macros.h"

namespace ffibroker {

v1::Value ToValue(const Instance& instance) {
  v1::Value value;
  value.set_handle_value(instance.handle());
  return value;
}

absl::StatusOr<v1::ClassLayout> Session::RegisterClass(const std::string& definition) {
  ASSIGN_OR_RETURN(v1::ClassDefinition def, ParseClass(definition, classes_));
  return RegisterClass(def);
}

absl::StatusOr<v1::ClassLayout> Session::RegisterClass(const v1::ClassDefinition& definition) {
  v1::RegisterClassRequest request;
  request.set_session_id(id_);
  *request.mutable_definition() = definition;
  v1::RegisterClassResponse response;
  grpc::ClientContext context;
  client_->Prepare(&context);  // the API key, if any
  RETURN_IF_ERROR(FromGrpcStatus(client_->stub()->RegisterClass(&context, request, &response)));
  classes_.insert(definition.name());
  return response.layout();
}

absl::StatusOr<std::unique_ptr<Instance>> Library::NewInstance(const std::string& class_name,
                                                               const v1::Value& fields) {
  v1::NewInstanceRequest request;
  request.set_session_id(session_->id());
  request.set_library_handle(handle_);
  request.set_class_name(class_name);
  *request.mutable_fields() = fields.struct_value();
  v1::NewInstanceResponse response;
  grpc::ClientContext context;
  session_->client()->Prepare(&context);  // the API key, if any
  RETURN_IF_ERROR(
      FromGrpcStatus(session_->client()->stub()->NewInstance(&context, request, &response)));
  return std::make_unique<Instance>(this, response.handle());
}

absl::StatusOr<std::unique_ptr<Instance>> Library::AdoptResult(
    const std::string& symbol, const v1::CallResponse& response) {
  if (response.result().value_case() == v1::Value::kNullValue) return nullptr;
  if (response.result().value_case() != v1::Value::kHandleValue) {
    return absl::InvalidArgumentError(symbol + " did not return a class pointer");
  }
  return std::make_unique<Instance>(this, response.result().handle_value());
}

absl::StatusOr<v1::Value> Library::ReadStatic(const std::string& name) {
  v1::ReadStaticRequest request;
  request.set_session_id(session_->id());
  request.set_library_handle(handle_);
  request.set_name(name);
  v1::ReadStaticResponse response;
  grpc::ClientContext context;
  session_->client()->Prepare(&context);  // the API key, if any
  RETURN_IF_ERROR(
      FromGrpcStatus(session_->client()->stub()->ReadStatic(&context, request, &response)));
  return response.value();
}

absl::Status Library::WriteStatic(const std::string& name, const v1::Value& value) {
  v1::WriteStaticRequest request;
  request.set_session_id(session_->id());
  request.set_library_handle(handle_);
  request.set_name(name);
  *request.mutable_value() = value;
  v1::WriteStaticResponse response;
  grpc::ClientContext context;
  session_->client()->Prepare(&context);  // the API key, if any
  return FromGrpcStatus(session_->client()->stub()->WriteStatic(&context, request, &response));
}

Instance::~Instance() {
  if (!freed_) Free().IgnoreError();
}

absl::StatusOr<v1::Value> Instance::Read(const std::vector<std::string>& fields) {
  v1::ReadFieldsRequest request;
  request.set_session_id(library_->session()->id());
  request.set_handle(handle_);
  for (const std::string& f : fields) request.add_fields(f);
  v1::ReadFieldsResponse response;
  grpc::ClientContext context;
  library_->session()->client()->Prepare(&context);  // the API key, if any
  RETURN_IF_ERROR(FromGrpcStatus(
      library_->session()->client()->stub()->ReadFields(&context, request, &response)));
  v1::Value value;
  *value.mutable_struct_value() = response.fields();
  return value;
}

absl::Status Instance::Write(const v1::Value& fields) {
  v1::WriteFieldsRequest request;
  request.set_session_id(library_->session()->id());
  request.set_handle(handle_);
  *request.mutable_fields() = fields.struct_value();
  v1::WriteFieldsResponse response;
  grpc::ClientContext context;
  library_->session()->client()->Prepare(&context);  // the API key, if any
  return FromGrpcStatus(
      library_->session()->client()->stub()->WriteFields(&context, request, &response));
}

absl::StatusOr<bool> Instance::Free() {
  if (freed_) return false;
  freed_ = true;
  v1::FreeInstanceRequest request;
  request.set_session_id(library_->session()->id());
  request.set_handle(handle_);
  v1::FreeInstanceResponse response;
  grpc::ClientContext context;
  library_->session()->client()->Prepare(&context);  // the API key, if any
  RETURN_IF_ERROR(FromGrpcStatus(
      library_->session()->client()->stub()->FreeInstance(&context, request, &response)));
  return response.destructor_called();
}

}  // namespace ffibroker
