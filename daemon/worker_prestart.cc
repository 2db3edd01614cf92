// WorkerLauncher (worker_launcher.h): pre-started workers — starting and
// locking down a worker before its library is known, and handing it one.
// docs/prestart.md explains the design.
#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "daemon/metrics.h"
#include "daemon/worker_launcher.h"

namespace ffibroker {

absl::Status WorkerLauncher::EnablePrestart(const PrestartOptions& options) {
  if (prestart_ != nullptr) return absl::FailedPreconditionError("pre-starting is enabled already");
  ASSIGN_OR_RETURN(handoff_, HandoffDir::Create());
  prestart_ = std::make_unique<PrestartPool>(
      [this](const std::string& profile, absl::Time deadline) {
        return Prestart(profile, deadline);
      },
      options);
  return absl::OkStatus();
}

void WorkerLauncher::PrestartProfiles(const std::set<std::string>& profiles) {
  if (prestart_ != nullptr) prestart_->Want(profiles);
}

void WorkerLauncher::StopPrestart() {
  if (prestart_ != nullptr) prestart_->Stop();
}

int WorkerLauncher::prestarted(const std::string& profile) const {
  return prestart_ == nullptr ? 0 : prestart_->idle(profile);
}

absl::StatusOr<std::unique_ptr<PrestartedWorker>> WorkerLauncher::Prestart(
    const std::string& profile_name, absl::Time deadline) {
  if (handoff_ == nullptr) return absl::FailedPreconditionError("pre-starting is not enabled");
  ASSIGN_OR_RETURN(const Profile* profile, profiles_->Find(profile_name));
  auto ready = std::make_unique<PrestartedWorker>();
  ready->profile = profile->name();
  ASSIGN_OR_RETURN(ready->plan, PlanFor({}));
  SandboxPlan& plan = ready->plan;
  // The hand-off file must be in the worker's root: its directory (0700)
  // is not reachable from the daemon's own.
  if (!plan.mount_ns) {
    return absl::FailedPreconditionError(
        "they need the mount namespace layer, which is not in force here");
  }
  ASSIGN_OR_RETURN(ready->library, handoff_->NewFile());
  plan.readable_paths = profile->readable_paths();
  plan.library_paths = {ready->library.path()};
  worker::v1::Hello hello;
  ASSIGN_OR_RETURN(std::unique_ptr<WorkerProcess> worker,
                   SpawnWithFallback(&plan, deadline, &hello, &ready->early));
  if (!plan.mount_ns) {  // the kernel refused it just now
    return absl::FailedPreconditionError(
        "they need the mount namespace layer, which the kernel refused");
  }
  metrics::WorkerStarted();
  worker->set_address_space_limit(profile->address_space_bytes());
  worker->set_label(absl::StrCat("no library yet (pre-started, profile ", profile->name(), ")"),
                    "");
  worker::v1::DaemonToWorker request;
  worker::v1::Prestart* prestart = request.mutable_prestart();
  ASSIGN_OR_RETURN(*prestart->mutable_lockdown(), MakeLockdown(*profile, plan, *worker));
  prestart->set_library_path(ready->library.path());
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = worker->Exchange(&request, deadline);
  if (!reply.ok()) return reply.status();
  if (reply->has_error()) {
    return absl::UnavailableError(absl::StrCat("a pre-started worker could not lock down: ",
                                               SanitizeWorkerText(reply->error().message())));
  }
  if (!reply->has_prestarted()) {
    worker->Abandon("answered Prestart with something other than Prestarted");
    return worker->OutcomeStatus();
  }
  // What it reports is checked against the kernel when it is handed out,
  // with the rest of its layers (FinishOpen).
  ready->worker = std::move(worker);
  return ready;
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerLauncher::HandOut(
    worker::v1::Open open, const Profile& profile, const std::vector<v1::Layer>& required,
    absl::Time deadline, v1::WorkerLayers* layers) {
  // A library in a system library directory is in every worker's root
  // already, readable under Landlock: it is loaded in place. Any other is
  // copied into the worker's hand-off file (for a pinned library, from the
  // daemon's private copy of the bytes it hashed).
  const std::string in_place = InSystemLibraryDir(open.path());
  UniqueFd source;
  if (in_place.empty()) {
    source.reset(::open(open.path().c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    // Started on demand instead, the worker reports why, as before.
    if (!source.valid()) return nullptr;
  }
  std::unique_ptr<PrestartedWorker> ready = prestart_->Take(profile.name());
  if (ready == nullptr) return nullptr;
  const pid_t pid = ready->worker->pid();
  if (in_place.empty()) {
    absl::Status filled = ready->library.Fill(source.get());
    if (!filled.ok()) {
      prestart_->Refill();
      LOG_WARNING("could not hand %s to pre-started worker pid %d (%s); starting one on demand",
                  open.path(), pid, filled.message());
      return nullptr;
    }
    open.set_path(ready->library.path());
  } else {
    open.set_path(in_place);
  }
  open.clear_lockdown();  // the one it was pre-started with is in force
  worker::v1::DaemonToWorker request;
  *request.mutable_open() = std::move(open);
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = ready->worker->Exchange(&request, deadline);
  absl::StatusOr<std::unique_ptr<WorkerProcess>> worker =
      FinishOpen(std::move(ready->worker), reply, profile, ready->plan, ready->early, required,
                 layers);
  prestart_->Refill();  // now that the hand-out is done
  // UNAVAILABLE: it died or broke the protocol — maybe before it took the
  // library (killed while idle, the moment it was taken). A worker started
  // on demand tries once more (a library that kills its worker does so
  // again, and that is reported).
  if (!worker.ok() && absl::IsUnavailable(worker.status()) && absl::Now() < deadline) {
    LOG_WARNING("pre-started worker pid %d failed to take %s (%s); starting one on demand", pid,
                request.open().path(), worker.status().message());
    return nullptr;
  }
  return worker;
}

}  // namespace ffibroker
