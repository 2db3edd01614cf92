// Executor: a fixed pool of threads that runs the daemon's blocking work.
//
// gRPC's callback API must not block in its reactions; RPC handlers hand
// their work (which waits on workers) to this pool and finish the RPC from
// there. Worker processes are spawned from these threads, which live until
// the executor is destroyed (PR_SET_PDEATHSIG follows the spawning thread).
//
// Thread-safe. The destructor runs every task already queued, then joins.
//
//   Executor pool(8);
//   pool.Submit([reactor] { reactor->Finish(grpc::Status::OK); });
#ifndef FFIBROKER_DAEMON_EXECUTOR_H_
#define FFIBROKER_DAEMON_EXECUTOR_H_

#include <deque>
#include <functional>

#include "absl/functional/any_invocable.h"
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ffibroker {

class Executor {
 public:
  explicit Executor(int threads);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `task`; it runs on some pool thread.
  void Submit(absl::AnyInvocable<void()> task);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<absl::AnyInvocable<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_EXECUTOR_H_
