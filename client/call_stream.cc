#include "ffibroker/call_stream.h"

#include <algorithm>
#include <utility>

#include "common/grpc_status.h"
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
  v1::StreamResponse response;
  if (finished_ || !stream_->Read(&response)) {
    if (!finished_) {
      finished_ = true;
      grpc::Status status = stream_->Finish();
      if (!status.ok()) {
        absl::Status why = FromGrpcStatus(status);
        return absl::UnavailableError(absl::StrCat("the call stream ended: ", why.ToString()));
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
