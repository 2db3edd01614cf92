// WorkerProcess: one running ffibroker-worker, owned by the daemon.
//
// Owns the child's pidfd and the daemon's end of its channel; the destructor
// kills (SIGKILL) and reaps the child, so no worker outlives its owner and
// none becomes a zombie. How the worker ended is a structured
// WorkerOutcome; the first outcome recorded wins.
//
// The child is reaped exactly once, through its pidfd (never by pid, so a
// recycled pid is never touched), by whichever comes first: the
// WorkerWatcher that sees it end (OnEnded), an exchange that sees it end,
// or the destructor.
//
// Every request carries a fresh random id and its reply must echo it; a
// reply with another id, a packet while no request is outstanding, or a
// Fatal report the kernel contradicts is a protocol violation that kills
// the worker (see worker.proto).
//
// Thread-safety: all methods are thread-safe; exchanges are serialized.
// Kill() may be called from any thread at any time while the object is
// alive.
//
//   ASSIGN_OR_RETURN(auto worker, WorkerProcess::Spawn(plan, deadline, &error, &hello, watcher));
//   ASSIGN_OR_RETURN(auto reply, worker->Exchange(&request, deadline));
#ifndef FFIBROKER_DAEMON_WORKER_PROCESS_H_
#define FFIBROKER_DAEMON_WORKER_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/transport.h"
#include "common/unique_fd.h"
#include "daemon/kernel_audit.h"
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

class WorkerWatcher;

class WorkerProcess {
 public:
  // Starts a worker as `plan` says (its channel_fd is filled in here) and
  // completes the handshake (its Hello must carry kWorkerProtocolVersion)
  // before `deadline`; the Hello is stored in `*hello`. On a sandbox set-up
  // failure `*error` says which step failed (for falling back to fewer
  // layers). UNAVAILABLE if the worker could not start or failed the
  // handshake, with the reason. With a `watcher` (borrowed; it must outlive
  // the worker) the worker's end is noticed when it happens; a watcher that
  // is shutting down refuses it (UNAVAILABLE).
  static absl::StatusOr<std::unique_ptr<WorkerProcess>> Spawn(
      SandboxPlan plan, absl::Time deadline, SandboxError* error,
      worker::v1::Hello* hello, WorkerWatcher* watcher = nullptr);

  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Gives `request` a fresh request id, sends it and waits for the reply
  // with that id. If the worker dies, breaks the protocol (a reply with
  // another id, an unparsable packet) or misses `deadline` (sending or
  // receiving), it is killed and reaped and the status says so (see
  // OutcomeStatus). A Fatal report from the worker's signal handler is such
  // an end, never a reply, and is believed only if the worker then ends the
  // way the reporter ends. After a failure the worker is dead for good.
  absl::StatusOr<worker::v1::WorkerToDaemon> Exchange(worker::v1::DaemonToWorker* request,
                                                      absl::Time deadline);
  absl::StatusOr<worker::v1::WorkerToDaemon> Exchange(worker::v1::DaemonToWorker&& request,
                                                      absl::Time deadline) {
    return Exchange(&request, deadline);
  }

  // Between exchanges: true if the worker is still fit to serve. A worker
  // that ended is reaped; one that sent a packet while no request was
  // outstanding broke the protocol and is killed. Either way its outcome
  // says what happened.
  bool CheckIdle();

  // Called by the WorkerWatcher once the pidfd is readable: reaps the
  // worker and records and logs how it ended. If an exchange or an idle
  // check holds the channel meanwhile, the end is handed to it: when it
  // lets go of the channel it runs OnEnded again, so an end the holder did
  // not explain itself (a reply already received, an idle check already
  // past its reap) is still recorded and logged before the next call.
  void OnEnded();

  // Who the worker serves, for logs ("/lib/x.so for session s3").
  void set_label(std::string label);
  std::string label() const;

  // Kills the worker because it broke the protocol in a way only the caller
  // can see (e.g. a reply of the wrong kind); records `why`. Waits for an
  // exchange in progress to end.
  void Abandon(const std::string& why);

  // Asks the worker to die now (thread-safe). A concurrent Exchange returns
  // UNAVAILABLE with outcome kStopped.
  void Kill();

  bool alive() const;
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
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
  void HoldUidLease(WorkerUidPool::Lease lease) {
    absl::MutexLock lock(&reap_mu_);
    uid_lease_ = std::move(lease);
    if (reaped_) uid_lease_.Release();  // the watcher reaped it already
  }

  // The address-space limit the worker runs under, used to explain a crash
  // caused by running out of memory.
  void set_address_space_limit(uint64_t bytes) { address_space_limit_ = bytes; }

  // For tests: Exchange runs `hook` once a reply with the right id has
  // arrived, while it still holds the channel (to end the worker there).
  // Call before the worker is shared.
  void set_reply_hook_for_testing(std::function<void()> hook) {
    reply_hook_for_testing_ = std::move(hook);
  }

 private:
  WorkerProcess(pid_t pid, UniqueFd pidfd, std::unique_ptr<Transport> channel)
      : pid_(pid), pidfd_(std::move(pidfd)), channel_(std::move(channel)) {}

  // Holds exchange_mu_ for an exchange, a handshake or an idle check; on
  // release runs OnEnded if the watcher handed it the end (end_pending_).
  class ABSL_SCOPED_LOCKABLE ExchangeLock;

  // The oldest kernel audit record that can be about this worker.
  uint64_t AuditNotBefore() const;
  // Records the end a Fatal report describes (validated: it is untrusted).
  void RecordFatal(const worker::v1::Fatal& fatal);
  // If a Fatal report arrived, records it when the wait status agrees with
  // it (FatalEndsBySignal) and a protocol violation otherwise.
  void ConfirmFatal(bool reaped, int wstatus);
  // Records that `fatal` was a lie: the worker `how_it_ended` instead.
  void RecordContradictedFatal(const worker::v1::Fatal& fatal, absl::string_view how_it_ended);

  // Records `kind` unless an outcome is already recorded (first one wins).
  void Record(WorkerOutcome::Kind kind, int code, std::string message);
  // SIGKILLs (unless dead), reaps, takes a Fatal report still queued on
  // the channel (the one place every path reads it after the end), and
  // records the end it confirms, or else the exit/signal, if nothing else
  // was recorded first.
  void KillAndReap() ABSL_EXCLUSIVE_LOCKS_REQUIRED(exchange_mu_);
  // Waits up to `grace` for the process to end by itself, then KillAndReap.
  void Reap(absl::Duration grace) ABSL_EXCLUSIVE_LOCKS_REQUIRED(exchange_mu_);
  // Reaps the child through its pidfd unless already reaped (waiting for it
  // if `block`); true once it is reaped, with its wait status in `*wstatus`
  // (false in `*waited` if it vanished unreaped).
  bool ReapOnce(bool block, int* wstatus, bool* waited);
  // Reads every packet already waiting on the channel (no waiting): a
  // Fatal is kept for ConfirmFatal; anything else (a zero-length packet and
  // the start of a fragmented message that stops included) is an
  // unsolicited packet. Returns a description of the first unsolicited
  // packet, or "". Leaves no partial message in the channel.
  std::string DrainIdleChannel() ABSL_EXCLUSIVE_LOCKS_REQUIRED(exchange_mu_);
  uint64_t NextRequestId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(exchange_mu_);

  const pid_t pid_;
  // When it started, on the kernel log's clock (see kernel_audit.h).
  const uint64_t started_us_ = KernelLogClockMicros();
  uint32_t uid_ = 0;
  uint32_t uid_in_namespace_ = 0;
  uint64_t address_space_limit_ = 0;
  const UniqueFd pidfd_;
  WorkerWatcher* watcher_ = nullptr;  // borrowed; null: not watched
  std::atomic<bool> stop_requested_{false};
  // Set by OnEnded before it tries for exchange_mu_; whoever holds that
  // lock checks it after letting go (see ExchangeLock), so an end is never
  // left unhandled.
  std::atomic<bool> end_pending_{false};
  // Held for a whole exchange, by the watcher while it reads the channel
  // of an idle worker, and around KillAndReap (which reads what a dead
  // worker left): the channel has one reader at a time.
  absl::Mutex exchange_mu_;
  std::unique_ptr<Transport> channel_ ABSL_PT_GUARDED_BY(exchange_mu_);
  uint64_t last_request_id_ ABSL_GUARDED_BY(exchange_mu_) = 0;
  absl::Mutex reap_mu_;
  bool reaped_ ABSL_GUARDED_BY(reap_mu_) = false;
  bool waited_ ABSL_GUARDED_BY(reap_mu_) = false;  // reaped with a wait status
  int wstatus_ ABSL_GUARDED_BY(reap_mu_) = 0;
  WorkerUidPool::Lease uid_lease_ ABSL_GUARDED_BY(reap_mu_);  // released once reaped
  mutable absl::Mutex mu_;
  WorkerOutcome outcome_ ABSL_GUARDED_BY(mu_);
  std::optional<worker::v1::Fatal> fatal_ ABSL_GUARDED_BY(mu_);  // reported, unconfirmed
  std::string label_ ABSL_GUARDED_BY(mu_);
  std::function<void()> reply_hook_for_testing_;
};

// "SIGSEGV (Segmentation fault)".
std::string SignalName(int sig);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_PROCESS_H_
