// WorkerLauncher: starts confined workers and reports what confines them.
//
// Launch() spawns a worker in its sandbox (daemon/sandbox_spawn.h), compiles
// the profile's seccomp program for that worker, sends the Open request with
// the lockdown, and checks the layers the worker reports against the
// policy's required layers. Layers the kernel refuses are remembered (later
// workers do not retry them) and logged once as warnings.
//
// A root daemon passes a WorkerUidPool: each worker then gets a host uid of
// its own (worker_uid_pool.h), checked against what the kernel shows.
//
// With EnablePrestart, workers are also started and locked down before any
// library is known (Prestart; prestart_pool.h keeps them), and Launch hands
// one its library instead of starting a worker; when none is ready, or the
// hand-out fails before the library could have run, Launch starts one as
// before (worker_prestart.cc; docs/prestart.md).
//
// Thread-safe. Borrows the profile set, which must outlive it.
//
//   WorkerLauncher launcher(worker_path, &profiles);
//   ASSIGN_OR_RETURN(auto worker, launcher.Launch(open, "strict", {}, deadline, &layers));
#ifndef FFIBROKER_DAEMON_WORKER_LAUNCHER_H_
#define FFIBROKER_DAEMON_WORKER_LAUNCHER_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/handoff_file.h"
#include "daemon/prestart_pool.h"
#include "daemon/profiles.h"
#include "daemon/sandbox_spawn.h"
#include "daemon/worker_uid_pool.h"
#include "daemon/worker_process.h"
#include "daemon/worker_watcher.h"
#include "ffibroker/v1/confinement.pb.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

class WorkerLauncher {
 public:
  // Namespace layers in `disabled` are never used (reported as refused).
  // With `uids`, every worker leases its host uid from it (Launch is then
  // RESOURCE_EXHAUSTED while every uid is leased); without, workers run as
  // sandbox_spawn.h says for a plan without host_id.
  WorkerLauncher(std::string worker_path, const ProfileSet* profiles,
                 const std::set<v1::Layer>& disabled = {},
                 std::unique_ptr<WorkerUidPool> uids = nullptr);

  // Starts a worker that loads `open.path()` (empty: a probe that loads
  // nothing) under `profile`. On success `*layers` holds every layer in
  // force; a worker lacking one of `required` is killed. Errors: NOT_FOUND (missing symbol, unknown profile),
  // RESOURCE_EXHAUSTED (no worker uid free),
  // FAILED_PRECONDITION (the loader refused the file, or a required layer
  // is not available, naming it and why), UNAVAILABLE (the worker could not
  // start or died while loading), DEADLINE_EXCEEDED.
  absl::StatusOr<std::unique_ptr<WorkerProcess>> Launch(worker::v1::Open open,
                                                        const std::string& profile,
                                                        const std::vector<v1::Layer>& required,
                                                        absl::Time deadline,
                                                        v1::WorkerLayers* layers);

  // Starts a worker that loads nothing under `profile`, records the layers
  // in force in `*layers`, and ends it. Errors as Launch's.
  absl::Status Probe(const std::string& profile, absl::Time deadline,
                     v1::WorkerLayers* layers);

  // Keeps options.per_profile workers of each wanted profile started and
  // locked down ahead (PrestartProfiles says which; Launch adds the
  // profiles it is asked for). Call at most once, after set_watcher and
  // before the first Launch. UNAVAILABLE if the hand-off directory cannot
  // be created.
  absl::Status EnablePrestart(const PrestartOptions& options);
  // Keeps the pools of `profiles` filled from now on (no-op if disabled).
  void PrestartProfiles(const std::set<std::string>& profiles);
  // Stops pre-starting and kills the idle pre-started workers (shutdown).
  void StopPrestart();
  // Idle pre-started workers of `profile` (0 if disabled).
  int prestarted(const std::string& profile) const;

  // Starts a worker under `profile` for a library not known yet: spawned
  // in its sandbox with an empty hand-off file where its library will be,
  // then locked down (rlimits, Landlock, the fatal-signal reporter, the
  // loading filter; worker protocol Prestart). Needs EnablePrestart.
  // Errors as Launch's; FAILED_PRECONDITION if a worker cannot be
  // pre-started here at all (no mount namespace: the hand-off file could
  // not be in its root).
  absl::StatusOr<std::unique_ptr<PrestartedWorker>> Prestart(const std::string& profile,
                                                             absl::Time deadline);

  const ProfileSet& profiles() const { return *profiles_; }
  // The worker uid pool, or nullptr.
  const WorkerUidPool* uids() const { return uids_.get(); }

  // Workers started afterwards are watched by `watcher` (borrowed; it must
  // outlive every worker), which reads their replies, notices their end and
  // kills them at shutdown. Call before the first Launch. Without it the
  // launcher's own watcher serves (its workers must not outlive it).
  void set_watcher(WorkerWatcher* watcher) { watcher_ = watcher; }
  // Each worker's channel gets two shared-memory rings of `bytes` (a power
  // of two, common/shm_ring.h; 0: the socket alone). Before any Launch.
  void set_ring_bytes(uint32_t bytes) {
    absl::MutexLock lock(&mu_);
    working_.ring_bytes = bytes;
  }

 private:
  // Spawns with the namespaces known to work, dropping the ones the kernel
  // refuses (and remembering that).
  // `*plan` ends up as the configuration the worker was started with.
  absl::StatusOr<std::unique_ptr<WorkerProcess>> SpawnWithFallback(
      SandboxPlan* plan, absl::Time deadline, worker::v1::Hello* hello,
      v1::WorkerLayers* layers);
  // Adds what only the daemon knows (namespaces, uid outside) to `layers`.
  void AddDaemonLayers(const SandboxPlan& plan, const WorkerProcess& worker,
                       v1::WorkerLayers* layers);
  // FAILED_PRECONDITION naming the first required layer not in force.
  absl::Status CheckRequired(const std::vector<v1::Layer>& required,
                             const v1::WorkerLayers& layers) const;
  void WarnRefused(const v1::WorkerLayers& layers);
  // The namespaces to start a worker with (those not refused); FAILED_
  // PRECONDITION if a required namespace layer is known to be refused.
  absl::StatusOr<SandboxPlan> PlanFor(const std::vector<v1::Layer>& required);
  // The lockdown `profile` gives a worker started with `plan`.
  absl::StatusOr<worker::v1::Lockdown> MakeLockdown(const Profile& profile,
                                                    const SandboxPlan& plan,
                                                    const WorkerProcess& worker) const;
  // Checks a worker's answer to Open (`reply`): the layers it reports
  // against the kernel, its uid, the required layers; fills `*layers`.
  absl::StatusOr<std::unique_ptr<WorkerProcess>> FinishOpen(
      std::unique_ptr<WorkerProcess> worker,
      const absl::StatusOr<worker::v1::WorkerToDaemon>& reply, const Profile& profile,
      const SandboxPlan& plan, const v1::WorkerLayers& early,
      const std::vector<v1::Layer>& required, v1::WorkerLayers* layers);
  // Launch with a pre-started worker (worker_prestart.cc): nullptr if none
  // is ready, or if the one taken failed before it could have loaded the
  // library (the caller then starts one).
  absl::StatusOr<std::unique_ptr<WorkerProcess>> HandOut(
      worker::v1::Open open, const Profile& profile, const std::vector<v1::Layer>& required,
      absl::Time deadline, v1::WorkerLayers* layers);

  const std::string worker_path_;
  const ProfileSet* const profiles_;
  const std::unique_ptr<WorkerUidPool> uids_;
  std::unique_ptr<WorkerWatcher> own_watcher_;
  WorkerWatcher* watcher_ = nullptr;

  absl::Mutex mu_;
  SandboxPlan working_ ABSL_GUARDED_BY(mu_);  // namespaces not (yet) refused
  std::vector<v1::RefusedLayer> refused_ ABSL_GUARDED_BY(mu_);
  std::set<int> warned_ ABSL_GUARDED_BY(mu_);
  // Pre-started workers (EnablePrestart): the hand-off files' directory,
  // then the pool (destroyed first: its workers' files are in the directory).
  std::unique_ptr<HandoffDir> handoff_;
  std::unique_ptr<PrestartPool> prestart_;
};

// "net_namespace,pid_namespace" -> those layers. INVALID_ARGUMENT naming an
// unknown name or a layer that is not a namespace. Empty text: none.
absl::StatusOr<std::set<v1::Layer>> ParseNamespaceLayers(const std::string& text);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_LAUNCHER_H_
