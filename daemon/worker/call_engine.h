// CallEngine: the worker's loaded library and its prepared calls.
//
// Open() dlopens the library, resolves every declared symbol and prepares
// one ffi_cif per symbol, all before the worker locks itself down; Call()
// then only copies bytes and runs ffi_call. Not thread-safe; the worker
// serves one call at a time.
//
//   ASSIGN_OR_RETURN(auto engine, CallEngine::Open(open_request));
//   ASSIGN_OR_RETURN(worker::v1::Result result, engine->Call(call_request));
#ifndef FFIBROKER_DAEMON_WORKER_CALL_ENGINE_H_
#define FFIBROKER_DAEMON_WORKER_CALL_ENGINE_H_

#include <ffi.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

class CallEngine {
 public:
  // Loads `open.path` and prepares every symbol. Errors carry a
  // worker::v1::Error code in their payload-free form: NOT_FOUND for a
  // missing symbol, FAILED_PRECONDITION for a dlopen failure,
  // INVALID_ARGUMENT for an unpreparable signature.
  static absl::StatusOr<std::unique_ptr<CallEngine>> Open(
      const worker::v1::Open& open);
  ~CallEngine();
  CallEngine(const CallEngine&) = delete;
  CallEngine& operator=(const CallEngine&) = delete;

  // Runs one call. INVALID_ARGUMENT if the request does not match the
  // prepared signature (wrong index, count or sizes); never touches memory
  // outside the call's own frame in that case.
  absl::StatusOr<worker::v1::Result> Call(const worker::v1::Call& call);

 private:
  struct Prepared {
    std::string name;
    void (*fn)() = nullptr;
    ffi_cif cif;
    std::vector<ffi_type*> arg_types;
    std::vector<size_t> arg_sizes;
    size_t result_size = 0;
  };

  explicit CallEngine(void* handle) : handle_(handle) {}

  void* handle_;  // from dlopen; never dlclosed (the worker exits instead)
  std::vector<std::unique_ptr<Prepared>> symbols_;  // stable addresses for cifs
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_CALL_ENGINE_H_
