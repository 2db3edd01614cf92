// PrestartPool: workers started and confined before any library is known.
//
// Starting a worker (clone with namespaces, the minimal root, exec, dynamic
// linking, the handshake, the lockdown) is most of what an OpenLibrary and
// a crash replacement cost. The pool keeps a few workers of each
// confinement profile in use started and locked down ahead of time
// (WorkerLauncher::Prestart: every layer but the profile's final seccomp
// filter, which goes on after the load), so that WorkerLauncher::Launch
// only has to hand one its library (docs/prestart.md).
//
//   - Size: PrestartOptions.per_profile idle workers per profile (the
//     daemon's --prestart-workers), for the profiles Want() names and those
//     Take() was asked for. 0 disables the pool (the daemon creates none).
//   - Refill: in the background, on the pool's own executor
//     (PrestartOptions.refill_parallel threads, --prestart-refill), never
//     on a gRPC or starter thread; after every hand-out, and after an idle
//     worker's death. Every start has a deadline (start_timeout). After a
//     failed start the refill waits kRetryDelay, doubled with every
//     failure in a row up to kMaxRetryDelay, and tries again by itself; a
//     start the launcher refuses for good (FAILED_PRECONDITION: e.g. no
//     mount namespace) disables the pool.
//   - Deaths: an idle worker that dies (killed, out of memory) is noticed
//     by the WorkerWatcher (WorkerProcess::set_end_hook), dropped and
//     replaced; Take also checks the pidfd, so a dead worker is never
//     handed out.
//   - Limits: idle workers belong to no principal (they count in no
//     per-principal or daemon-wide worker limit until a Launch hands them
//     out, for an open that reserved its own), but each holds a worker uid
//     (worker_uid_pool.h) like any live worker.
//
// Thread-safe.
//
//   PrestartPool pool([&](auto& p, absl::Time d) { return launcher.Prestart(p, d); }, {});
//   pool.Want({"strict"});
//   std::unique_ptr<PrestartedWorker> ready = pool.Take("strict");  // nullptr: start one
#ifndef FFIBROKER_DAEMON_PRESTART_POOL_H_
#define FFIBROKER_DAEMON_PRESTART_POOL_H_

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/executor.h"
#include "daemon/handoff_file.h"
#include "daemon/sandbox_spawn.h"
#include "daemon/worker_process.h"
#include "ffibroker/v1/confinement.pb.h"

namespace ffibroker {

// Defaults of the daemon's --prestart-workers and --prestart-refill.
inline constexpr int kDefaultPrestartWorkers = 2;
inline constexpr int kDefaultPrestartRefill = 1;
inline constexpr int kMaxPrestartWorkers = 64;
inline constexpr int kMaxPrestartRefill = 8;

struct PrestartOptions {
  int per_profile = kDefaultPrestartWorkers;  // 1..kMaxPrestartWorkers
  int refill_parallel = kDefaultPrestartRefill;  // starts at once, 1..kMaxPrestartRefill
  absl::Duration start_timeout = absl::Seconds(10);
};

// A worker started and locked down before any library is known
// (WorkerLauncher::Prestart), waiting for one.
struct PrestartedWorker {
  std::unique_ptr<WorkerProcess> worker;
  std::string profile;
  SandboxPlan plan;        // how it was started: namespaces, uid
  v1::WorkerLayers early;  // layers refused when it started
  HandoffFile library;     // bound into its root; filled at hand-out
};

class PrestartPool {
 public:
  using StartFn = std::function<absl::StatusOr<std::unique_ptr<PrestartedWorker>>(
      const std::string& profile, absl::Time deadline)>;

  // `start` makes one worker (it blocks); it is called on the pool's
  // executor only, and must stay callable until the pool is destroyed.
  PrestartPool(StartFn start, PrestartOptions options);
  ~PrestartPool();  // Stop(), then waits for a start in progress
  PrestartPool(const PrestartPool&) = delete;
  PrestartPool& operator=(const PrestartPool&) = delete;

  // Keeps the pools of `profiles` filled from now on (in the background).
  void Want(const std::set<std::string>& profiles);

  // A live idle worker of `profile`, or nullptr if none is ready (the
  // caller starts one itself; the pool refills at once). After taking one
  // the caller calls Refill() once it has handed it its library: a start
  // running meanwhile would compete with the hand-out for the CPU.
  std::unique_ptr<PrestartedWorker> Take(const std::string& profile);
  // Refills what Take took, in the background.
  void Refill();

  // Stops refilling and kills the idle workers, without waiting for a
  // start in progress (the destructor does; shutdown kills its worker
  // through the watcher). Idempotent; Take then returns nullptr.
  void Stop();

  // Idle workers of `profile` now.
  int idle(const std::string& profile) const;

  // After a failed start, refilling waits this long (doubled with every
  // failure in a row, up to kMaxRetryDelay).
  static constexpr absl::Duration kRetryDelay = absl::Seconds(1);
  static constexpr absl::Duration kMaxRetryDelay = absl::Seconds(30);

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::unique_ptr<Executor> refill_;  // destroyed first: its tasks use state_
};

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PRESTART_POOL_H_
