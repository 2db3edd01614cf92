#include "daemon/executor.h"

#include "absl/strings/str_cat.h"
#include "daemon/exception_status.h"

namespace ffibroker {

Executor::Executor(int threads, int per_principal) : per_principal_(per_principal) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

Executor::~Executor() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void Executor::Submit(absl::AnyInvocable<void()> task) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(Task{std::string(), std::move(task)});
}

bool Executor::Submit(const std::string& principal, absl::AnyInvocable<void()> task) {
  if (principal.empty() || per_principal_ <= 0) {
    Submit(std::move(task));
    return true;
  }
  absl::MutexLock lock(&mu_);
  Share& share = shares_[principal];
  if (share.running < per_principal_) {
    ++share.running;
    queue_.push_back(Task{principal, std::move(task)});
    return true;
  }
  if (share.waiting.size() >= kMaxWaitingPerPrincipal) return false;
  share.waiting.push_back(std::move(task));
  return true;
}

void Executor::Ended(const std::string& principal) {
  auto it = shares_.find(principal);
  if (it == shares_.end()) return;
  Share& share = it->second;
  if (!share.waiting.empty()) {
    queue_.push_back(Task{principal, std::move(share.waiting.front())});
    share.waiting.pop_front();
    return;  // it runs in the ended task's place
  }
  if (--share.running == 0) shares_.erase(it);
}

void Executor::Loop() {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Executor* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(e->mu_) {
            return e->stopping_ || !e->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // stopping and drained (no share waits: see Ended)
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    // A task answers its own failures; one that throws anyway must not end
    // the daemon (it runs as root, serving every principal) or this thread.
    try {
      task.run();
    } catch (...) {
      ExceptionStatus(absl::StrCat("in a task of principal '", task.principal, "'"))
          .IgnoreError();  // logged; nobody waits for the status
    }
    task.run = nullptr;  // what it holds goes before the next task may start
    if (!task.principal.empty()) {
      absl::MutexLock lock(&mu_);
      Ended(task.principal);
    }
  }
}

}  // namespace ffibroker
