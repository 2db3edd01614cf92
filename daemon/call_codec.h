// The daemon's half of a call with classes: client Values <-> the worker's
// native encoding (see worker.proto), built on the one value codec.
//
// EncodeCall validates every argument against the resolved signature
// (values, enum sets, UTF-8, buffer sizes and length parameters, handles via
// InstanceHooks) before anything reaches the worker. DecodeCallResult treats
// the worker's reply as hostile: sizes are protocol (a mismatch is a
// protocol violation, the worker is killed), values are the library's (an
// invalid bool, enum, UTF-8 or overlong string is DATA_LOSS naming it).
//
// Stateless and thread-compatible; the hooks carry the session context.
#ifndef FFIBROKER_DAEMON_CALL_CODEC_H_
#define FFIBROKER_DAEMON_CALL_CODEC_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "common/limits.h"
#include "common/type_table.h"
#include "daemon/callback_scope.h"
#include "ffibroker/v1/broker.pb.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

// Where an instance lives: its id in its worker and the generation of that
// worker (every worker start has a generation of its own).
struct InstanceRef {
  uint64_t worker_id = 0;
  uint64_t generation = 0;
};

// How a call reaches the session's instance table, and the policy's bounds
// on one argument. Built by the SessionManager for one call or batch;
// used by Library and by this codec.
struct InstanceHooks {
  // A client handle used as an argument of class `klass` -> where the
  // instance lives; `live` says whether a worker generation still runs (a
  // stale instance is an error). An error Status (unknown, foreign, stale,
  // wrong class or library) otherwise.
  std::function<absl::StatusOr<InstanceRef>(const TypeDesc& klass, uint64_t handle,
                                            const std::function<bool(uint64_t)>& live)>
      map;
  // A pointer result (an instance at `where`, worker_id != 0) -> a new
  // client handle.
  std::function<uint64_t(const TypeDesc& handle_type, const InstanceRef& where)> adopt;
  // The policy's bounds on what one argument may carry (Limits
  // max_buffer_bytes / max_string_bytes); never above the built-in caps.
  uint64_t max_buffer_bytes = kMaxBufferLength;
  uint64_t max_string_bytes = kDefaultMaxStringLength;
  // The callbacks a call may pass (set for a call on a CallStream).
  CallbackContext callbacks;
};

// Fills `out` (args, arg_null) for `args`, by parameter kind
// (common/arg_kinds.h). Instance arguments are mapped with `hooks.map`
// (given `live`) and must all live in worker generation `*generation`
// (0 on entry: any; set to theirs). INVALID_ARGUMENT naming the argument
// ("argument 1 (p: Point*): ..."), RESOURCE_EXHAUSTED past a policy or
// payload limit, or the hook's status.
// Callback arguments are bound through hooks.callbacks.scope (refused
// without one: INVALID_ARGUMENT) and collected in `*bound` (refused when
// `bound` is null: a batch cannot pass callbacks); a persistent one already
// bound in a worker pins the call to it like an instance.
absl::Status EncodeCall(const ResolvedSignature& sig,
                        const google::protobuf::RepeatedPtrField<v1::Value>& args,
                        const InstanceHooks& hooks, const std::function<bool(uint64_t)>& live,
                        worker::v1::Call* out, uint64_t* generation,
                        std::vector<CallbackScope::Bound>* bound = nullptr);

// Validates `result` (the reply to `sent`, run on worker generation
// `generation`; instance results become handles through `hooks.adopt`). A
// protocol violation is returned as UNAVAILABLE with `*violation` set (the
// caller kills the worker); invalid library values are DATA_LOSS; a
// non-zero FfiReturn status is mapped to its gRPC code (see
// docs/classes.md).
absl::StatusOr<v1::CallResponse> DecodeCallResult(const std::string& symbol,
                                                  const ResolvedSignature& sig,
                                                  const worker::v1::Call& sent,
                                                  const worker::v1::Result& result,
                                                  const InstanceHooks& hooks,
                                                  uint64_t generation, bool* violation);

// The arguments of a callback invocation (worker::v1::CallbackInvoke),
// checked against the callback's signature `sig` (DATA_LOSS naming
// `callback` and the argument: the library's values or the worker's
// encoding). Class pointers are not made handles here: their worker
// instance ids are listed in `instances` (argument index, id), for the
// caller to adopt once every argument is known to be valid.
struct DecodedInvocation {
  std::vector<v1::Value> values;
  std::vector<std::pair<size_t, uint64_t>> instances;
};
absl::StatusOr<DecodedInvocation> DecodeCallbackArgs(const std::string& callback,
                                                     const ResolvedSignature& sig,
                                                     const worker::v1::CallbackInvoke& invoke);


// The name of an FfiReturn status ("ExecutionFail"), or "unknown".
const char* FfiReturnName(int32_t status);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_CALL_CODEC_H_
