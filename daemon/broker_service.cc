#include "daemon/broker_service.h"

#include <chrono>

#include "common/grpc_status.h"

namespace ffibroker {
namespace {

absl::Time DeadlineOf(grpc::CallbackServerContext* context) {
  std::chrono::system_clock::time_point deadline = context->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

}  // namespace

template <typename Response, typename Handler>
grpc::ServerUnaryReactor* BrokerService::Dispatch(
    grpc::CallbackServerContext* context, Response* response, Handler handler) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::Time deadline = DeadlineOf(context);
  executor_->Submit([reactor, response, deadline, handler]() {
    absl::StatusOr<Response> result = handler(deadline);
    if (result.ok()) *response = std::move(*result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* BrokerService::CreateSession(
    grpc::CallbackServerContext* context, const v1::CreateSessionRequest* request,
    v1::CreateSessionResponse* response) {
  return Dispatch(context, response, [this, request](absl::Time) {
    return sessions_->CreateSession(*request);
  });
}

grpc::ServerUnaryReactor* BrokerService::CloseSession(
    grpc::CallbackServerContext* context, const v1::CloseSessionRequest* request,
    v1::CloseSessionResponse* response) {
  return Dispatch(context, response, [this, request](absl::Time) {
    return sessions_->CloseSession(*request);
  });
}

grpc::ServerUnaryReactor* BrokerService::OpenLibrary(
    grpc::CallbackServerContext* context, const v1::OpenLibraryRequest* request,
    v1::OpenLibraryResponse* response) {
  return Dispatch(context, response, [this, request](absl::Time deadline) {
    return sessions_->OpenLibrary(*request, deadline);
  });
}

grpc::ServerUnaryReactor* BrokerService::CloseLibrary(
    grpc::CallbackServerContext* context, const v1::CloseLibraryRequest* request,
    v1::CloseLibraryResponse* response) {
  return Dispatch(context, response, [this, request](absl::Time) {
    return sessions_->CloseLibrary(*request);
  });
}

grpc::ServerUnaryReactor* BrokerService::Call(grpc::CallbackServerContext* context,
                                              const v1::CallRequest* request,
                                              v1::CallResponse* response) {
  return Dispatch(context, response, [this, request](absl::Time deadline) {
    return sessions_->Call(*request, deadline);
  });
}

grpc::ServerUnaryReactor* BrokerService::GetStatus(grpc::CallbackServerContext* context,
                                                   const v1::GetStatusRequest*,
                                                   v1::GetStatusResponse* response) {
  return Dispatch(context, response, [this](absl::Time deadline) {
    return sessions_->GetStatus(deadline);
  });
}

}  // namespace ffibroker
