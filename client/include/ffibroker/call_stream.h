// CallStream: a pipelined stream of calls bound to one session.
//
// Send() queues a call (or a batch) and returns at once with its id; the
// daemon answers each as its worker finishes, possibly out of order, and
// Receive() returns the answers in the order they arrive. Calls to one
// worker run in the order they were sent. One thread may Send while another
// Receives (writes are serialized); neither method is safe to call from two
// threads at once. Callback handlers (ffibroker/callback.h) run on the
// receiving thread.
//
//   ASSIGN_OR_RETURN(auto stream, session->OpenStream());
//   for (double x : xs) RETURN_IF_ERROR(stream->Send(*libm, "cos", {ToValue(x)}).status());
//   for (size_t i = 0; i < xs.size(); ++i) {
//     ASSIGN_OR_RETURN(v1::StreamResponse r, stream->Receive());  // r.id() says which
//   }
//   RETURN_IF_ERROR(stream->Close());
#ifndef FFIBROKER_CLIENT_CALL_STREAM_H_
#define FFIBROKER_CLIENT_CALL_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ffibroker/callback.h"
#include "ffibroker/client.h"
#include "ffibroker/v1/broker.grpc.pb.h"

namespace ffibroker {

// How CallStream::RegisterCallback registers a callback.
struct StreamCallbackOptions {
  // The library may keep the pointer and call it during later calls, until
  // ReleaseCallback or the stream's end.
  bool persistent = false;
  // Create the callback under a token that allows CALLBACKS (it keeps
  // working after the session's own permission is revoked).
  std::string token;
};

class CallStream {
 public:
  ~CallStream();  // closes the stream (answers not yet received are dropped)
  CallStream(const CallStream&) = delete;
  CallStream& operator=(const CallStream&) = delete;

  // Sends a call of `symbol` in `library` (of this stream's session);
  // returns the id its answer will carry. `timeout` (0: none) bounds it
  // from its arrival. UNAVAILABLE if the stream is broken.
  absl::StatusOr<uint64_t> Send(const Library& library, const std::string& symbol,
                                const std::vector<v1::Value>& args,
                                absl::Duration timeout = absl::ZeroDuration());
  // Sends a batch (see Library::CallBatch).
  absl::StatusOr<uint64_t> SendBatch(const Library& library,
                                     const std::vector<v1::BatchCall>& calls,
                                     absl::Duration timeout = absl::ZeroDuration());
  // Sends a request built by the caller (its id is used as it is).
  absl::Status SendRaw(const v1::StreamRequest& request);

  // Waits for the next answer. Its status() is the call's own; the
  // returned status is the stream's once it ended: the daemon's status
  // with its code (RESOURCE_EXHAUSTED for a stream past max_streams,
  // UNAUTHENTICATED, ...), or UNAVAILABLE if it ended without one.
  // Callback invocations that arrive meanwhile are handled (their handlers
  // run here) and never returned.
  absl::StatusOr<v1::StreamResponse> Receive();

  // Sends a call and waits for its answer (handling callbacks meanwhile;
  // answers to other requests are kept for Receive). Inside a callback's
  // handler the call is sent within that invocation: it runs nested, in
  // the worker waiting for the handler's answer. Returns the call's own
  // status.
  absl::StatusOr<v1::CallResponse> Call(const Library& library, const std::string& symbol,
                                        const std::vector<v1::Value>& args,
                                        absl::Duration timeout = absl::ZeroDuration());

  // Callbacks (ffibroker/callback.h, docs/callbacks.md). Registers
  // `handler` under `declaration` ("i32 cmp(in u8[4] a, in u8[4] b)";
  // classes registered in the session may be named) and returns the id to
  // pass with CallbackValue. Waits for the daemon's answer:
  // PERMISSION_DENIED without the CALLBACKS operation, INVALID_ARGUMENT
  // for a signature a callback cannot have.
  using CallbackOptions = StreamCallbackOptions;
  absl::StatusOr<uint64_t> RegisterCallback(const std::string& declaration,
                                            CallbackHandler handler,
                                            const CallbackOptions& options);
  absl::StatusOr<uint64_t> RegisterCallback(const std::string& declaration,
                                            CallbackHandler handler) {
    return RegisterCallback(declaration, std::move(handler), CallbackOptions());
  }
  template <typename Signature>
  absl::StatusOr<uint64_t> RegisterCallback(const Callback<Signature>& callback,
                                            const CallbackOptions& options = CallbackOptions()) {
    return RegisterCallback(callback.declaration(), callback.Handler(), options);
  }
  // Forgets a callback (a persistent one is released in its worker).
  absl::Status ReleaseCallback(uint64_t id);

  // Half-closes, waits for the daemon to finish the stream (every answer
  // not yet received is read and dropped) and returns its status.
  absl::Status Close();
  // Cancels the stream at once (calls still running are not answered).
  void Cancel();

 private:
  friend class Session;
  CallStream(Session* session, std::unique_ptr<grpc::ClientContext> context,
             std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>>
                 stream)
      : session_(session), context_(std::move(context)), stream_(std::move(stream)) {}
  // A request with the next id, the session binding (until the first send)
  // and `timeout` (0: the stream's deadline).
  v1::StreamRequest NewRequest(absl::Duration timeout);
  // Sends a request made by NewRequest; returns its id.
  absl::StatusOr<uint64_t> SendNew(const v1::StreamRequest& request);
  // Reads until the answer to request `id` arrives (handling invocations,
  // keeping other answers for Receive).
  absl::StatusOr<v1::StreamResponse> WaitFor(uint64_t id);
  // WaitFor, with a refusal (a non-zero CallStatus) as the error.
  absl::StatusOr<v1::StreamResponse> Answered(uint64_t id);
  // Reads one response from the stream (the stream's status once it ended).
  absl::StatusOr<v1::StreamResponse> ReadOne();
  // Runs the handler of an invocation and sends its answer.
  absl::Status HandleInvocation(const v1::CallbackInvocation& invocation);

  Session* const session_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream_;
  std::mutex write_mu_;  // one write at a time (handlers answer while others send)
  std::atomic<uint64_t> next_id_{1};
  std::map<uint64_t, CallbackHandler> handlers_;  // by callback id
  uint64_t next_callback_id_ = 1;
  std::vector<uint64_t> invocations_;  // handlers running, innermost last
  std::deque<v1::StreamResponse> kept_;  // answers read while waiting for another
  std::atomic<bool> bound_{false};  // the session id was sent
  bool writes_done_ = false;
  bool finished_ = false;
};

}  // namespace ffibroker

#endif  // FFIBROKER_CLIENT_CALL_STREAM_H_
