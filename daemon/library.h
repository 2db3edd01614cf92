// Library: one opened library instance and the worker serving it.
//
// Holds the declared symbols (the contract every call is validated against)
// and the current worker. If the worker dies (crash, deadline, protocol
// violation) the call that was running fails with the reason, and the next
// call starts a fresh worker and reopens the library in it. If it died
// between calls (noticed by the WorkerWatcher, or by the check before each
// use), the next call runs on a fresh worker and its response says what
// happened (CallResponse.worker_notice).
//
// Thread-safety: all methods are thread-safe; calls are serialized (one
// worker runs one call at a time). Stop() may interrupt a running call.
//
//   ASSIGN_OR_RETURN(auto lib, Library::Open(spec, options, deadline));
//   ASSIGN_OR_RETURN(v1::CallResponse r, lib->Call(request, deadline));
#ifndef FFIBROKER_DAEMON_LIBRARY_H_
#define FFIBROKER_DAEMON_LIBRARY_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/type_table.h"
#include "daemon/worker_launcher.h"
#include "daemon/worker_process.h"
#include "ffibroker/v1/broker.pb.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

// How a library call reaches the daemon's instance table: `map` checks a
// handle argument and returns the worker's instance id, `adopt` turns a
// pointer result into a new handle. `generation` is the worker generation
// the call runs in (instances of other generations are stale).
struct InstanceContext {
  std::function<absl::StatusOr<uint64_t>(const TypeDesc& klass, uint64_t handle,
                                         uint64_t generation)>
      map;
  std::function<uint64_t(const TypeDesc& type, uint64_t worker_id, uint64_t generation)> adopt;
  // The policy's per-argument bounds (see HandleHooks).
  uint64_t max_buffer_bytes = kMaxBufferLength;
  uint64_t max_string_bytes = kDefaultMaxStringLength;
};

// How a library's workers are started and confined.
struct WorkerSpec {
  WorkerLauncher* launcher = nullptr;  // borrowed; outlives the library
  std::string profile = "strict";      // confinement profile name
  std::vector<v1::Layer> required_layers;  // from the policy at open time
  // The permission's PermissionLibrary.allow_dependency_symbols: may a
  // dependency of the library define the names the worker resolves?
  bool allow_dependency_symbols = false;
  std::string owner;  // who opened it, for logs ("session s3")
};

class Library {
 public:
  // Starts a worker that loads `path` (absolute, already allowed by policy)
  // and resolves `symbols` and `statics` (already resolved against
  // `classes`, the session's classes at open time). NOT_FOUND for a missing
  // symbol, FAILED_PRECONDITION if the loader refused the file,
  // UNAVAILABLE if the worker could not start or died while loading.
  // `spec` says how its workers are confined. The worker resolves exactly
  // NamesToResolve(WorkerOpen(...)) (common/resolved_names.h), which the
  // caller has authorized.
  static absl::StatusOr<std::unique_ptr<Library>> Open(
      std::string path,
      const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
      const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
      const ClassTable& classes, WorkerSpec spec, absl::Time deadline);

  // The request that makes a worker load `path` with these declarations
  // (what Open sends; the caller authorizes the names it resolves).
  static worker::v1::Open WorkerOpen(
      const std::string& path,
      const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
      const google::protobuf::RepeatedPtrField<v1::StaticDeclaration>& statics,
      const ClassTable& classes, const WorkerSpec& spec);

  // Validates `request` against the declared signature and runs it.
  // INVALID_ARGUMENT / NOT_FOUND for bad input (the worker never sees it);
  // DEADLINE_EXCEEDED if the deadline passed (the worker is killed);
  // PERMISSION_DENIED naming the syscall if the library made one its
  // profile forbids; RESOURCE_EXHAUSTED if it ran out of memory or CPU time;
  // UNAVAILABLE if the worker died (naming the signal) or broke the
  // protocol; DATA_LOSS if the library returned an invalid value (e.g. a
  // bool that is neither 0 nor 1); FAILED_PRECONDITION for a missing
  // optional symbol. After any worker end the next call starts a new worker.
  absl::StatusOr<v1::CallResponse> Call(const v1::CallRequest& request,
                                        absl::Time deadline,
                                        const InstanceContext& instances);

  // Runs one instance or static operation (worker::v1::InstanceNew, ...)
  // and validates the reply kind. `generation` is the worker generation the
  // instance lives in, or 0 for "whatever is current" (InstanceNew, statics;
  // starts a worker if needed); `*used` receives the generation that served
  // it. FAILED_PRECONDITION if the instance's worker is gone (stale);
  // errors of a dead worker as Call's.
  absl::StatusOr<worker::v1::InstanceResult> InstanceOp(
      const worker::v1::DaemonToWorker& request, uint64_t generation,
      absl::Time deadline, uint64_t* used = nullptr);

  // True if `symbol` is declared and returns an instance handle (so a call
  // of it may create one).
  bool ReturnsInstance(const std::string& symbol) const;

  // Optional symbols and statics the library does not export.
  const std::vector<std::string>& missing() const { return missing_; }
  // The static named `name`: its index, type and mutability; NOT_FOUND if
  // not declared, FAILED_PRECONDITION if optional and missing.
  struct StaticInfo {
    int index;
    TypeRef type;
    bool is_mutable;
  };
  absl::StatusOr<StaticInfo> FindStatic(const std::string& name) const;

  // Kills the worker and refuses further calls (FAILED_PRECONDITION).
  void Stop();

  const std::string& path() const { return path_; }
  // How many of the session's classes the worker knows (those registered
  // before the library was opened).
  int class_count() const { return open_.classes_size(); }
  pid_t worker_pid() const;
  // The layers in force in the current worker.
  v1::WorkerLayers layers() const;

 private:
  Library(std::string path, worker::v1::Open open, WorkerSpec spec)
      : path_(std::move(path)), open_(std::move(open)), spec_(std::move(spec)) {}

  // Starts a worker and loads the library in it; on success installs it.
  absl::Status StartWorker(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(call_mu_);
  // The running worker, restarted first if it died. A death nobody was
  // told of (between calls) is logged and kept in notice_.
  absl::StatusOr<WorkerProcess*> LiveWorker(absl::Time deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(call_mu_);
  // Sends `request` to `worker`; `what` names the operation for a later
  // notice ("'f'"). A failure was told to the caller, so it is no notice.
  absl::StatusOr<worker::v1::WorkerToDaemon> Exchange(WorkerProcess* worker,
                                                      worker::v1::DaemonToWorker* request,
                                                      absl::Time deadline, std::string what)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(call_mu_);
  absl::StatusOr<worker::v1::InstanceResult> InstanceOpLocked(
      const worker::v1::DaemonToWorker& request, uint64_t generation,
      absl::Time deadline, uint64_t* used) ABSL_EXCLUSIVE_LOCKS_REQUIRED(call_mu_);
  // Asks the fresh worker which optional symbols and statics it lacks.
  absl::Status ProbeOptional(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(call_mu_);

  const std::string path_;
  const worker::v1::Open open_;           // the request that loads us
  const WorkerSpec spec_;
  std::map<std::string, int> symbol_index_;  // name -> index in open_
  std::vector<ResolvedSignature> signatures_;  // by symbol index
  std::vector<bool> capture_errno_;            // by symbol index
  std::vector<bool> symbol_missing_;           // by symbol index
  std::map<std::string, StaticInfo> statics_;
  std::vector<bool> static_missing_;           // by static index
  std::vector<std::string> missing_;

  absl::Mutex call_mu_;  // serializes calls and worker replacement
  mutable absl::Mutex worker_mu_;  // guards the pointer for Stop()/worker_pid()
  std::unique_ptr<WorkerProcess> worker_ ABSL_GUARDED_BY(worker_mu_);
  bool stopped_ ABSL_GUARDED_BY(worker_mu_) = false;
  // Incremented by every worker start; instances of older ones are gone.
  uint64_t generation_ ABSL_GUARDED_BY(call_mu_) = 0;
  // The last operation the current worker completed ("'f'"), whether its
  // end was already reported to a caller, and what the next call says
  // about a death between calls.
  std::string last_operation_ ABSL_GUARDED_BY(call_mu_) = "loading the library";
  bool end_reported_ ABSL_GUARDED_BY(call_mu_) = false;
  std::string notice_ ABSL_GUARDED_BY(call_mu_);
  v1::WorkerLayers layers_ ABSL_GUARDED_BY(worker_mu_);
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_LIBRARY_H_
