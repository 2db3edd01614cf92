#include "daemon/worker_watcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <utility>

#include "common/log.h"
#include "daemon/worker_process.h"

namespace ffibroker {
namespace {

// The epoll keys of worker `key`'s pidfd and channel (0 is the wake-up).
uint64_t PidfdKey(uint64_t key) { return key * 2; }
uint64_t ChannelKey(uint64_t key) { return key * 2 + 1; }

// Milliseconds to wait for `deadline`: -1 for never, at least 1 so a
// sub-millisecond remainder is never a busy loop, 0 if it has passed.
int TimeoutMillis(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
}

}  // namespace

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
  stopping_ = true;
  Wake();
  thread_.join();
}

void WorkerWatcher::Wake() {
  uint64_t one = 1;
  while (::write(wake_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
}

absl::Status WorkerWatcher::Watch(WorkerProcess* worker) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::UnavailableError("the daemon is shutting down");
  uint64_t key = next_key_++;
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = PidfdKey(key);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, worker->pidfd(), &event) != 0) {
    return ErrnoStatus("epoll_ctl on a worker pidfd", errno);
  }
  event.data.u64 = ChannelKey(key);
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, worker->channel_fd(), &event) != 0) {
    int err = errno;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, worker->pidfd(), nullptr);
    return ErrnoStatus("epoll_ctl on a worker channel", err);
  }
  workers_[key] = worker;
  keys_[worker] = key;
  return absl::OkStatus();
}

void WorkerWatcher::Forget(WorkerProcess* worker) {
  absl::MutexLock lock(&mu_);  // waits while the loop handles this worker
  auto it = keys_.find(worker);
  if (it == keys_.end()) return;
  // The descriptors are still open (their owner closes them after this),
  // so the removal cannot hit a reused one; ENOENT if the loop removed it.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, worker->pidfd(), nullptr);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, worker->channel_fd(), nullptr);
  workers_.erase(it->second);
  keys_.erase(it);
}

void WorkerWatcher::DeadlineAdded(absl::Time deadline) {
  if (absl::ToUnixNanos(deadline) < planned_wake_.load(std::memory_order_acquire)) Wake();
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

absl::Time WorkerWatcher::CheckDeadlines() {
  absl::MutexLock lock(&mu_);
  absl::Time now = absl::Now();
  absl::Time next = absl::InfiniteFuture();
  for (auto& [key, worker] : workers_) {
    worker->OnDeadline(now);
    next = std::min(next, worker->NextDeadline());
  }
  return next;
}

void WorkerWatcher::Handle(uint64_t key, uint32_t events) {
  WorkerProcess::Completions completions;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(key / 2);
    if (it == workers_.end()) return;  // forgotten meanwhile
    WorkerProcess* worker = it->second;
    if (key == PidfdKey(it->first)) {
      // A pidfd stays readable once its process ended: stop watching it.
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, worker->pidfd(), nullptr);
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, worker->channel_fd(), nullptr);
      completions = worker->OnEnded();
    } else {
      completions = worker->OnReadable();
      // A closed channel stays readable: its end comes through the pidfd.
      if (events & (EPOLLHUP | EPOLLERR)) {
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, worker->channel_fd(), nullptr);
      }
    }
  }
  // Outside every lock: a callback may submit again or destroy a worker.
  WorkerProcess::RunAll(std::move(completions));
}

void WorkerWatcher::Loop() {
  constexpr int kBatch = 32;
  epoll_event events[kBatch];
  while (!stopping_) {
    // While the next deadline is being computed a new request always wakes
    // the loop (DeadlineAdded), so none is missed.
    planned_wake_.store(INT64_MAX, std::memory_order_release);
    absl::Time next = CheckDeadlines();
    planned_wake_.store(absl::ToUnixNanos(next), std::memory_order_release);
    int n = ::epoll_wait(epoll_.get(), events, kBatch, TimeoutMillis(next));
    if (n < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR("worker watcher: epoll_wait failed (errno %d); stopping", errno);
      return;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == 0) {
        uint64_t count;
        while (::read(wake_.get(), &count, sizeof count) < 0 && errno == EINTR) {
        }
        continue;
      }
      Handle(key, events[i].events);
    }
  }
}

}  // namespace ffibroker
