// CallbackScope: how a call reaches the callbacks registered on its
// CallStream (docs/callbacks.md).
//
// The codec (call_codec.h) asks the scope to bind each callback argument;
// Library tells it where the call went (which worker) and routes the
// worker's invocations to it (WorkerProcess::CallbackRoute). The one
// implementation is StreamCallbacks (stream_callbacks.h), one per stream; a
// unary call has no scope, so a callback argument there is refused.
#ifndef FFIBROKER_DAEMON_CALLBACK_SCOPE_H_
#define FFIBROKER_DAEMON_CALLBACK_SCOPE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/type_desc.h"
#include "daemon/worker_process.h"

namespace ffibroker {

struct InstanceHooks;

class CallbackScope : public WorkerProcess::CallbackRoute {
 public:
  // What the worker gets for one callback argument.
  struct Bound {
    uint64_t wire_id = 0;     // the worker's id of the callback (never 0)
    bool persistent = false;  // stays bound after the call
    // The worker the call must run in (a persistent callback already
    // bound in one), and its generation; 0: any.
    uint64_t generation = 0;
    std::weak_ptr<WorkerProcess> worker;
  };
  // Callback `callback_id` for a parameter declared `declared` (a
  // TypeKind::kCallback). INVALID_ARGUMENT if it is not registered or its
  // signature differs (CallbackSignatureMatches); PERMISSION_DENIED if what
  // created it no longer allows CALLBACKS (token revoked or expired,
  // session permission revoked).
  virtual absl::StatusOr<Bound> Bind(uint64_t callback_id, const TypeRef& declared) = 0;
  // Call `call_id` of the stream was sent to `worker` (generation
  // `generation`) with the callbacks `bound` (each Bind's result), and
  // decodes instance arguments of invocations with `hooks`. Binds the
  // worker's routes for them.
  virtual void Sent(uint64_t call_id, const std::shared_ptr<WorkerProcess>& worker,
                    uint64_t generation, const std::vector<Bound>& bound,
                    const InstanceHooks& hooks) = 0;
  // Call `call_id` ended (its routes for per-call callbacks are unbound).
  virtual void Unsent(uint64_t call_id) = 0;
};

// The callback side of one call: the stream's scope, the call's stream id,
// and for a call sent by a callback's handler, where it must run.
struct CallbackContext {
  std::shared_ptr<CallbackScope> scope;  // null: not on a stream
  uint64_t call_id = 0;
  // Non-zero for a nested call: the worker generation running the
  // invocation, and the worker's id of that invocation.
  uint64_t nested_generation = 0;
  uint64_t within_invocation = 0;
  std::weak_ptr<WorkerProcess> nested_worker;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_CALLBACK_SCOPE_H_
