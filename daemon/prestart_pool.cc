#include "daemon/prestart_pool.h"

#include <poll.h>

#include <algorithm>
#include <deque>
#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"

namespace ffibroker {
namespace {

// True once the worker's process has ended (its pidfd is readable), even if
// the watcher has not reaped it yet.
bool Ended(const WorkerProcess& worker) {
  if (!worker.alive()) return true;
  pollfd p = {worker.pidfd(), POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;  // readable, or an error: not to be handed out
}

}  // namespace

struct PrestartPool::State : std::enable_shared_from_this<State> {
  State(StartFn start_fn, PrestartOptions opts)
      : start(std::move(start_fn)), options(opts) {}

  const StartFn start;
  const PrestartOptions options;
  Executor* executor = nullptr;  // the pool's; set once, before any use

  mutable absl::Mutex mu;
  // Idle workers by profile; a profile is wanted once it has an entry.
  std::map<std::string, std::deque<std::unique_ptr<PrestartedWorker>>> idle ABSL_GUARDED_BY(mu);
  std::map<std::string, int> starting ABSL_GUARDED_BY(mu);  // starts in progress
  int running ABSL_GUARDED_BY(mu) = 0;                      // refill tasks
  bool stopped ABSL_GUARDED_BY(mu) = false;
  bool disabled ABSL_GUARDED_BY(mu) = false;
  absl::Time retry_after ABSL_GUARDED_BY(mu) = absl::InfinitePast();
  int failures ABSL_GUARDED_BY(mu) = 0;  // failed starts in a row

  // A wanted profile short of workers (counting starts in progress), or
  // empty.
  std::string Short() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (const auto& [profile, workers] : idle) {
      auto it = starting.find(profile);
      int coming = it == starting.end() ? 0 : it->second;
      if (static_cast<int>(workers.size()) + coming < options.per_profile) return profile;
    }
    return "";
  }

  // Submits refill tasks while some profile is short, up to
  // options.refill_parallel at once.
  void Refill() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (stopped || disabled || absl::Now() < retry_after) return;
    while (running < options.refill_parallel && !Short().empty()) {
      ++running;
      executor->Submit([self = shared_from_this()] { self->RefillLoop(); });
    }
  }

  // Starts workers one after the other until no profile is short.
  void RefillLoop() {
    while (true) {
      std::string profile;
      {
        absl::MutexLock lock(&mu);
        if (!stopped && !disabled && absl::Now() >= retry_after) profile = Short();
        if (profile.empty()) {
          --running;
          return;
        }
        ++starting[profile];
      }
      absl::StatusOr<std::unique_ptr<PrestartedWorker>> ready =
          start(profile, absl::Now() + options.start_timeout);
      std::unique_ptr<PrestartedWorker> unwanted;  // killed outside the lock
      bool more = true;
      {
        absl::MutexLock lock(&mu);
        --starting[profile];
        if (!ready.ok()) {
          if (absl::IsFailedPrecondition(ready.status())) {
            disabled = true;
            LOG_WARNING("pre-started workers are disabled: %s", ready.status().message());
            more = false;
          } else {
            // Tried again by this task after a delay that doubles with
            // every failure in a row (kRetryDelay .. kMaxRetryDelay), so
            // the pool fills up again by itself, without a hot loop.
            absl::Duration delay = kRetryDelay;
            for (int i = 0; i < failures && delay < kMaxRetryDelay; ++i) delay *= 2;
            delay = std::min(delay, kMaxRetryDelay);
            ++failures;
            retry_after = absl::Now() + delay;
            LOG_WARNING("could not pre-start a worker (profile %s; trying again in %s): %s",
                        profile, absl::FormatDuration(delay), ready.status().message());
            mu.AwaitWithDeadline(absl::Condition(&stopped), retry_after);
            retry_after = absl::InfinitePast();  // this task tries now
          }
        } else if (stopped) {
          unwanted = *std::move(ready);
          more = false;
        } else {
          failures = 0;
          PrestartedWorker* raw = ready->get();
          // An idle worker's death is noticed when it happens (the watcher
          // reaps it): it is dropped and replaced.
          raw->worker->set_end_hook([weak = weak_from_this(), raw] {
            if (std::shared_ptr<State> self = weak.lock()) self->Died(raw);
          });
          idle[profile].push_back(*std::move(ready));
        }
      }
      if (!more) {
        unwanted.reset();
        absl::MutexLock lock(&mu);
        --running;
        return;
      }
    }
  }

  // The end hook of idle worker `raw` (on the watcher's thread).
  void Died(PrestartedWorker* raw) {
    std::unique_ptr<PrestartedWorker> dead;  // destroyed outside the lock
    {
      absl::MutexLock lock(&mu);
      for (auto& [profile, workers] : idle) {
        for (auto it = workers.begin(); it != workers.end() && dead == nullptr; ++it) {
          if (it->get() != raw) continue;
          dead = std::move(*it);
          workers.erase(it);
          break;
        }
      }
      if (dead == nullptr) return;  // handed out or stopped meanwhile
      Refill();
    }
    LOG_WARNING("pre-started worker pid %d (profile %s) ended before it was used: %s",
                dead->worker->pid(), dead->profile, dead->worker->outcome().message);
  }
};

PrestartPool::PrestartPool(StartFn start, PrestartOptions options)
    : state_(std::make_shared<State>(std::move(start), options)),
      refill_(std::make_unique<Executor>(options.refill_parallel)) {
  state_->executor = refill_.get();
}

PrestartPool::~PrestartPool() {
  Stop();
  // Runs what is queued (every task sees `stopped` and ends) and waits for
  // a start in progress; the worker it makes is killed.
  refill_.reset();
}

void PrestartPool::Want(const std::set<std::string>& profiles) {
  absl::MutexLock lock(&state_->mu);
  for (const std::string& profile : profiles) state_->idle[profile];
  state_->Refill();
}

std::unique_ptr<PrestartedWorker> PrestartPool::Take(const std::string& profile) {
  std::vector<std::unique_ptr<PrestartedWorker>> dead;  // destroyed outside the lock
  std::unique_ptr<PrestartedWorker> taken;
  {
    absl::MutexLock lock(&state_->mu);
    if (state_->stopped) return nullptr;
    std::deque<std::unique_ptr<PrestartedWorker>>& workers = state_->idle[profile];
    while (!workers.empty() && taken == nullptr) {
      std::unique_ptr<PrestartedWorker> next = std::move(workers.front());
      workers.pop_front();
      if (Ended(*next->worker)) {
        dead.push_back(std::move(next));
      } else {
        taken = std::move(next);
      }
    }
    // A failed start waits kRetryDelay; an open that found the pool empty
    // is a reason to try again after it.
    if (taken == nullptr) state_->Refill();
  }
  for (const auto& d : dead) {
    LOG_WARNING("pre-started worker pid %d (profile %s) ended before it was used: %s",
                d->worker->pid(), d->profile, d->worker->outcome().message);
  }
  if (taken != nullptr) taken->worker->set_end_hook(nullptr);  // its owner's from now on
  return taken;
}

void PrestartPool::Refill() {
  absl::MutexLock lock(&state_->mu);
  state_->Refill();
}

void PrestartPool::Stop() {
  std::vector<std::unique_ptr<PrestartedWorker>> idle;
  {
    absl::MutexLock lock(&state_->mu);
    state_->stopped = true;
    for (auto& [profile, workers] : state_->idle) {
      for (auto& w : workers) idle.push_back(std::move(w));
      workers.clear();
    }
  }
  for (auto& w : idle) w->worker->Kill();
  idle.clear();  // reaps them
}

int PrestartPool::idle(const std::string& profile) const {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->idle.find(profile);
  return it == state_->idle.end() ? 0 : static_cast<int>(it->second.size());
}

}  // namespace ffibroker
