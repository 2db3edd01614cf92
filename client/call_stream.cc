#include "common/error_reason.h"
#include "ffibroker/call_stream.h"

#include <algorithm>
#include <utility>

#include "common/grpc_status.h"
#include "common/signature.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ffibroker {

absl::StatusOr<std::unique_ptr<CallStream>> Session::OpenStream() {
  auto context = std::make_unique<grpc::ClientContext>();
  client_->Prepare(context.get());
  auto stream = client_->stub()->CallStream(context.get());
  if (stream == nullptr) return absl::UnavailableError("could not open a call stream");
  return std::unique_ptr<CallStream>(new CallStream(this, std::move(context), std::move(stream)));
}

CallStream::~CallStream() {
  if (!finished_) Cancel();
}

absl::Status CallStream::SendRaw(const v1::StreamRequest& request) {
  std::lock_guard<std::mutex> lock(write_mu_);
  if (writes_done_) return absl::FailedPreconditionError("the stream is closed");
  if (!stream_->Write(request)) {
    return absl::UnavailableError("the call stream is broken (the daemon ended it)");
  }
  return absl::OkStatus();
}

v1::StreamRequest CallStream::NewRequest(absl::Duration timeout) {
  v1::StreamRequest request;
  request.set_id(next_id_++);
  if (!bound_) request.set_session_id(session_->id());
  // Sent from a callback's handler: nested in its invocation.
  if (!invocations_.empty()) request.set_within_invocation(invocations_.back());
  if (timeout > absl::ZeroDuration()) {
    request.set_timeout_millis(static_cast<uint32_t>(
        std::min<int64_t>(absl::ToInt64Milliseconds(timeout), UINT32_MAX)));
  }
  return request;
}

absl::StatusOr<uint64_t> CallStream::SendNew(const v1::StreamRequest& request) {
  RETURN_IF_ERROR(SendRaw(request));
  bound_ = true;
  return request.id();
}

absl::StatusOr<uint64_t> CallStream::Send(const Library& library, const std::string& symbol,
                                          const std::vector<v1::Value>& args,
                                          absl::Duration timeout) {
  v1::StreamRequest request = NewRequest(timeout);
  v1::CallRequest* call = request.mutable_call();
  call->set_library_handle(library.handle());
  call->set_symbol(symbol);
  for (const v1::Value& v : args) *call->add_args() = v;
  return SendNew(request);
}

absl::StatusOr<uint64_t> CallStream::SendBatch(const Library& library,
                                               const std::vector<v1::BatchCall>& calls,
                                               absl::Duration timeout) {
  v1::StreamRequest request = NewRequest(timeout);
  v1::CallBatchRequest* batch = request.mutable_batch();
  batch->set_library_handle(library.handle());
  for (const v1::BatchCall& call : calls) *batch->add_calls() = call;
  return SendNew(request);
}

absl::StatusOr<v1::StreamResponse> CallStream::Receive() {
  if (!kept_.empty()) {
    v1::StreamResponse response = std::move(kept_.front());
    kept_.pop_front();
    return response;
  }
  while (true) {
    ASSIGN_OR_RETURN(v1::StreamResponse response, ReadOne());
    if (!response.has_callback_invocation()) return response;
    RETURN_IF_ERROR(HandleInvocation(response.callback_invocation()));
  }
}

absl::StatusOr<v1::StreamResponse> CallStream::WaitFor(uint64_t id) {
  for (auto it = kept_.begin(); it != kept_.end(); ++it) {
    if (it->id() == id) {
      v1::StreamResponse response = std::move(*it);
      kept_.erase(it);
      return response;
    }
  }
  while (true) {
    ASSIGN_OR_RETURN(v1::StreamResponse response, ReadOne());
    if (response.has_callback_invocation()) {
      RETURN_IF_ERROR(HandleInvocation(response.callback_invocation()));
    } else if (response.id() == id) {
      return response;
    } else if (response.id() != 0) {
      kept_.push_back(std::move(response));
    }  // id 0: a refused callback answer (this client never sends one)
  }
}

absl::StatusOr<v1::StreamResponse> CallStream::Answered(uint64_t id) {
  ASSIGN_OR_RETURN(v1::StreamResponse response, WaitFor(id));
  if (response.status().code() != 0) return FromCallStatus(response.status());
  return response;
}

absl::Status CallStream::HandleInvocation(const v1::CallbackInvocation& invocation) {
  v1::StreamRequest answer;
  v1::CallbackAnswer* out = answer.mutable_callback_answer();
  out->set_invocation_id(invocation.invocation_id());
  auto handler = handlers_.find(invocation.callback_id());
  absl::StatusOr<v1::Value> result =
      handler == handlers_.end()
          ? absl::FailedPreconditionError(absl::StrCat(
                "the client has no handler for callback ", invocation.callback_id()))
          : [&]() -> absl::StatusOr<v1::Value> {
              std::vector<v1::Value> args(invocation.args().begin(), invocation.args().end());
              invocations_.push_back(invocation.invocation_id());
              absl::StatusOr<v1::Value> r = handler->second(args);
              invocations_.pop_back();
              return r;
            }();
  if (!result.ok()) {
    *out->mutable_error() = ToCallStatus(result.status());
  } else if (result->value_case() != v1::Value::VALUE_NOT_SET) {
    *out->mutable_result() = *std::move(result);
  }
  return SendRaw(answer);
}

absl::StatusOr<v1::CallResponse> CallStream::Call(const Library& library,
                                                  const std::string& symbol,
                                                  const std::vector<v1::Value>& args,
                                                  absl::Duration timeout) {
  ASSIGN_OR_RETURN(uint64_t id, Send(library, symbol, args, timeout));
  ASSIGN_OR_RETURN(v1::StreamResponse response, Answered(id));
  return std::move(*response.mutable_call());
}

absl::StatusOr<uint64_t> CallStream::RegisterCallback(const std::string& declaration,
                                                      CallbackHandler handler,
                                                      const CallbackOptions& options) {
  ASSIGN_OR_RETURN(Declaration parsed, ParseDeclaration(declaration, session_->classes_));
  v1::StreamRequest request = NewRequest(absl::ZeroDuration());
  request.clear_within_invocation();
  v1::RegisterCallback* r = request.mutable_register_callback();
  const uint64_t callback_id = next_callback_id_++;
  r->set_callback_id(callback_id);
  *r->mutable_signature() = parsed.signature;
  r->set_name(parsed.name);
  r->set_token(options.token);
  if (options.persistent) r->set_lifetime(v1::RegisterCallback::LIFETIME_PERSISTENT);
  ASSIGN_OR_RETURN(uint64_t id, SendNew(request));
  RETURN_IF_ERROR(Answered(id).status());
  handlers_[callback_id] = std::move(handler);
  return callback_id;
}

absl::Status CallStream::ReleaseCallback(uint64_t callback_id) {
  v1::StreamRequest request = NewRequest(absl::ZeroDuration());
  request.clear_within_invocation();
  request.mutable_release_callback()->set_callback_id(callback_id);
  ASSIGN_OR_RETURN(uint64_t id, SendNew(request));
  RETURN_IF_ERROR(Answered(id).status());
  handlers_.erase(callback_id);
  return absl::OkStatus();
}

absl::StatusOr<v1::StreamResponse> CallStream::ReadOne() {
  v1::StreamResponse response;
  if (finished_ || !stream_->Read(&response)) {
    if (!finished_) {
      finished_ = true;
      grpc::Status status = stream_->Finish();
      if (!status.ok()) {  // its code is the daemon's (a refused stream: why)
        absl::Status why = FromGrpcStatus(status);
        return WithNewMessage(why, absl::StrCat("the call stream ended: ", why.message()));
      }
    }
    return absl::UnavailableError("the call stream ended");
  }
  return response;
}

absl::Status CallStream::Close() {
  if (finished_) return absl::OkStatus();
  if (!writes_done_) {
    writes_done_ = true;
    stream_->WritesDone();
  }
  v1::StreamResponse dropped;
  while (stream_->Read(&dropped)) {
  }
  finished_ = true;
  return FromGrpcStatus(stream_->Finish());
}

void CallStream::Cancel() {
  context_->TryCancel();
  Close().IgnoreError();
}

}  // namespace ffibroker
