// Library (library.h): the pool of workers, where a request goes, and
// starting workers in place of dead ones.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "daemon/exception_status.h"
#include "daemon/library.h"
#include "daemon/metrics.h"

namespace ffibroker {

absl::Status Library::StartWorker(int slot, absl::Time deadline) {
  v1::WorkerLayers layers;
  absl::StatusOr<std::unique_ptr<WorkerProcess>> worker =
      spec_.launcher->Launch(open_, spec_.profile, spec_.required_layers, deadline, &layers);
  if (!worker.ok()) {
    return WithNewMessage(worker.status(),
                        absl::StrCat("while loading ", path_, ": ", worker.status().message()));
  }
  (*worker)->set_label(spec_.pool_size > 1
                           ? absl::StrCat(path_, " (worker ", slot + 1, " of ", spec_.pool_size,
                                          ") for ", spec_.owner)
                           : absl::StrCat(path_, " for ", spec_.owner),
                       path_);
  std::shared_ptr<WorkerProcess> old;  // destroyed outside the lock
  absl::MutexLock lock(&mu_);
  if (stopped_) return absl::FailedPreconditionError("library was closed");
  Slot& place = slots_[slot];
  old = std::move(place.worker);
  if (old != nullptr) metrics::WorkerRestarted();  // a place only refills after a death
  // The requests a replaced worker never started may still be coming back:
  // they go to this one before any that comes after them (Started).
  if (old != nullptr && !place.end_handed_out) ++place.ends_returning;
  place.worker = std::move(*worker);
  place.layers = std::move(layers);
  place.generation = next_generation_++;
  place.last_operation = "loading the library";
  place.end_reported = false;
  place.end_handed_out = !place.worker->set_end_hook(
      [weak = weak_from_this(), slot, generation = place.generation] {
        if (std::shared_ptr<Library> self = weak.lock()) self->EndHandedOut(slot, generation);
      });
  return absl::OkStatus();
}

bool Library::LiveGeneration(uint64_t generation) const {
  absl::MutexLock lock(&mu_);
  for (const Slot& slot : slots_) {
    if (slot.generation == generation && slot.worker != nullptr && slot.worker->alive()) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<Library::Target> Library::Pick(uint64_t generation, bool first_slot,
                                              bool* needs_start, bool waited_for_start) {
  *needs_start = false;
  Target target;
  std::vector<int> refill;  // dead places to restart in the background
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return absl::FailedPreconditionError("library was closed");
    auto live = [&](int i) {
      mu_.AssertHeld();  // called right here, under this lock
      return slots_[i].TakesRequests();
    };
    // A death nobody was told of goes to this call.
    auto take_notice = [&](int i) {
      mu_.AssertHeld();  // called right here, under this lock
      Slot& place = slots_[i];
      if (place.worker == nullptr || place.end_reported || live(i)) return;
      place.end_reported = true;
      if (!target.notice.empty()) target.notice += "; ";
      absl::StrAppend(&target.notice, "the worker serving ", path_, " died after ",
                      place.last_operation, " returned: ", place.worker->outcome().message);
    };
    const int n = static_cast<int>(slots_.size());
    int chosen = -1;
    if (generation != 0) {
      for (int i = 0; i < n; ++i) {
        if (slots_[i].generation == generation) chosen = i;
      }
      if (chosen < 0 || !live(chosen)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the instance is stale: the worker of ", path_,
            " that held it died and was replaced, and its instances were lost"));
      }
    } else if (first_slot) {
      chosen = 0;
    } else {
      // The live worker with the fewest requests outstanding; dead places
      // are refilled in the background (or, if none is live, by this call).
      int best_load = 0;
      for (int i = 0; i < n; ++i) {
        if (!live(i)) continue;
        int load = slots_[i].worker->outstanding();
        if (chosen < 0 || load < best_load) {
          chosen = i;
          best_load = load;
        }
      }
      for (int i = 0; i < n; ++i) {
        if (live(i) || slots_[i].starting) continue;
        if (chosen < 0) {
          chosen = i;  // restarted by this call
        } else if (spec_.starter != nullptr) {
          slots_[i].starting = true;
          refill.push_back(i);
        }
        take_notice(i);
      }
      if (chosen < 0) chosen = 0;  // every place is starting: wait on the first
    }
    take_notice(chosen);
    target.slot = chosen;
    // From the moment a start installs its worker until its waiters are
    // sent, a new request queues behind them.
    const Slot& place = slots_[chosen];
    if (live(chosen) && (waited_for_start || (!place.starting && !place.draining))) {
      target.worker = slots_[chosen].worker;
      target.generation = slots_[chosen].generation;
    } else {
      *needs_start = true;
    }
  }
  for (int slot : refill) {
    RunStart(slot, absl::InfiniteFuture());
  }
  return target;
}

void Library::RunStart(int slot, absl::Time deadline) {
  auto start = [weak = weak_from_this(), slot, deadline] {
    std::shared_ptr<Library> self = weak.lock();
    if (self == nullptr) return;  // closed meanwhile: its waiters failed with it
    absl::Status started;
    try {  // the waiters must hear of it whatever happens
      // spec_.max_start runs from the start, not from the queue.
      started = self->StartWorker(slot, std::min(deadline, absl::Now() + self->spec_.max_start));
    } catch (...) {
      started = ExceptionStatus("starting the worker");
    }
    self->Started(slot, started);
  };
  if (spec_.starter == nullptr) return start();
  if (!spec_.starter->Submit(spec_.share, std::move(start))) {
    Started(slot, absl::ResourceExhaustedError(absl::StrCat(
        "too many worker starts of ", spec_.owner, "'s principal are waiting")));
  }
}

void Library::Started(int slot, absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    Slot& place = slots_[slot];
    place.starting = false;
    if (place.ends_returning > 0) {
      // The worker this one replaced is still failing the requests it never
      // started, which are sent again in their order: wait for them all
      // (EndHandedOut), queuing new requests behind them meanwhile.
      place.draining = true;
      place.start_held = std::move(status);
      return;
    }
    place.draining = status.ok();
  }
  Drain(slot, std::move(status));
}

void Library::EndHandedOut(int slot, uint64_t generation) {
  absl::Status held;
  {
    absl::MutexLock lock(&mu_);
    Slot& place = slots_[slot];
    if (place.generation == generation) {
      place.end_handed_out = true;  // ended between calls, not replaced yet
      return;
    }
    // A replaced worker's: once none is returning, a start that waited goes on.
    if (place.ends_returning == 0 || --place.ends_returning > 0 || !place.start_held) return;
    held = *std::move(place.start_held);
    place.start_held.reset();
    place.draining = held.ok();
  }
  Drain(slot, std::move(held));
}

void Library::Drain(int slot, absl::Status status) {
  std::vector<Slot::Waiter> waiting;
  {
    absl::MutexLock lock(&mu_);
    waiting.swap(slots_[slot].waiting);
  }
  if (!status.ok() && waiting.empty()) LOG_WARNING("%s: %s", spec_.owner, StatusText(status));
  // The waiters are sent in order, and so are the requests that queued
  // behind them meanwhile (draining): the watcher sends a dead worker's
  // unstarted requests again in order, and they must reach the new worker
  // before the requests that came after them. A start begun meanwhile (the
  // new worker died) answers its own waiters.
  while (true) {
    for (Slot::Waiter& next : waiting) next.go(status);
    waiting.clear();
    absl::MutexLock lock(&mu_);
    Slot& place = slots_[slot];
    if (!place.draining || place.starting || place.waiting.empty()) {
      place.draining = false;
      return;
    }
    waiting.swap(place.waiting);
  }
}

void Library::WithWorker(uint64_t generation, bool first_slot, absl::Time deadline,
                         uint64_t order, absl::AnyInvocable<void(Target)> send,
                         absl::AnyInvocable<void(absl::Status)> fail, bool restarted) {
  bool needs_start = false;
  absl::StatusOr<Target> target = Pick(generation, first_slot, &needs_start, restarted);
  if (!target.ok()) return fail(target.status());
  if (!needs_start) return send(*std::move(target));
  if (restarted) return fail(absl::UnavailableError("the restarted worker died at once"));
  // Starting blocks: it runs on the starter, once per place however many
  // requests wait for it; each then picks its worker again.
  const int slot = target->slot;
  auto after = [self = shared_from_this(), generation, first_slot, deadline, order,
                notice = std::move(target->notice), send = std::move(send),
                fail = std::move(fail)](absl::Status started) mutable {
    if (!started.ok()) {
      std::string before = notice.empty() ? "" : absl::StrCat(notice, "; ");
      return fail(WithNewMessage(started, absl::StrCat(before, "could not restart the worker: ",
                                                            started.message())));
    }
    self->WithWorker(
        generation, first_slot, deadline, order,
        [notice = std::move(notice), send = std::move(send)](Target fresh) mutable {
          if (!notice.empty()) {  // the death this request was the first to see
            fresh.notice = fresh.notice.empty() ? notice : absl::StrCat(notice, "; ", fresh.notice);
          }
          send(std::move(fresh));
        },
        std::move(fail), /*restarted=*/true);
  };
  bool closed = false;
  bool ready = false;
  bool start = false;
  {
    absl::MutexLock lock(&mu_);
    Slot& place = slots_[slot];
    if (stopped_) {
      closed = true;  // closed since Pick
    } else if (!place.starting && !place.draining && place.TakesRequests()) {
      ready = true;  // started, and its waiters sent, since Pick: no second start
    } else {
      // In the order the requests first came: one sent again because its
      // worker never started it goes before those that came after it.
      auto later = std::find_if(place.waiting.begin(), place.waiting.end(),
                                [order](const Slot::Waiter& w) { return w.order > order; });
      place.waiting.insert(later, Slot::Waiter{order, std::move(after)});
      // Else the start already running answers it too, or, while its
      // waiters are sent, the drain reaches this one after them.
      start = !place.starting && !place.draining;
      place.starting = place.starting || start;
    }
  }
  if (closed) return after(absl::FailedPreconditionError("library was closed"));
  if (ready) return after(absl::OkStatus());
  if (start) RunStart(slot, deadline);
}

void Library::Finished(const Target& target, bool ok, std::string operation) {
  absl::MutexLock lock(&mu_);
  Slot& place = slots_[target.slot];
  if (place.generation != target.generation) return;  // replaced meanwhile
  if (ok) {
    place.last_operation = std::move(operation);
  } else {
    place.end_reported = true;
  }
}

}  // namespace ffibroker
