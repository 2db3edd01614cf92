#include "daemon/worker_watcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "common/log.h"
#include "daemon/worker_process.h"

namespace ffibroker {

absl::StatusOr<std::unique_ptr<WorkerWatcher>> WorkerWatcher::Create() {
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoStatus("epoll_create1", errno);
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoStatus("eventfd", errno);
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = 0;  // key 0: the wake-up
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &event) != 0) {
    return ErrnoStatus("epoll_ctl", errno);
  }
  std::unique_ptr<WorkerWatcher> watcher(new WorkerWatcher(std::move(epoll), std::move(wake)));
  watcher->thread_ = std::thread([w = watcher.get()] { w->Loop(); });
  return watcher;
}

WorkerWatcher::~WorkerWatcher() {
  uint64_t one = 1;
  while (::write(wake_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
}

absl::Status WorkerWatcher::Watch(WorkerProcess* worker, int pidfd) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::UnavailableError("the daemon is shutting down");
  uint64_t key = next_key_++;
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = key;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, pidfd, &event) != 0) {
    return ErrnoStatus("epoll_ctl on a worker pidfd", errno);
  }
  workers_[key] = worker;
  keys_[worker] = key;
  return absl::OkStatus();
}

void WorkerWatcher::Forget(WorkerProcess* worker) {
  absl::MutexLock lock(&mu_);  // waits while the loop handles this worker
  auto it = keys_.find(worker);
  if (it == keys_.end()) return;
  // The pidfd is still open (its owner closes it after this), so the
  // removal cannot hit a reused descriptor; ENOENT if the loop removed it.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, worker->pidfd(), nullptr);
  workers_.erase(it->second);
  keys_.erase(it);
}

void WorkerWatcher::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;  // idempotent: a second call kills what is left
  if (!workers_.empty()) {
    LOG_INFO("stopping %d workers (including any still loading)", workers_.size());
  }
  for (auto& [key, worker] : workers_) worker->Kill();
}

int WorkerWatcher::watched() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(workers_.size());
}

void WorkerWatcher::Loop() {
  constexpr int kBatch = 32;
  epoll_event events[kBatch];
  while (true) {
    int n = ::epoll_wait(epoll_.get(), events, kBatch, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR("worker watcher: epoll_wait failed (errno %d); workers are reaped by their owners",
                errno);
      return;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == 0) return;
      absl::MutexLock lock(&mu_);
      auto it = workers_.find(key);
      if (it == workers_.end()) continue;  // forgotten meanwhile
      WorkerProcess* worker = it->second;
      // A pidfd stays readable once its process ended: stop watching it.
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, worker->pidfd(), nullptr);
      worker->OnEnded();
    }
  }
}

}  // namespace ffibroker
