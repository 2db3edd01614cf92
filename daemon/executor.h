// Executor: a fixed pool of threads that runs the daemon's blocking work.
//
// gRPC's callback API must not block in its reactions; RPC handlers hand
// their work (opens, which wait for a worker to start; token grants, which
// wait for the journal's fsync) to this pool and finish the RPC from
// there. Worker processes are spawned from these threads, which live until
// the executor is destroyed (PR_SET_PDEATHSIG follows the spawning thread).
//
// Shares: work submitted for a principal runs on at most `per_principal`
// threads at once; the rest of that principal's work waits in its own
// queue (at most kMaxWaitingPerPrincipal tasks), so one principal whose
// opens hang in library constructors cannot hold every thread while
// others wait. Work submitted without a principal (the daemon's own) is
// not counted.
//
// Thread-safe. The destructor runs every task already queued, then joins.
//
//   Executor pool(16, /*per_principal=*/4);
//   if (!pool.Submit("alice", [reactor] { reactor->Finish(grpc::Status::OK); })) { ...full }
#ifndef FFIBROKER_DAEMON_EXECUTOR_H_
#define FFIBROKER_DAEMON_EXECUTOR_H_

#include <deque>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

namespace ffibroker {

class Executor {
 public:
  // Tasks of one principal waiting for one of its threads, at most.
  static constexpr size_t kMaxWaitingPerPrincipal = 1024;

  // `per_principal` 0: a principal may use every thread.
  explicit Executor(int threads, int per_principal = 0);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `task`; it runs on some pool thread.
  void Submit(absl::AnyInvocable<void()> task);
  // Queues `task` of `principal`, within its share of the threads. False
  // (and `task` is dropped unrun) if kMaxWaitingPerPrincipal of its tasks
  // are already waiting.
  bool Submit(const std::string& principal, absl::AnyInvocable<void()> task);

  int per_principal() const { return per_principal_; }

 private:
  struct Task {
    std::string principal;  // empty: the daemon's own, not counted
    absl::AnyInvocable<void()> run;
  };
  // A principal's tasks: running, and waiting for one of them to end.
  struct Share {
    int running = 0;
    std::deque<absl::AnyInvocable<void()>> waiting;
  };
  void Loop();
  // After a task of `principal` ended: its next waiting task, if any, takes
  // its place.
  void Ended(const std::string& principal) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int per_principal_;
  absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);  // ready to run
  absl::flat_hash_map<std::string, Share> shares_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_EXECUTOR_H_
