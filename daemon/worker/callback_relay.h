// CallbackRelay: what runs when the library calls a bound callback closure.
//
// Invoke (on whichever thread the library called from): encodes the C
// arguments by the callback's signature (common/arg_kinds.h, "callback
// invocations": inline values as their bytes, a cstr copied up to its
// declared maximum length + 1, an `in` buffer by its declared or
// parameter-given length, a class pointer registered as a borrowed
// instance), sends CallbackInvoke (request_id 0, a fresh invocation id,
// within_invocation = the invocation whose nested request this thread is
// running), then waits for the CallbackAnswer with that id. While it waits
// it runs the nested requests of this invocation on this thread, at most
// kMaxCallbackNesting deep (deeper: Error CODE_BAD_REQUEST). The answer's
// value (exactly the result's size; integers widened as libffi expects) is
// the callback's result; borrowed instances made for the arguments are
// forgotten afterwards. errno is preserved across the invocation.
//
// Unbound: the library called a closure after its call ended or after its
// release: sends Fatal{callback_released: last id} and exits with status
// 128 (like thread_ended), never a jump into stale code.
//
// Thread-safe (library threads under the `threads` profile invoke too).
#ifndef FFIBROKER_DAEMON_WORKER_CALLBACK_RELAY_H_
#define FFIBROKER_DAEMON_WORKER_CALLBACK_RELAY_H_

#include <cstdint>

#include "daemon/worker/closure_pool.h"
#include "daemon/worker/worker_channel.h"

namespace ffibroker {

class RequestServer;

class CallbackRelay : public CallbackSink {
 public:
  // Both must outlive the relay.
  CallbackRelay(WorkerChannel* channel, RequestServer* server)
      : channel_(channel), server_(server) {}

  void Invoke(uint64_t callback_id, const TypeDesc& type, void* ret, void** args) override;
  [[noreturn]] void Unbound(uint64_t last_id) override;

 private:
  // Runs nested request `request` of invocation `invocation` and sends its reply.
  void RunNested(const worker::v1::DaemonToWorker& request, uint64_t invocation);

  WorkerChannel* const channel_;
  RequestServer* const server_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_CALLBACK_RELAY_H_
