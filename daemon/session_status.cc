// SessionManager (session_manager.h): the daemon's status (GetStatus).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "daemon/exception_status.h"
#include "daemon/permission.h"
#include "daemon/session_manager.h"

namespace ffibroker {

void SessionManager::GetStatus(const Caller& caller, Reply<v1::GetStatusResponse> done) {
  std::shared_ptr<const Policy> policy = policies_->Get();
  v1::GetStatusResponse response;
  response.set_default_profile(kDefaultConfinementProfile);
  for (const Profile* profile : launcher_->profiles().All()) {
    v1::ProfileStatus* p = response.add_profiles();
    p->set_name(profile->name());
    p->set_description(profile->description());
    p->set_syscalls(static_cast<uint32_t>(profile->syscall_count()));
  }
  for (v1::Layer layer : policy->required_layers()) response.add_required_layers(layer);
  for (const auto& [principal, profile] : policy->PrincipalProfiles()) {
    v1::PrincipalProfile* p = response.add_principal_profiles();
    p->set_principal(principal);
    p->set_profile(profile);
  }
  response.set_caller_principal(caller.principal);
  response.set_workers(quota_.Total(Resource::kWorkers));
  // A probe loads nothing; it shows what any worker gets right now. One at
  // a time, so status requests cannot be used to multiply processes: a
  // request that comes while one runs gets its answer too. The probe
  // starts a worker, so it runs on a thread of its own, not on an RPC
  // thread nor behind principals' opens, with its own deadline: no
  // principal decides how it goes for the others.
  absl::Status refused;
  bool start = false;
  {
    absl::MutexLock lock(&probe_mu_);
    // Counted by limits holder: one per local user of a principal that
    // matches any local user.
    const size_t mine = static_cast<size_t>(std::count_if(
        probe_waiting_.begin(), probe_waiting_.end(),
        [&](const StatusWaiter& w) { return w.holder == caller.limits_holder; }));
    if (probe_waiting_.size() >= kMaxStatusWaiting || mine >= kMaxStatusWaitingPerPrincipal) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "GetStatus: ", mine >= kMaxStatusWaitingPerPrincipal ? mine : probe_waiting_.size(),
          mine >= kMaxStatusWaitingPerPrincipal ? " of this principal's" : "",
          " status requests are already waiting for the probe worker"));
    } else {
      probe_waiting_.push_back(
          {caller.principal, caller.limits_holder, std::move(response), std::move(done)});
      start = !probe_running_;
      probe_running_ = true;
    }
  }
  if (!refused.ok()) return done(refused);  // answered outside the lock
  if (!start) return;
  auto probe = [this] {
    v1::WorkerLayers layers;
    absl::Status probed;
    try {
      probed = launcher_->Probe(kDefaultConfinementProfile, now_() + kStatusProbeTimeout,
                                &layers);
    } catch (...) {
      probed = ExceptionStatus("starting it");
    }
    AnswerStatus(probed, layers);
  };
  try {
    prober_->Submit(std::move(probe));
  } catch (...) {  // not queued: nobody else will answer
    AnswerStatus(ExceptionStatus("queueing it"), v1::WorkerLayers());
  }
}

void SessionManager::AnswerStatus(const absl::Status& probed, const v1::WorkerLayers& layers) {
  std::vector<StatusWaiter> waiting;
  {
    absl::MutexLock lock(&probe_mu_);
    waiting.swap(probe_waiting_);
    probe_running_ = false;
  }
  for (StatusWaiter& waiter : waiting) {
    if (!probed.ok()) {
      waiter.done(absl::Status(probed.code(), absl::StrCat("probe worker: ", probed.message())));
      continue;
    }
    *waiter.response.mutable_probe() = layers;
    LOG_INFO("%s read the daemon status", waiter.principal);
    waiter.done(std::move(waiter.response));
  }
}

}  // namespace ffibroker
