// WorkerWatcher: learns of every worker's end when it happens.
//
// One thread owns an epoll set over the pidfd of every live WorkerProcess
// (one thread for all workers, not one per worker). When a pidfd becomes
// readable the worker has ended: the watcher reaps it at once (through
// WorkerProcess::OnEnded, which reaps each pid exactly once, by its pidfd,
// so a recycled pid is never touched), records how it ended and logs it
// with the label its owner gave it (library path and session). A worker
// that ends during an exchange is reaped too, but its end is explained by
// the exchanging thread, which also holds its last packet.
//
// The watcher also makes workers visible to shutdown: Shutdown() kills every
// registered worker, including workers still starting or loading a library,
// and any worker registered afterwards is refused.
//
// This is the seed of the event-driven supervisor (docs/architecture.md):
// a later version also owns the channels and routes replies by request id.
//
// Thread-safe. Borrows the WorkerProcess objects between Watch and Forget
// (WorkerProcess does both itself).
//
//   ASSIGN_OR_RETURN(auto watcher, WorkerWatcher::Create());
//   WorkerProcess::Spawn(plan, deadline, &error, &hello, watcher.get());
//   watcher->Shutdown();  // on SIGTERM: kills every worker
#ifndef FFIBROKER_DAEMON_WORKER_WATCHER_H_
#define FFIBROKER_DAEMON_WORKER_WATCHER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/unique_fd.h"

namespace ffibroker {

class WorkerProcess;

class WorkerWatcher {
 public:
  // Starts the watcher thread. INTERNAL if epoll or eventfd fail.
  static absl::StatusOr<std::unique_ptr<WorkerWatcher>> Create();
  // Stops the thread. Workers still registered are left to their owners.
  ~WorkerWatcher();
  WorkerWatcher(const WorkerWatcher&) = delete;
  WorkerWatcher& operator=(const WorkerWatcher&) = delete;

  // Watches `worker` (borrowed until Forget). UNAVAILABLE once Shutdown()
  // has run: the caller must kill the worker.
  absl::Status Watch(WorkerProcess* worker, int pidfd);
  // Stops watching `worker`. When it returns the watcher no longer uses it.
  void Forget(WorkerProcess* worker);
  // Kills every watched worker (WorkerProcess::Kill) and refuses new ones.
  void Shutdown();
  // How many workers are watched now.
  int watched() const;

 private:
  WorkerWatcher(UniqueFd epoll, UniqueFd wake) : epoll_(std::move(epoll)), wake_(std::move(wake)) {}
  void Loop();

  const UniqueFd epoll_;
  const UniqueFd wake_;  // eventfd: stops the loop
  std::thread thread_;
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
