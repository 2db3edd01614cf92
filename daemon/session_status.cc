// SessionManager (session_manager.h): the daemon's status (GetStatus).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "daemon/permission.h"
#include "daemon/session_manager.h"

namespace ffibroker {

absl::StatusOr<v1::GetStatusResponse> SessionManager::GetStatus(const Caller& caller,
                                                                absl::Time deadline) {
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
  // a time, so status requests cannot be used to multiply processes.
  absl::MutexLock probe_lock(&probe_mu_);
  absl::Time cap = now_() + absl::Seconds(10);
  absl::Status probe = launcher_->Probe(kDefaultConfinementProfile, std::min(deadline, cap),
                                        response.mutable_probe());
  if (!probe.ok()) {
    return absl::Status(probe.code(), absl::StrCat("probe worker: ", probe.message()));
  }
  LOG_INFO("%s read the daemon status", caller.principal);
  return response;
}

}  // namespace ffibroker
