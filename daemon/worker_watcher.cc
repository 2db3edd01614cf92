#include "daemon/worker_watcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <utility>

#include "common/log.h"
#include "daemon/worker_process.h"

namespace ffibroker {
namespace {

// The epoll keys of worker `key`'s pidfd and channel (0 is the wake-up,
// 1 the timer; worker keys start at 1, so theirs at 2).
constexpr uint64_t kWakeKey = 0;
constexpr uint64_t kTimerKey = 1;
uint64_t PidfdKey(uint64_t key) { return key * 2; }
uint64_t ChannelKey(uint64_t key) { return key * 2 + 1; }

}  // namespace

absl::StatusOr<std::unique_ptr<WorkerWatcher>> WorkerWatcher::Create() {
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return ErrnoStatus("epoll_create1", errno);
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return ErrnoStatus("eventfd", errno);
  // Deadlines are absl::Time, i.e. wall-clock time.
  UniqueFd timer(::timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!timer.valid()) return ErrnoStatus("timerfd_create", errno);
  for (auto [fd, key] : {std::pair{wake.get(), kWakeKey}, std::pair{timer.get(), kTimerKey}}) {
    epoll_event event = {};
    event.events = EPOLLIN;
    event.data.u64 = key;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
      return ErrnoStatus("epoll_ctl", errno);
    }
  }
  std::unique_ptr<WorkerWatcher> watcher(
      new WorkerWatcher(std::move(epoll), std::move(wake), std::move(timer)));
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

void WorkerWatcher::WantRoom(WorkerProcess* worker) {
  absl::MutexLock lock(&mu_);  // after the loop's handling of this worker, if running
  auto it = keys_.find(worker);
  if (it == keys_.end()) return;
  // A ring's room is announced by the worker's wake-up (readable), which
  // the channel is always watched for; but the wake-up may have come (and
  // been read) before the backlog existed: the loop tries once more, which
  // asks the worker again if there is still no room.
  if (worker->RoomOnReadable()) {
    retry_room_.push_back(ChannelKey(it->second));
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    return;
  }
  epoll_event event = {};
  event.events = EPOLLIN | EPOLLOUT;
  event.data.u64 = ChannelKey(it->second);
  // ENOENT if its channel was closed (and removed): its end is on the way.
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, worker->channel_fd(), &event);
}

void WorkerWatcher::DeadlineAdded(absl::Time deadline) {
  int64_t ns = absl::ToUnixNanos(deadline);
  absl::MutexLock lock(&timer_mu_);
  if (ns < armed_ns_) Arm(ns);
}

void WorkerWatcher::Arm(int64_t unix_nanos) {
  armed_ns_ = unix_nanos;
  itimerspec spec = {};
  if (unix_nanos != INT64_MAX) {
    // 0 would disarm: a deadline already past fires at once.
    int64_t ns = std::max<int64_t>(unix_nanos, 1);
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
  }
  if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    LOG_ERROR("worker watcher: timerfd_settime failed (errno %d); deadlines wait for the next event",
              errno);
  }
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
      if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) completions = worker->OnReadable();
      // After reading (which may have taken a ring reader's wake-up): room
      // (writable, or any wake-up) sends the backlog; a send that still
      // finds none asks the worker for a wake-up again. Then watch for
      // room only while some is left and it comes as writability.
      if ((events & EPOLLOUT) || worker->HasBacklog()) {
        const bool more = worker->OnWritable();
        epoll_event event = {};
        event.events = EPOLLIN | (more && !worker->RoomOnReadable() ? uint32_t{EPOLLOUT} : 0u);
        event.data.u64 = key;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, worker->channel_fd(), &event);
      }
      if (worker->ReadAgain() && std::find(again_.begin(), again_.end(), key) == again_.end()) {
        again_.push_back(key);
      }
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
  bool check = true;  // deadlines to look at
  while (!stopping_) {
    if (check) {
      // While the next deadline is computed, every new one arms the timer
      // itself (armed_ns_ is INT64_MAX), so none is missed.
      {
        absl::MutexLock lock(&timer_mu_);
        armed_ns_ = INT64_MAX;
      }
      int64_t next = absl::ToUnixNanos(CheckDeadlines());
      absl::MutexLock lock(&timer_mu_);
      Arm(std::min(next, armed_ns_));
      check = false;
    }
    // Channels with more in their ring are read again after one look at
    // the others (epoll_wait does not sleep then).
    std::vector<uint64_t> again;
    again.swap(again_);
    std::vector<uint64_t> retry;
    {
      absl::MutexLock lock(&mu_);
      retry.swap(retry_room_);
    }
    int n = ::epoll_wait(epoll_.get(), events, kBatch, again.empty() && retry.empty() ? -1 : 0);
    if (n < 0) {
      if (errno != EINTR) {
        LOG_ERROR("worker watcher: epoll_wait failed (errno %d); stopping", errno);
        return;
      }
      n = 0;  // the channels to read again and retry are still owed their turn
    }
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == kWakeKey || key == kTimerKey) {
        uint64_t count;
        int fd = key == kWakeKey ? wake_.get() : timer_.get();
        while (::read(fd, &count, sizeof count) < 0 && errno == EINTR) {
        }
        check = check || key == kTimerKey;
        continue;
      }
      Handle(key, events[i].events);
      // Read this round already: not again (it asked again itself if it must).
      again.erase(std::remove(again.begin(), again.end(), key), again.end());
    }
    for (uint64_t key : again) Handle(key, EPOLLIN);
    for (uint64_t key : retry) Handle(key, 0);
  }
}

}  // namespace ffibroker
