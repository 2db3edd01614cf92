// WorkerProcess: one running ffibroker-worker, owned by the daemon.
//
// Owns the child's pidfd and the daemon's end of its channel; the destructor
// kills (SIGKILL) and reaps the child, so no worker outlives its owner and
// none becomes a zombie. How the worker ended is a structured
// WorkerOutcome; the first outcome recorded wins.
//
// Thread-safety: Exchange() must be called by one thread at a time (the
// owning library serializes calls). Kill() may be called from any thread at
// any time while the object is alive.
//
//   ASSIGN_OR_RETURN(auto worker, WorkerProcess::Spawn(options, deadline));
//   ASSIGN_OR_RETURN(auto reply, worker->Exchange(request, deadline));
#ifndef FFIBROKER_DAEMON_WORKER_PROCESS_H_
#define FFIBROKER_DAEMON_WORKER_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/transport.h"
#include "common/unique_fd.h"
#include "daemon/sandbox_spawn.h"
#include "daemon/worker_uid_pool.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

// How a worker ended.
struct WorkerOutcome {
  enum class Kind {
    kRunning,            // not ended (yet)
    kExited,             // exited by itself; `code` is the exit status
    kSignaled,           // killed by a signal it did not ask the daemon for
    kTimedOut,           // killed by the daemon because a deadline passed
    kStopped,            // killed by the daemon on close or shutdown
    kProtocolViolation,  // killed because it broke the worker protocol
    kViolation,          // made a syscall its profile forbids; `code` is its number
    kResourceLimit,      // hit a resource limit (memory, CPU time)
  };
  Kind kind = Kind::kRunning;
  int code = 0;         // exit status or signal number
  std::string message;  // e.g. "killed by signal SIGSEGV (Segmentation fault)"
};

// Worker text is untrusted: keep at most 300 characters, printable ones,
// before it reaches a client or a log.
std::string SanitizeWorkerText(const std::string& text);

class WorkerProcess {
 public:
  // Starts a worker as `plan` says (its channel_fd is filled in here) and
  // completes the handshake (its Hello must carry kWorkerProtocolVersion)
  // before `deadline`; the Hello is stored in `*hello`. On a sandbox set-up
  // failure `*error` says which step failed (for falling back to fewer
  // layers). UNAVAILABLE if the worker could not start or failed the
  // handshake, with the reason.
  static absl::StatusOr<std::unique_ptr<WorkerProcess>> Spawn(
      SandboxPlan plan, absl::Time deadline, SandboxError* error,
      worker::v1::Hello* hello);

  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Sends `request` and waits for the reply. If the worker dies, breaks the
  // protocol or misses `deadline`, it is killed and reaped and the status
  // says so (see OutcomeStatus). A Fatal report from the worker's signal
  // handler is such an end, never a reply. After a failure the worker is
  // dead for good.
  absl::StatusOr<worker::v1::WorkerToDaemon> Exchange(
      const worker::v1::DaemonToWorker& request, absl::Time deadline);

  // Kills the worker because it broke the protocol in a way only the caller
  // can see (e.g. a reply of the wrong kind); records `why`.
  void Abandon(const std::string& why);

  // Asks the worker to die now (thread-safe). A concurrent Exchange returns
  // UNAVAILABLE with outcome kStopped.
  void Kill();

  bool alive() const;
  pid_t pid() const { return pid_; }
  // The worker's uid in the initial user namespace, and as it sees itself.
  uint32_t uid() const { return uid_; }
  uint32_t uid_in_namespace() const { return uid_in_namespace_; }
  WorkerOutcome outcome() const;
  // The outcome as a status: PERMISSION_DENIED for a syscall violation,
  // RESOURCE_EXHAUSTED for a resource limit, DEADLINE_EXCEEDED for a
  // timeout, UNAVAILABLE otherwise; the message is "worker " + message.
  absl::Status OutcomeStatus() const;

  // Keeps `lease` (the worker's own host uid) until the worker has been
  // reaped, so the uid is handed out again only once no process has it.
  // Call once, right after Spawn, before the worker is shared.
  void HoldUidLease(WorkerUidPool::Lease lease) { uid_lease_ = std::move(lease); }

  // The address-space limit the worker runs under, used to explain a crash
  // caused by running out of memory.
  void set_address_space_limit(uint64_t bytes) { address_space_limit_ = bytes; }

 private:
  WorkerProcess(pid_t pid, UniqueFd pidfd, std::unique_ptr<Transport> channel)
      : pid_(pid), pidfd_(std::move(pidfd)), channel_(std::move(channel)) {}

  // Records the end a Fatal report describes (validated: it is untrusted).
  void RecordFatal(const worker::v1::Fatal& fatal);

  // Records `kind` unless an outcome is already recorded (first one wins).
  void Record(WorkerOutcome::Kind kind, int code, std::string message);
  // SIGKILLs (unless dead), reaps, and records the exit/signal if nothing
  // else was recorded first.
  void KillAndReap();
  // Waits up to `grace` for the process to end by itself, then KillAndReap.
  void Reap(absl::Duration grace);

  const pid_t pid_;
  uint32_t uid_ = 0;
  uint32_t uid_in_namespace_ = 0;
  uint64_t address_space_limit_ = 0;
  const UniqueFd pidfd_;
  std::unique_ptr<Transport> channel_;
  std::atomic<bool> stop_requested_{false};
  bool reaped_ = false;  // only touched by the Exchange thread / destructor
  WorkerUidPool::Lease uid_lease_;  // released once reaped (same threads)
  mutable absl::Mutex mu_;
  WorkerOutcome outcome_ ABSL_GUARDED_BY(mu_);
};

// "SIGSEGV (Segmentation fault)".
std::string SignalName(int sig);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_PROCESS_H_
