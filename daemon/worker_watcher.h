// WorkerWatcher: the daemon's one supervisor of every worker.
//
// One thread owns an epoll set over the pidfd and the channel of every live
// WorkerProcess (one thread for all workers, not one per worker), so no
// gRPC or executor thread ever waits on a worker:
//   - a readable channel: the watcher reads the replies that arrived and
//     runs the callbacks of the requests they answer (WorkerProcess::
//     OnReadable), which finish the client's RPC;
//   - a readable pidfd: the worker has ended; it is reaped at once, how it
//     ended is recorded and logged with the label its owner gave it
//     (library path and session), and every request still outstanding
//     fails with that reason (WorkerProcess::OnEnded);
//   - a deadline: a timerfd is armed for the earliest deadline of any
//     outstanding request (a submitter arms it without waking the loop);
//     a worker whose request is past it is killed (WorkerProcess::
//     OnDeadline), and its end then fails the request.
// Callbacks run on the watcher's thread after it let go of its own lock and
// the worker's, so they may submit new requests or destroy workers; they
// must not block.
//
// The watcher also makes workers visible to shutdown: Shutdown() kills every
// registered worker, including workers still starting or loading a library,
// and any worker registered afterwards is refused.
//
// Thread-safe. Borrows the WorkerProcess objects between Watch and Forget
// (WorkerProcess does both itself).
//
//   ASSIGN_OR_RETURN(auto watcher, WorkerWatcher::Create());
//   WorkerProcess::Spawn(plan, deadline, &error, &hello, watcher.get());
//   watcher->Shutdown();  // on SIGTERM: kills every worker
#ifndef FFIBROKER_DAEMON_WORKER_WATCHER_H_
#define FFIBROKER_DAEMON_WORKER_WATCHER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace ffibroker {

class WorkerProcess;

class WorkerWatcher {
 public:
  // Starts the watcher thread. INTERNAL if epoll or eventfd fail.
  static absl::StatusOr<std::unique_ptr<WorkerWatcher>> Create();
  // Stops the thread. Workers still registered are left to their owners
  // (which must not outlive the watcher).
  ~WorkerWatcher();
  WorkerWatcher(const WorkerWatcher&) = delete;
  WorkerWatcher& operator=(const WorkerWatcher&) = delete;

  // Watches `worker`'s pidfd and channel (borrowed until Forget).
  // UNAVAILABLE once Shutdown() has run: the caller must kill the worker.
  absl::Status Watch(WorkerProcess* worker);
  // Stops watching `worker`. When it returns the watcher no longer uses it
  // (it waits for the watcher to finish reading it).
  void Forget(WorkerProcess* worker);
  // `worker`'s channel has a backlog: watch it for room until
  // WorkerProcess::OnWritable has sent it all. A no-op once forgotten.
  void WantRoom(WorkerProcess* worker);
  // A request with `deadline` was just submitted: re-arms the timer if that
  // is earlier than what it is armed for (no thread is woken).
  void DeadlineAdded(absl::Time deadline);
  // Kills every watched worker (WorkerProcess::Kill) and refuses new ones.
  void Shutdown();
  // How many workers are watched now.
  int watched() const;

 private:
  WorkerWatcher(UniqueFd epoll, UniqueFd wake, UniqueFd timer)
      : epoll_(std::move(epoll)), wake_(std::move(wake)), timer_(std::move(timer)) {}
  void Loop();
  void Wake();
  // Handles one epoll event (key 2k: worker k's pidfd; 2k+1: its channel).
  void Handle(uint64_t key, uint32_t events);
  // Kills the workers whose deadlines passed; returns the next deadline.
  absl::Time CheckDeadlines();
  // Arms the timer for `unix_nanos` (INT64_MAX: disarms).
  void Arm(int64_t unix_nanos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(timer_mu_);

  const UniqueFd epoll_;
  const UniqueFd wake_;   // eventfd: stops the loop
  const UniqueFd timer_;  // timerfd (CLOCK_REALTIME): the next deadline
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  // Channel keys to read again in the loop's next round (the loop's thread
  // only; WorkerProcess::ReadAgain).
  std::vector<uint64_t> again_;
  // Channel keys whose backlog waits for a ring's room: sent again once.
  std::vector<uint64_t> retry_room_ ABSL_GUARDED_BY(mu_);
  absl::Mutex timer_mu_;
  // What the timer is armed for, in Unix nanoseconds (INT64_MAX: nothing,
  // or the loop is computing it: then every new deadline arms it).
  int64_t armed_ns_ ABSL_GUARDED_BY(timer_mu_) = INT64_MAX;
  mutable absl::Mutex mu_;
  // Keys are handed to epoll instead of pointers, so a stale event for a
  // forgotten worker finds nothing.
  std::map<uint64_t, WorkerProcess*> workers_ ABSL_GUARDED_BY(mu_);
  std::map<WorkerProcess*, uint64_t> keys_ ABSL_GUARDED_BY(mu_);
  uint64_t next_key_ ABSL_GUARDED_BY(mu_) = 1;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_WATCHER_H_
