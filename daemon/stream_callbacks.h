// StreamCallbacks: the callbacks of one CallStream (docs/callbacks.md).
//
// Holds what the client registered (RegisterCallback), binds callbacks to
// the calls that pass them (CallbackScope), and relays invocations: the
// worker's CallbackInvoke is validated against the callback's signature,
// sent to the client as a CallbackInvocation, and the client's
// CallbackAnswer is validated against the result type and sent back to the
// worker. The relay never blocks: the worker's thread waits for the answer,
// no daemon thread does.
//
// Failures: a bad answer (wrong type, out of range, an error from the
// handler) gives the library a zero result and fails the call that invoked
// the callback with a message naming it (CallEnded); an answer that never
// comes is bounded by that call's deadline (the worker, stuck in the
// callback, is then killed). When the stream ends (Close), invocations
// still outstanding are answered with zeros, their calls fail, and
// persistent callbacks are released in their workers.
//
// Thread-safe: registrations and answers arrive on gRPC threads,
// invocations on the WorkerWatcher's thread.
#ifndef FFIBROKER_DAEMON_STREAM_CALLBACKS_H_
#define FFIBROKER_DAEMON_STREAM_CALLBACKS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/type_table.h"
#include "daemon/call_codec.h"
#include "daemon/callback_scope.h"
#include "ffibroker/v1/broker.pb.h"

namespace ffibroker {

class StreamCallbacks final : public CallbackScope,
                            public std::enable_shared_from_this<StreamCallbacks> {
 public:
  // Writes a response on the stream (dropped once the stream finished).
  // Called with the relay's lock held and never after Close returned, so
  // the stream must not call the relay under a lock the sink takes.
  using Sink = std::function<void(v1::StreamResponse)>;
  explicit StreamCallbacks(Sink sink) : sink_(std::move(sink)) {}

  // Registers `request` (its signature resolved against the session's
  // classes in `resolved`); `allowed` re-checks, every time the callback is
  // passed, that what created it still allows CALLBACKS. INVALID_ARGUMENT
  // for id 0, an id in use or a signature a callback cannot have;
  // RESOURCE_EXHAUSTED past kMaxCallbacksPerStream.
  absl::Status Register(const v1::RegisterCallback& request, ResolvedSignature resolved,
                        std::function<absl::Status()> allowed);
  // Forgets callback `callback_id`; a persistent one is unbound in its
  // worker (the library calling it afterwards ends the worker). Calls
  // running with it keep it until they end. NOT_FOUND if not registered.
  absl::Status Release(uint64_t callback_id);
  // The client's answer. NOT_FOUND if the invocation is not outstanding;
  // any other problem with it fails the invoking call instead.
  absl::Status Answer(const v1::CallbackAnswer& answer);
  // Where a request sent within invocation `invocation_id` (its handler's
  // nested call `call_id`) must run. FAILED_PRECONDITION if the invocation
  // is not outstanding; RESOURCE_EXHAUSTED past kMaxCallbackNesting.
  absl::StatusOr<CallbackContext> Nested(uint64_t invocation_id, uint64_t call_id);
  // The context of an ordinary call `call_id` of the stream.
  CallbackContext ForCall(uint64_t call_id);
  // Call `call_id` ended with `status`: returns what to report. A failed
  // callback of the call wins over an OK result; a deadline passed while
  // the client owed an answer says so.
  absl::Status CallEnded(uint64_t call_id, absl::Status status);
  // Invocations waiting for the client's answer (lock-free: the stream asks
  // under its own lock).
  bool HasOutstandingInvocations() const { return waiting_.load() > 0; }
  // The stream ended (`why`): see the header comment. Idempotent.
  void Close(const std::string& why);

  // CallbackScope.
  absl::StatusOr<Bound> Bind(uint64_t callback_id, const TypeRef& declared) override;
  void Sent(uint64_t call_id, const std::shared_ptr<WorkerProcess>& worker, uint64_t generation,
            const std::vector<Bound>& bound, const InstanceHooks& hooks) override;
  void Unsent(uint64_t call_id) override;
  void Invoked(std::weak_ptr<WorkerProcess> worker, worker::v1::CallbackInvoke invoke) override;

 private:
  struct Registration {
    uint64_t client_id = 0;
    uint64_t wire_id = 0;
    std::string name;  // for messages: "callback 'cmp'" or "callback 7"
    bool persistent = false;
    ResolvedSignature signature;  // as registered
    // The declared callback type it was passed for (the same function
    // type): invocations are decoded with its signature.
    TypeRef declared;
    std::function<absl::Status()> allowed;
    // A persistent callback once passed: the workers holding it bound
    // (normally one; two calls may place it at once), with generations.
    std::vector<std::pair<std::weak_ptr<WorkerProcess>, uint64_t>> bound_in;
  };
  // A call of the stream running in a worker, and what it bound there.
  struct Running {
    WorkerProcess* worker = nullptr;  // identity only
    std::weak_ptr<WorkerProcess> weak;
    uint64_t generation = 0;
    uint64_t sequence = 0;            // order sent
    uint64_t parent_invocation = 0;   // the stream invocation it is nested in
    std::vector<uint64_t> per_call;   // wire ids of per-call callbacks
    InstanceHooks hooks;              // for instance arguments of invocations
  };
  struct Invocation {
    std::weak_ptr<WorkerProcess> worker;
    uint64_t generation = 0;
    uint64_t worker_invocation = 0;
    uint64_t call_id = 0;  // 0: not during a call of this stream
    uint32_t depth = 0;
    std::string name;
    TypeRef result;
    size_t bytes = 0;  // of its arguments, counted in bytes_waiting_
  };

  // Checks and decodes the invocation's arguments (DATA_LOSS naming the
  // callback and argument: the library's values or the worker's encoding).
  absl::StatusOr<std::vector<v1::Value>> DecodeArgs(const Registration& r,
                                                    const worker::v1::CallbackInvoke& invoke,
                                                    const Running* during)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends the answer bytes for `inv` to its worker, without waiting: the
  // worker waits for it, so its channel has room; if not, it is killed.
  static void SendAnswer(const Invocation& inv, uint64_t stream_invocation, std::string value);
  // Remembers a released registration's result type in released_.
  void Retire(const Registration& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Unbinds persistent callback `wire` in `worker`: the route stays until
  // the worker confirms (an invocation meanwhile is answered with zeros).
  static void ReleaseIn(const std::shared_ptr<WorkerProcess>& worker, uint64_t wire);
  // Zero bytes of the result type (empty for void).
  static std::string Zeros(const TypeRef& result);
  // Records that call `call_id` fails with `status` (the first one wins).
  void FailCall(uint64_t call_id, absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Sink sink_;
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::string closed_why_ ABSL_GUARDED_BY(mu_);  // Close's reason
  std::map<uint64_t, Registration> registrations_ ABSL_GUARDED_BY(mu_);  // by client id
  std::map<uint64_t, uint64_t> by_wire_ ABSL_GUARDED_BY(mu_);            // wire -> client id
  std::map<uint64_t, Running> running_ ABSL_GUARDED_BY(mu_);             // by call id
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Invocation> invocations_ ABSL_GUARDED_BY(mu_);      // by stream id
  uint64_t next_invocation_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, absl::Status> failures_ ABSL_GUARDED_BY(mu_);       // by call id
  // Result types of released callbacks still bound in a worker (a call
  // that passed one may still run), newest last, at most
  // kMaxCallbacksPerStream: an invocation of one is answered with zeros.
  std::deque<std::pair<uint64_t, TypeRef>> released_ ABSL_GUARDED_BY(mu_);
  size_t bytes_waiting_ ABSL_GUARDED_BY(mu_) = 0;  // arguments of invocations_
  size_t handles_adopted_ ABSL_GUARDED_BY(mu_) = 0;  // borrowed handles made
  std::atomic<size_t> waiting_{0};  // invocations_.size(), for HasOutstandingInvocations
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_STREAM_CALLBACKS_H_
