// CallEngine: the worker's loaded library, its prepared calls and instances.
//
// Open() dlopens the library, rebuilds the session's classes (same layouts
// as the daemon, see common/type_table.h), resolves exactly the names the
// daemon authorized (NamesToResolve, common/resolved_names.h: declared
// functions, statics and the destructors of owned results; only the
// library's own definitions unless Open.allow_dependency_symbols) and
// prepares one ffi_cif per symbol, all before the worker locks itself down; Call() then only materializes the
// arguments in a per-call frame (which owns every temporary: struct copies,
// string and buffer copies; how each kind of argument arrives is
// common/arg_kinds.h), runs ffi_call and encodes the result. Instance
// operations go through the InstanceStore (ids, never addresses). Nothing
// here opens files or sockets after Open.
//
// Callback parameters (`fn(...) -> T`): Open allocates
// Open.callback_closures closures (daemon/worker/closure_pool.h) before
// the library is loaded; Call binds one to each callback id it passes (per
// call, or persistent if the id is in Call.persistent_callbacks) and ends
// the per-call bindings when the library returns. Invocations go to the
// CallbackSink given to Open.
//
// Thread-safe: calls may run at once on the main thread and on a library
// thread serving a nested request of a callback invocation (the
// `threads` profile); the instance store and the closure pool are locked,
// the library's own code is not.
//
//   ASSIGN_OR_RETURN(auto engine, CallEngine::Open(open_request, &relay));
//   ASSIGN_OR_RETURN(worker::v1::Result result, engine->Call(call_request));
#ifndef FFIBROKER_DAEMON_WORKER_CALL_ENGINE_H_
#define FFIBROKER_DAEMON_WORKER_CALL_ENGINE_H_

#include <ffi.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/type_table.h"
#include "daemon/worker/closure_pool.h"
#include "daemon/worker/instance_store.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

class CallEngine {
 public:
  // Loads `open.path` and prepares every symbol. NOT_FOUND for a missing
  // (non-optional) symbol, static or needed destructor (also when only a
  // dependency of the library defines it), FAILED_PRECONDITION
  // for a dlopen failure, INVALID_ARGUMENT for an invalid class or an
  // unpreparable signature.
  // `callbacks` (not owned, must outlive the engine) receives callback
  // invocations; it may be null when Open.callback_closures is 0.
  // INVALID_ARGUMENT for more closures than kMaxCallbackClosures, INTERNAL
  // if they cannot be made (see ClosurePool::Create).
  static absl::StatusOr<std::unique_ptr<CallEngine>> Open(
      const worker::v1::Open& open, CallbackSink* callbacks = nullptr);
  ~CallEngine();
  CallEngine(const CallEngine&) = delete;
  CallEngine& operator=(const CallEngine&) = delete;

  // Runs one call. INVALID_ARGUMENT if the request does not match the
  // prepared signature (wrong index, count, sizes, instance ids, a NULL
  // callback not declared nullable); RESOURCE_EXHAUSTED if no callback
  // closure is free. Never touches memory outside the call's own frame and
  // known instances then.
  absl::StatusOr<worker::v1::Result> Call(const worker::v1::Call& call);

  // Callback support: registers a pointer the library passed to a
  // callback as a borrowed instance of `klass` (its id), and forgets it
  // after the invocation.
  uint64_t BorrowInstance(void* ptr, const TypeDesc& klass);
  void ForgetInstance(uint64_t id);
  // Unbinds persistent callback `id` (CallbackRelease); false if it was not
  // bound persistently.
  bool ReleaseCallback(uint64_t id);
  // The callback closures (for tests and the relay).
  const ClosurePool& closures() const { return *closures_; }

  // Instance and static operations; errors as InstanceStore's.
  absl::StatusOr<worker::v1::InstanceResult> NewInstance(const worker::v1::InstanceNew& req);
  absl::StatusOr<worker::v1::InstanceResult> ReadInstance(const worker::v1::InstanceRead& req);
  absl::StatusOr<worker::v1::InstanceResult> WriteInstance(const worker::v1::InstanceWrite& req);
  absl::StatusOr<worker::v1::InstanceResult> FreeInstance(const worker::v1::InstanceFree& req);
  absl::StatusOr<worker::v1::InstanceResult> AccessStatic(const worker::v1::StaticAccess& req);

 private:
  struct Prepared {
    std::string name;
    void (*fn)() = nullptr;  // null: optional and missing
    ResolvedSignature sig;
    ffi_cif cif;
    std::vector<ffi_type*> arg_types;
  };
  struct Static {
    void* address = nullptr;  // null: optional and missing
    TypeRef type;
  };

  explicit CallEngine(void* handle) : handle_(handle) {}

  // Turns a pointer result into result bytes (instance id, string bytes).
  absl::Status EncodePointerResult(const TypeDesc& type, void* ptr,
                                   worker::v1::Result* out);

  void* handle_;  // from dlopen; never dlclosed (the worker exits instead)
  std::unique_ptr<ClosurePool> closures_;
  ClassTable classes_;
  std::vector<InstanceStore::Destructor> destructors_;  // by class index
  std::vector<std::unique_ptr<Prepared>> symbols_;  // stable addresses for cifs
  std::vector<Static> statics_;
  // Recursive: a destructor run by FreeInstance may invoke a callback whose
  // handler's nested request uses instances on the same thread.
  std::recursive_mutex instances_mu_;
  InstanceStore instances_;  // guarded by instances_mu_
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_CALL_ENGINE_H_
