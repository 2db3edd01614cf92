#include "common/error_reason.h"
#include "daemon/worker_launcher.h"

#include "daemon/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "common/layer_name.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/worker_protocol.h"

namespace ffibroker {
namespace {

bool InForce(const v1::WorkerLayers& layers, v1::Layer layer) {
  return std::find(layers.in_force().begin(), layers.in_force().end(), layer) !=
         layers.in_force().end();
}

v1::RefusedLayer Refusal(v1::Layer layer, std::string reason) {
  v1::RefusedLayer r;
  r.set_layer(layer);
  r.set_reason(std::move(reason));
  return r;
}

void AddRefused(v1::WorkerLayers* layers, v1::Layer layer, std::string reason) {
  *layers->add_refused() = Refusal(layer, std::move(reason));
}

// "Key:\tvalue" lines of a /proc/.../status file; empty if unreadable.
std::map<std::string, std::string> ProcStatus(const std::string& path) {
  std::map<std::string, std::string> fields;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    fields[line.substr(0, colon)] =
        std::string(absl::StripAsciiWhitespace(absl::string_view(line).substr(colon + 1)));
  }
  return fields;
}

absl::Status OpenError(const worker::v1::Error& error) {
  std::string message = SanitizeWorkerText(error.message());
  switch (error.code()) {
    case worker::v1::Error::CODE_SYMBOL_NOT_FOUND: return absl::NotFoundError(message);
    case worker::v1::Error::CODE_LOAD_FAILED: return absl::FailedPreconditionError(message);
    case worker::v1::Error::CODE_PREP_FAILED: return absl::InvalidArgumentError(message);
    case worker::v1::Error::CODE_LOCKDOWN_FAILED:
      return absl::FailedPreconditionError(absl::StrCat("worker could not lock down: ", message));
    default: return absl::InternalError(absl::StrCat("worker refused to open: ", message));
  }
}

constexpr v1::Layer kNamespaceLayers[] = {
    v1::LAYER_USER_NAMESPACE, v1::LAYER_MOUNT_NAMESPACE, v1::LAYER_PID_NAMESPACE,
    v1::LAYER_NET_NAMESPACE,  v1::LAYER_IPC_NAMESPACE,   v1::LAYER_UTS_NAMESPACE};

bool* NamespaceFlag(SandboxPlan* plan, v1::Layer layer) {
  switch (layer) {
    case v1::LAYER_USER_NAMESPACE: return &plan->user_ns;
    case v1::LAYER_MOUNT_NAMESPACE: return &plan->mount_ns;
    case v1::LAYER_PID_NAMESPACE: return &plan->pid_ns;
    case v1::LAYER_NET_NAMESPACE: return &plan->net_ns;
    case v1::LAYER_IPC_NAMESPACE: return &plan->ipc_ns;
    case v1::LAYER_UTS_NAMESPACE: return &plan->uts_ns;
    default: return nullptr;
  }
}

bool NamespaceOn(const SandboxPlan& plan, v1::Layer layer) {
  bool* flag = NamespaceFlag(const_cast<SandboxPlan*>(&plan), layer);
  return flag != nullptr && *flag;
}

void SetNamespace(SandboxPlan* plan, v1::Layer layer, bool on) {
  bool* flag = NamespaceFlag(plan, layer);
  if (flag != nullptr) *flag = on;
}

// The layers a worker applies itself (the others are the daemon's to report).
bool WorkerApplied(int layer) {
  return layer == v1::LAYER_RLIMITS || layer == v1::LAYER_LANDLOCK ||
         layer == v1::LAYER_NO_NEW_PRIVS || layer == v1::LAYER_NO_CAPABILITIES ||
         layer == v1::LAYER_SECCOMP;
}

// Copies the worker's report into `out`, keeping only WorkerApplied layers
// and the limits; refusal reasons are sanitized.
void KeepWorkerLayers(const v1::WorkerLayers& report, v1::WorkerLayers* out) {
  *out = report;
  out->clear_in_force();
  out->clear_refused();
  out->clear_uid();
  out->clear_seccomp_profile();
  out->clear_seccomp_syscalls();
  for (int layer : report.in_force()) {
    if (WorkerApplied(layer) && !InForce(*out, static_cast<v1::Layer>(layer))) {
      out->add_in_force(static_cast<v1::Layer>(layer));
    }
  }
  for (const v1::RefusedLayer& r : report.refused()) {
    if (WorkerApplied(r.layer()) && !InForce(*out, r.layer())) {
      AddRefused(out, r.layer(), SanitizeWorkerText(r.reason()));
    }
  }
}

// How many seccomp filters the daemon itself runs under.
int DaemonSeccompFilters() {
  static const int count = [] {
    int n = 0;
    return absl::SimpleAtoi(ProcStatus("/proc/self/status")["Seccomp_filters"], &n) ? n : 0;
  }();
  return count;
}

// The soft limits in /proc/PID/limits must be the ones the daemon sent.
absl::Status VerifyLimits(pid_t pid, const v1::WorkerLayers& layers) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/limits"));
  if (!in) return absl::OkStatus();
  const std::pair<const char*, uint64_t> expected[] = {
      {"Max address space", layers.address_space_limit_bytes()},
      {"Max cpu time", layers.cpu_limit_seconds()},
      {"Max open files", layers.open_files_limit()},
      {"Max processes", layers.processes_limit()},
      {"Max file size", layers.file_size_limit_bytes()},
      {"Max core file size", layers.core_limit_bytes()}};
  for (std::string line; std::getline(in, line);) {
    for (const auto& [name, value] : expected) {
      if (!absl::StartsWith(line, name)) continue;
      std::vector<std::string> words = absl::StrSplit(
          absl::StripAsciiWhitespace(line.substr(std::strlen(name))), ' ', absl::SkipEmpty());
      if (words.empty() || words[0] != absl::StrCat(value)) {
        return absl::UnavailableError(absl::StrCat(
            "claimed the rlimits layer, but the kernel shows ", name, " ",
            words.empty() ? "?" : words[0], " instead of ", value));
      }
    }
  }
  return absl::OkStatus();
}

// What the kernel says about the worker's seccomp, no_new_privs and
// capabilities must match its claims. OK if /proc cannot be read.
absl::Status VerifyWithKernel(pid_t pid, const v1::WorkerLayers& layers) {
  std::map<std::string, std::string> fields = ProcStatus(absl::StrCat("/proc/", pid, "/status"));
  if (fields.empty()) return absl::OkStatus();
  auto mismatch = [&](const char* layer, const std::string& field) {
    return absl::UnavailableError(absl::StrCat("claimed the ", layer, " layer, but the kernel shows ",
                                               field, ": '", fields[field], "'"));
  };
  if (InForce(layers, v1::LAYER_SECCOMP) && fields["Seccomp"] != "2") {
    return mismatch("seccomp", "Seccomp");
  }
  // The daemon's own filters (inherited from a container runtime or a
  // systemd unit) plus ours: the loading filter and the profile's (Linux
  // 5.9+ shows the count). More means the library installed one of its own.
  // This only catches a naive extra filter; the loading filter is what a
  // hostile constructor is guaranteed to stay under (docs/confinement.md).
  if (InForce(layers, v1::LAYER_SECCOMP) && fields.count("Seccomp_filters") &&
      fields["Seccomp_filters"] != absl::StrCat(DaemonSeccompFilters() + 2)) {
    return mismatch("seccomp", "Seccomp_filters");
  }
  if (InForce(layers, v1::LAYER_NO_NEW_PRIVS) && fields["NoNewPrivs"] != "1") {
    return mismatch("no_new_privs", "NoNewPrivs");
  }
  if (InForce(layers, v1::LAYER_NO_CAPABILITIES)) {
    for (const char* caps : {"CapEff", "CapPrm"}) {
      if (fields[caps].find_first_not_of('0') != std::string::npos) {
        return mismatch("no_capabilities", caps);
      }
    }
  }
  if (InForce(layers, v1::LAYER_RLIMITS)) RETURN_IF_ERROR(VerifyLimits(pid, layers));
  return absl::OkStatus();
}

// The kernel must show the uid and gid the daemon gave the worker (`uid`;
// its gid is the same number when the daemon is root) as real, effective,
// saved and filesystem ids. OK if /proc cannot be read.
absl::Status VerifyIds(pid_t pid, uint32_t uid, bool gid_too) {
  std::map<std::string, std::string> fields = ProcStatus(absl::StrCat("/proc/", pid, "/status"));
  if (fields.empty()) return absl::OkStatus();
  std::vector<std::string> names = {"Uid"};
  if (gid_too) names.push_back("Gid");
  for (const std::string& name : names) {
    std::vector<std::string> ids = absl::StrSplit(fields[name], absl::ByAnyChar(" \t"),
                                                  absl::SkipEmpty());
    bool all = ids.size() == 4;
    for (const std::string& id : ids) all = all && id == absl::StrCat(uid);
    if (!all) {
      return absl::UnavailableError(absl::StrCat("should run as ", name == "Uid" ? "uid " : "gid ",
                                                 uid, ", but the kernel shows ", name, ": '",
                                                 fields[name], "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::set<v1::Layer>> ParseNamespaceLayers(const std::string& text) {
  std::set<v1::Layer> layers;
  for (absl::string_view name : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    v1::Layer layer = v1::LAYER_UNSPECIFIED;
    for (v1::Layer ns : kNamespaceLayers) {
      if (LayerName(ns) == name) layer = ns;
    }
    if (layer == v1::LAYER_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--disable-layers: '", name, "' is not a namespace layer (one of user_namespace, "
          "mount_namespace, pid_namespace, net_namespace, ipc_namespace, uts_namespace)"));
    }
    layers.insert(layer);
  }
  return layers;
}

WorkerLauncher::WorkerLauncher(std::string worker_path, const ProfileSet* profiles,
                               const std::set<v1::Layer>& disabled,
                               std::unique_ptr<WorkerUidPool> uids)
    : worker_path_(std::move(worker_path)), profiles_(profiles), uids_(std::move(uids)) {
  working_.executable = worker_path_;
  absl::StatusOr<std::unique_ptr<WorkerWatcher>> own = WorkerWatcher::Create();
  if (own.ok()) {
    own_watcher_ = *std::move(own);
    watcher_ = own_watcher_.get();
  } else {
    LOG_ERROR("cannot watch workers: %s", StatusText(own.status()));
  }
  for (v1::Layer layer : disabled) {
    SetNamespace(&working_, layer, false);
    refused_.push_back(Refusal(layer, "disabled by --disable-layers"));
  }
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerLauncher::SpawnWithFallback(
    SandboxPlan* plan_in_out, absl::Time deadline, worker::v1::Hello* hello,
    v1::WorkerLayers* layers) {
  SandboxPlan& plan = *plan_in_out;
  // Held by the worker until it is reaped; a failed start gives it back
  // (SpawnSandboxed and Spawn reap what they started).
  WorkerUidPool::Lease uid;
  if (uids_ != nullptr) {
    ASSIGN_OR_RETURN(uid, uids_->Acquire());
    plan.host_id = uid.uid();
  }
  if (watcher_ == nullptr) return absl::UnavailableError("workers cannot be watched");
  for (int attempt = 0; attempt < 4; ++attempt) {
    plan.argv = {"ffibroker-worker",
                 absl::StrCat("--parent-pid=", plan.pid_ns ? 0 : ::getpid())};
    SandboxError error;
    absl::StatusOr<std::unique_ptr<WorkerProcess>> worker =
        WorkerProcess::Spawn(plan, deadline, &error, hello, watcher_);
    if (worker.ok()) {
      (*worker)->HoldUidLease(std::move(uid));
      absl::MutexLock lock(&mu_);
      for (const v1::RefusedLayer& r : refused_) *layers->add_refused() = r;
      return worker;
    }
    // Drop what the kernel refused and try again with less.
    std::vector<v1::Layer> dropped;
    auto drop = [&](v1::Layer layer) {
      if (!NamespaceOn(plan, layer)) return;
      SetNamespace(&plan, layer, false);
      dropped.push_back(layer);
    };
    if (error.step == SandboxStep::kClone || error.step == SandboxStep::kUserMap) {
      if (plan.user_ns && ::geteuid() == 0) {
        drop(v1::LAYER_USER_NAMESPACE);  // root can still unshare the rest
      } else {
        for (v1::Layer layer : kNamespaceLayers) drop(layer);
      }
    } else if (error.step == SandboxStep::kMount) {
      drop(v1::LAYER_MOUNT_NAMESPACE);
    }
    if (dropped.empty()) return worker.status();
    absl::MutexLock lock(&mu_);
    for (v1::Layer layer : dropped) {
      SetNamespace(&working_, layer, false);
      refused_.push_back(Refusal(layer, std::string(error.status.message())));
    }
  }
  return absl::UnavailableError("cannot start a worker in any sandbox configuration");
}

void WorkerLauncher::AddDaemonLayers(const SandboxPlan& plan, const WorkerProcess& worker,
                                     v1::WorkerLayers* layers) {
  for (v1::Layer layer : kNamespaceLayers) {
    if (NamespaceOn(plan, layer)) layers->add_in_force(layer);
  }
  layers->set_uid(worker.uid());
  if (worker.uid() == 0) {
    AddRefused(layers, v1::LAYER_UNPRIVILEGED_UID, "the worker runs as uid 0");
  } else if (worker.uid() == ::geteuid()) {
    // Signals, ptrace and file access compare these uids: only the pid
    // namespace and seccomp keep it from the daemon.
    AddRefused(layers, v1::LAYER_UNPRIVILEGED_UID,
               "the worker runs as the daemon's own uid (start the daemon as root to "
               "give each worker a uid of its own)");
  } else {
    layers->add_in_force(v1::LAYER_UNPRIVILEGED_UID);
  }
}

absl::Status WorkerLauncher::CheckRequired(const std::vector<v1::Layer>& required,
                                           const v1::WorkerLayers& layers) const {
  for (v1::Layer layer : required) {
    if (InForce(layers, layer)) continue;
    std::string why = "not available";
    for (const v1::RefusedLayer& r : layers.refused()) {
      if (r.layer() == layer) why = r.reason();
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "the policy requires the ", LayerName(layer), " layer, which a worker cannot get here: ",
        why));
  }
  return absl::OkStatus();
}

void WorkerLauncher::WarnRefused(const v1::WorkerLayers& layers) {
  absl::MutexLock lock(&mu_);
  for (const v1::RefusedLayer& r : layers.refused()) {
    if (warned_.insert(r.layer()).second) {
      LOG_WARNING("confinement layer %s is not in force: %s", LayerName(r.layer()), r.reason());
    }
  }
}

absl::Status WorkerLauncher::Probe(const std::string& profile, absl::Time deadline,
                                   v1::WorkerLayers* layers) {
  return Launch(worker::v1::Open(), profile, /*required=*/{}, deadline, layers).status();
}

absl::StatusOr<SandboxPlan> WorkerLauncher::PlanFor(const std::vector<v1::Layer>& required) {
  absl::MutexLock lock(&mu_);
  SandboxPlan plan = working_;
  // A required layer known to be refused: do not even start the worker.
  v1::WorkerLayers known;
  for (const v1::RefusedLayer& r : refused_) *known.add_refused() = r;
  for (v1::Layer layer : kNamespaceLayers) {
    if (NamespaceOn(plan, layer)) known.add_in_force(layer);
  }
  std::vector<v1::Layer> required_namespaces;
  for (v1::Layer layer : required) {
    if (std::find(std::begin(kNamespaceLayers), std::end(kNamespaceLayers), layer) !=
        std::end(kNamespaceLayers)) {
      required_namespaces.push_back(layer);
    }
  }
  RETURN_IF_ERROR(CheckRequired(required_namespaces, known));
  return plan;
}

absl::StatusOr<worker::v1::Lockdown> WorkerLauncher::MakeLockdown(
    const Profile& profile, const SandboxPlan& plan, const WorkerProcess& worker) const {
  SeccompContext context;
  context.channel_fd = kWorkerChannelFd;
  context.self_pid = plan.pid_ns ? 1 : worker.pid();
  worker::v1::Lockdown lockdown;
  ASSIGN_OR_RETURN(*lockdown.mutable_seccomp_bpf(), profile.Compile(context));
  ASSIGN_OR_RETURN(*lockdown.mutable_seccomp_bpf_loading(),
                   profile.Compile(context, /*loading=*/true));
  lockdown.set_profile(profile.name());
  lockdown.set_profile_syscalls(static_cast<uint32_t>(profile.syscall_count()));
  lockdown.set_address_space_bytes(profile.address_space_bytes());
  lockdown.set_cpu_seconds(profile.cpu_seconds());
  lockdown.set_open_files(profile.open_files());
  lockdown.set_processes(profile.processes());
  for (const std::string& path : profile.readable_paths()) lockdown.add_readable_paths(path);
  return lockdown;
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerLauncher::Launch(
    worker::v1::Open open, const std::string& profile_name,
    const std::vector<v1::Layer>& required, absl::Time deadline, v1::WorkerLayers* layers) {
  ASSIGN_OR_RETURN(const Profile* profile, profiles_->Find(profile_name));
  ASSIGN_OR_RETURN(SandboxPlan plan, PlanFor(required));
  if (prestart_ != nullptr && !open.path().empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<WorkerProcess> handed,
                     HandOut(open, *profile, required, deadline, layers));
    if (handed != nullptr) return handed;
    layers->Clear();  // none ready: start one
  }
  plan.readable_paths = profile->readable_paths();
  if (!open.path().empty()) plan.library_paths.push_back(open.path());

  worker::v1::Hello hello;
  v1::WorkerLayers early;
  ASSIGN_OR_RETURN(std::unique_ptr<WorkerProcess> worker,
                   SpawnWithFallback(&plan, deadline, &hello, &early));
  metrics::WorkerStarted();
  worker->set_address_space_limit(profile->address_space_bytes());
  ASSIGN_OR_RETURN(*open.mutable_lockdown(), MakeLockdown(*profile, plan, *worker));

  worker::v1::DaemonToWorker request;
  *request.mutable_open() = std::move(open);
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = worker->Exchange(&request, deadline);
  return FinishOpen(std::move(worker), reply, *profile, plan, early, required, layers);
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerLauncher::FinishOpen(
    std::unique_ptr<WorkerProcess> worker,
    const absl::StatusOr<worker::v1::WorkerToDaemon>& reply, const Profile& profile,
    const SandboxPlan& plan, const v1::WorkerLayers& early,
    const std::vector<v1::Layer>& required, v1::WorkerLayers* layers) {
  if (!reply.ok()) return reply.status();
  if (reply->has_error()) return OpenError(reply->error());
  if (!reply->has_opened()) {
    worker->Abandon("answered Open with something other than Opened");
    return worker->OutcomeStatus();
  }
  // The worker's report is untrusted (the library's constructors ran before
  // seccomp): keep only the layers a worker sets up itself, check them
  // against what the kernel shows, and add what the daemon knows.
  KeepWorkerLayers(reply->opened().layers(), layers);
  if (InForce(*layers, v1::LAYER_RLIMITS)) {  // what the daemon asked for
    layers->set_address_space_limit_bytes(profile.address_space_bytes());
    layers->set_cpu_limit_seconds(profile.cpu_seconds());
    layers->set_open_files_limit(profile.open_files());
    layers->set_processes_limit(profile.processes());
    layers->set_file_size_limit_bytes(0);
    layers->set_core_limit_bytes(0);
  }
  if (absl::Status verified = VerifyWithKernel(worker->pid(), *layers); !verified.ok()) {
    worker->Abandon(std::string(verified.message()));
    return worker->OutcomeStatus();
  }
  // The uid reported (layers.uid, unprivileged_uid) is the one it has.
  if (absl::Status ids = VerifyIds(worker->pid(), worker->uid(), plan.host_id.has_value());
      !ids.ok()) {
    worker->Abandon(std::string(ids.message()));
    return worker->OutcomeStatus();
  }
  for (const v1::RefusedLayer& r : early.refused()) *layers->add_refused() = r;
  AddDaemonLayers(plan, *worker, layers);
  if (InForce(*layers, v1::LAYER_SECCOMP)) {
    layers->set_seccomp_profile(profile.name());
    layers->set_seccomp_syscalls(static_cast<uint32_t>(profile.syscall_count()));
  }
  WarnRefused(*layers);
  RETURN_IF_ERROR(CheckRequired(required, *layers));
  return worker;
}

}  // namespace ffibroker
