// WorkerProcess: one running ffibroker-worker, owned by the daemon.
//
// Owns the child's pidfd and the daemon's end of its channel; the destructor
// kills (SIGKILL) and reaps the child, so no worker outlives its owner and
// none becomes a zombie. How the worker ended is a structured
// WorkerOutcome; the first outcome recorded wins.
//
// Requests are asynchronous: Submit sends a request with a fresh random id
// and returns at once; the WorkerWatcher (the daemon's one supervisor of
// every worker channel and pidfd) reads the reply when it arrives and runs
// the request's callback with it. Requests may be pipelined: the worker
// answers them in the order sent. A reply whose id is not outstanding, a
// packet that is no message, or a Fatal report the kernel contradicts is a
// protocol violation that kills the worker (see docs/worker-protocol.md).
// When the worker ends (or is killed because a request's deadline passed),
// the watcher reaps it at once and fails every outstanding request with
// the reason (OutcomeStatus).
//
// Thread-safety: all methods are thread-safe. Callbacks run on the
// watcher's thread (or, when a request fails before it is sent, on the
// caller's); they must not block.
//
//   ASSIGN_OR_RETURN(auto worker, WorkerProcess::Spawn(plan, deadline, &error, &hello, watcher));
//   worker->Submit(&request, deadline, [](absl::StatusOr<WorkerToDaemon> reply) {...});
//   ASSIGN_OR_RETURN(auto reply, worker->Exchange(&request, deadline));  // waits
#ifndef FFIBROKER_DAEMON_WORKER_PROCESS_H_
#define FFIBROKER_DAEMON_WORKER_PROCESS_H_

#include <sys/types.h>

#include <atomic>
#include <functional>
#include <deque>
#include <map>
#include <vector>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
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
  // A reason more precise than the kind's (common/error_reason.h), for an
  // end the worker reported itself: "CALLBACK_RELEASED"; null: the kind's.
  const char* reason = nullptr;
};

// Worker text is untrusted: keep at most 300 characters, printable ones,
// before it reaches a client or a log.
std::string SanitizeWorkerText(const std::string& text);

class WorkerWatcher;

class WorkerProcess : public std::enable_shared_from_this<WorkerProcess> {
 public:
  // Runs once per request: with the reply, or with why there is none.
  using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<worker::v1::WorkerToDaemon>)>;
  // A callback and what to run it with, collected under the worker's locks
  // and run once they are released (callbacks may submit again, or drop
  // the last reference to this worker's owner).
  struct Completion {
    ReplyCallback done;
    absl::StatusOr<worker::v1::WorkerToDaemon> result;
  };
  using Completions = std::vector<Completion>;
  static void RunAll(Completions completions);

  // Starts a worker as `plan` says (its channel_fd is filled in here) and
  // completes the handshake (its Hello must carry kWorkerProtocolVersion)
  // before `deadline`; the Hello is stored in `*hello`. On a sandbox set-up
  // failure `*error` says which step failed (for falling back to fewer
  // layers). UNAVAILABLE if the worker could not start or failed the
  // handshake, with the reason, or if `watcher` (borrowed; required; it
  // must outlive the worker) is shutting down.
  static absl::StatusOr<std::unique_ptr<WorkerProcess>> Spawn(
      SandboxPlan plan, absl::Time deadline, SandboxError* error,
      worker::v1::Hello* hello, WorkerWatcher* watcher);

  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Gives `request` a fresh request id and sends it; `done` runs exactly
  // once, with the reply to it, or with the worker's end (OutcomeStatus)
  // if it dies, breaks the protocol or misses `deadline` first (it is then
  // killed). RESOURCE_EXHAUSTED if the request is too large for the
  // channel (nothing sent; the worker is unharmed). Sending waits only if
  // the channel is full (the worker has not read what was sent before),
  // at most until `deadline` and kChannelSendTimeout.
  // `*request` gets the id; the caller keeps it (for decoding the reply).
  // A request submitted once the worker's end is known but not yet handled
  // is not sent: it waits for the end, which fails it as not started
  // (kNotStartedReason), after the requests sent before it. One submitted
  // after that fails at once, as not started too.
  void Submit(worker::v1::DaemonToWorker* request, absl::Time deadline, ReplyCallback done);

  // Submit, then wait for the outcome (for set-up steps that run on a
  // thread of their own: opens, probes, releases). A Fatal report is never
  // a reply: it is an end, believed only if the worker then ends the way
  // the reporter ends.
  absl::StatusOr<worker::v1::WorkerToDaemon> Exchange(worker::v1::DaemonToWorker* request,
                                                      absl::Time deadline);
  absl::StatusOr<worker::v1::WorkerToDaemon> Exchange(worker::v1::DaemonToWorker&& request,
                                                      absl::Time deadline) {
    return Exchange(&request, deadline);
  }

  // Requests sent and not answered yet.
  int outstanding() const;

  // Callbacks (docs/callbacks.md). The worker sends a CallbackInvoke event
  // when the library calls a callback bound in it; the event goes to the
  // route bound to its callback id. An invocation of an id bound to no
  // route, or one that is not a well-formed event, is a protocol violation.
  class CallbackRoute {
   public:
    virtual ~CallbackRoute() = default;
    // Runs on the watcher's thread, outside the worker's locks; must not
    // block. `worker` is this worker (empty if it is not shared).
    virtual void Invoked(std::weak_ptr<WorkerProcess> worker,
                         worker::v1::CallbackInvoke invoke) = 0;
  };
  // Routes invocations of callback `id` to `route`; counted (one
  // UnbindCallback per BindCallback), and `route` must stay the same while
  // the id is bound.
  void BindCallback(uint64_t id, std::shared_ptr<CallbackRoute> route);
  void UnbindCallback(uint64_t id);
  // Sends `message` with request id 0 and expects no reply (a
  // CallbackAnswer). Errors as Submit's send; UNAVAILABLE if it has ended.
  absl::Status Post(worker::v1::DaemonToWorker* message, absl::Time deadline);

  // Who the worker serves, for logs ("/lib/x.so for session s3"), and the
  // path of its library (the FFIBROKER_LIBRARY field of its log events).
  void set_label(std::string label, std::string library);
  std::string label() const;

  // Kills the worker because it broke the protocol in a way only the caller
  // can see (e.g. a reply of the wrong kind); records `why`. Requests still
  // outstanding fail with the outcome once the watcher has reaped it.
  void Abandon(const std::string& why);

  // Asks the worker to die now (thread-safe). Outstanding requests fail
  // with UNAVAILABLE (outcome kStopped).
  void Kill();

  bool alive() const;
  // Until its end is handled a worker takes requests, even once it is
  // known to be ending (Submit holds them): so a request sent after others
  // to this worker is sent again after them, not ahead of them.
  bool TakesRequests() const;
  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  int channel_fd() const { return channel_fd_; }
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

  // Runs `hook` once, on the watcher's thread, when the watcher has seen
  // the worker end, after what was outstanding was failed (the requests it
  // never started have been sent again by then); never if the worker's
  // owner destroys it first. For an owner that holds the worker idle (the
  // pre-started pool, prestart_pool.h) or waits for those requests (a
  // library's place). nullptr clears it. False, and `hook` is dropped, if
  // its end is already handled (the hook would never run).
  bool set_end_hook(absl::AnyInvocable<void()> hook) {
    absl::MutexLock lock(&mu_);
    if (end_handled_) return false;
    end_hook_ = std::move(hook);
    return true;
  }

  // The address-space limit the worker runs under, used to explain a crash
  // caused by running out of memory.
  void set_address_space_limit(uint64_t bytes) { address_space_limit_ = bytes; }

  // For tests: runs `hook` on the watcher's thread once a reply with an
  // outstanding id has arrived, before its callback (to end the worker
  // there). Call before the worker is shared.
  void set_reply_hook_for_testing(std::function<void()> hook) {
    reply_hook_for_testing_ = std::move(hook);
  }

  // The watcher's side (its thread only). OnReadable reads what the channel
  // holds and answers the requests it completes; OnEnded reaps the ended
  // worker, records and logs how it ended and fails what is outstanding;
  // OnDeadline kills a worker whose oldest outstanding request (or whose
  // unconfirmed Fatal report) is past its time. NextDeadline is when
  // OnDeadline must run next (InfiniteFuture: never).
  Completions OnReadable();
  // Sends what the backlog holds while the channel has room; false once it
  // is empty (the watcher then stops waiting for room).
  bool OnWritable();
  // After OnReadable: more may be waiting that no readiness of the channel
  // announces (a shared-memory ring): the watcher must call OnReadable
  // again soon.
  bool ReadAgain() const { return read_again_.load(std::memory_order_relaxed); }
  // The backlog is not empty (OnWritable has work).
  bool HasBacklog() const { return has_backlog_.load(std::memory_order_relaxed); }
  // Room for the backlog is announced by the channel becoming readable
  // (the worker's wake-up), not writable.
  bool RoomOnReadable() const { return channel_->RoomOnReadable(); }
  Completions OnEnded();
  void OnDeadline(absl::Time now);
  absl::Time NextDeadline() const;

 private:
  WorkerProcess(pid_t pid, UniqueFd pidfd, std::unique_ptr<Transport> channel)
      : pid_(pid), pidfd_(std::move(pidfd)), channel_fd_(channel->fd()),
        channel_(std::move(channel)) {}

  struct Pending {
    absl::Time deadline;
    ReplyCallback done;
    uint64_t sequence = 0;  // order sent: the worker runs requests in it
    bool held = false;      // submitted while the worker was ending: never sent
  };

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
  void Record(WorkerOutcome::Kind kind, int code, std::string message,
              const char* reason = nullptr);
  // Records a protocol violation and kills the worker (its end, seen by
  // the watcher, fails what is outstanding).
  void Violation(absl::string_view what);
  // Sends SIGKILL (ESRCH if already gone: fine).
  void SignalKill();
  // Sends `message` without waiting (it runs on gRPC's threads): the
  // packets the channel has no room for join the backlog, which OnWritable
  // sends as the worker reads; `*wants_room` is set when the backlog just
  // stopped being empty (the caller then asks the watcher, outside
  // send_mu_, to wait for room). RESOURCE_EXHAUSTED (nothing sent) if the
  // message exceeds the channel's limit or, when `capped`, the backlog
  // holds kMaxChannelBacklogBytes; UNAVAILABLE if the worker is gone;
  // INTERNAL for a local failure (part of the message may be out: the
  // channel is unusable).
  absl::Status Enqueue(const google::protobuf::MessageLite& message, bool capped,
                       bool* wants_room) ABSL_EXCLUSIVE_LOCKS_REQUIRED(send_mu_);
  // SIGKILLs (unless dead), reaps, takes a Fatal report still queued on
  // the channel, and records the end it confirms, or else the exit/signal,
  // if nothing else was recorded first.
  // Replies still queued complete their requests (into `*out`).
  // `owner_stops`: the owner lets the worker go; if it is still running,
  // its end is recorded as stopped by the daemon (after its last replies
  // and any fatal report are read), not as the SIGKILL it gets.
  void KillAndReap(Completions* out, bool owner_stops = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);
  // Reads every message waiting on the channel: replies complete their
  // requests (into `*out`); a Fatal report is kept for ConfirmFatal;
  // anything else is a protocol violation. With `ended` (the worker is
  // gone) a partial message is no violation, just cut off.
  void ReadChannel(bool ended, Completions* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(read_mu_);
  // Reaps the child through its pidfd unless already reaped (waiting for it
  // if `block`); true once it is reaped, with its wait status in `*wstatus`
  // (false in `*waited` if it vanished unreaped).
  bool ReapOnce(bool block, int* wstatus, bool* waited);
  // Fails every outstanding request (into `*out`): the oldest, which the
  // worker was running, with the outcome; the others, which it had not
  // started, with kNotStartedReason (their senders may send them again).
  void FailOutstanding(Completions* out);
  uint64_t NextRequestId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const pid_t pid_;
  // When it started, on the kernel log's clock (see kernel_audit.h).
  const uint64_t started_us_ = KernelLogClockMicros();
  uint32_t uid_ = 0;
  uint32_t uid_in_namespace_ = 0;
  uint64_t address_space_limit_ = 0;
  // A process's peak resident size (ru_maxrss) survives fork and exec, so
  // the worker's starts at the daemon's own peak when it was spawned
  // (this, taken right after): only a larger peak is the worker's own.
  uint64_t inherited_rss_kb_ = 0;
  const UniqueFd pidfd_;
  const int channel_fd_;
  WorkerWatcher* watcher_ = nullptr;  // borrowed
  // One reader (the watcher, or the destructor once the watcher let go)
  // and one sender at a time; a transport's send and receive sides are
  // independent.
  absl::Mutex read_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex send_mu_;
  std::unique_ptr<Transport> channel_;
  // Packets sent to the channel's order but not yet taken by it (Enqueue).
  std::deque<std::string> backlog_ ABSL_GUARDED_BY(send_mu_);
  uint64_t backlog_bytes_ ABSL_GUARDED_BY(send_mu_) = 0;
  bool channel_closed_ ABSL_GUARDED_BY(read_mu_) = false;
  // Messages read from an ended worker beyond one per outstanding request.
  static constexpr int kMaxMessagesAfterEnd = 1024;
  std::atomic<bool> read_again_{false};   // see ReadAgain
  std::atomic<bool> has_backlog_{false};  // !backlog_.empty(), for the watcher
  absl::Mutex reap_mu_;
  bool reaped_ ABSL_GUARDED_BY(reap_mu_) = false;
  bool waited_ ABSL_GUARDED_BY(reap_mu_) = false;  // reaped with a wait status
  int wstatus_ ABSL_GUARDED_BY(reap_mu_) = 0;
  WorkerUidPool::Lease uid_lease_ ABSL_GUARDED_BY(reap_mu_);  // released once reaped
  mutable absl::Mutex mu_;
  WorkerOutcome outcome_ ABSL_GUARDED_BY(mu_);
  std::optional<worker::v1::Fatal> fatal_ ABSL_GUARDED_BY(mu_);  // reported, unconfirmed
  // A worker that reported a Fatal end must end by then, or it lied.
  absl::Time fatal_grace_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  uint64_t last_request_id_ ABSL_GUARDED_BY(mu_) = 0;
  static constexpr int kRequestIdBatch = 32;
  uint64_t request_ids_[kRequestIdBatch] ABSL_GUARDED_BY(mu_) = {};
  int unused_request_ids_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  bool end_handled_ ABSL_GUARDED_BY(mu_) = false;  // OnEnded ran
  std::string label_ ABSL_GUARDED_BY(mu_);
  std::string library_ ABSL_GUARDED_BY(mu_);
  struct BoundCallback {
    std::shared_ptr<CallbackRoute> route;
    int count = 0;
  };
  std::map<uint64_t, BoundCallback> callbacks_ ABSL_GUARDED_BY(mu_);
  std::function<void()> reply_hook_for_testing_;
  absl::AnyInvocable<void()> end_hook_ ABSL_GUARDED_BY(mu_);
};

// The reason (common/error_reason.h) of a request that failed because its
// worker ended before starting it (while running an earlier request): it
// did not run, so it may be sent to another worker.
inline constexpr char kNotStartedReason[] = "REQUEST_NOT_STARTED";

// "SIGSEGV (Segmentation fault)".
std::string SignalName(int sig);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_PROCESS_H_
