// Library: one opened library instance and the worker serving it.
//
// Holds the declared symbols (the contract every call is validated against)
// and the current worker. If the worker dies (crash, deadline, protocol
// violation) the call that was running fails with the reason, and the next
// call starts a fresh worker and reopens the library in it.
//
// Thread-safety: all methods are thread-safe; calls are serialized (one
// worker runs one call at a time). Stop() may interrupt a running call.
//
//   ASSIGN_OR_RETURN(auto lib, Library::Open(spec, options, deadline));
//   ASSIGN_OR_RETURN(v1::CallResponse r, lib->Call(request, deadline));
#ifndef FFIBROKER_DAEMON_LIBRARY_H_
#define FFIBROKER_DAEMON_LIBRARY_H_

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/worker_launcher.h"
#include "daemon/worker_process.h"
#include "ffibroker/v1/broker.pb.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

class Library {
 public:
  // Starts a worker that loads `path` (absolute, already allowed by policy)
  // and resolves `symbols` (already validated). NOT_FOUND for a missing
  // symbol, FAILED_PRECONDITION if the loader refused the file,
  // UNAVAILABLE if the worker could not start or died while loading.
  // `launcher` is borrowed and must outlive the library; `profile` names
  // the confinement profile of its workers.
  static absl::StatusOr<std::unique_ptr<Library>> Open(
      std::string path,
      const google::protobuf::RepeatedPtrField<v1::SymbolDeclaration>& symbols,
      WorkerLauncher* launcher, std::string profile, absl::Time deadline);

  // Validates `request` against the declared signature and runs it.
  // INVALID_ARGUMENT / NOT_FOUND for bad input (the worker never sees it);
  // DEADLINE_EXCEEDED if the deadline passed (the worker is killed);
  // PERMISSION_DENIED naming the syscall if the library made one its
  // profile forbids; RESOURCE_EXHAUSTED if it ran out of memory or CPU time;
  // UNAVAILABLE if the worker died (naming the signal) or broke the
  // protocol; DATA_LOSS if the library returned an invalid value (e.g. a
  // bool that is neither 0 nor 1). After any worker end the next call
  // starts a new worker.
  absl::StatusOr<v1::CallResponse> Call(const v1::CallRequest& request,
                                        absl::Time deadline);

  // Kills the worker and refuses further calls (FAILED_PRECONDITION).
  void Stop();

  const std::string& path() const { return path_; }
  pid_t worker_pid() const;
  // The layers in force in the current worker.
  v1::WorkerLayers layers() const;

 private:
  Library(std::string path, worker::v1::Open open, WorkerLauncher* launcher,
          std::string profile)
      : path_(std::move(path)), open_(std::move(open)), launcher_(launcher),
        profile_(std::move(profile)) {}

  // Starts a worker and loads the library in it; on success installs it.
  absl::Status StartWorker(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(call_mu_);

  const std::string path_;
  const worker::v1::Open open_;           // the request that loads us
  WorkerLauncher* const launcher_;
  const std::string profile_;
  std::map<std::string, int> symbol_index_;  // name -> index in open_

  absl::Mutex call_mu_;  // serializes calls and worker replacement
  mutable absl::Mutex worker_mu_;  // guards the pointer for Stop()/worker_pid()
  std::unique_ptr<WorkerProcess> worker_ ABSL_GUARDED_BY(worker_mu_);
  bool stopped_ ABSL_GUARDED_BY(worker_mu_) = false;
  v1::WorkerLayers layers_ ABSL_GUARDED_BY(worker_mu_);
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_LIBRARY_H_
