#include "client/cli/status_command.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/cli_output.h"
#include "common/layer_name.h"

namespace ffibroker::cli {
namespace {

std::string Bytes(uint64_t bytes) {
  if (bytes != 0 && bytes % (uint64_t{1} << 20) == 0) return absl::StrCat(bytes >> 20, " MiB");
  return absl::StrCat(bytes, " bytes");
}

}  // namespace

std::string FormatStatus(const v1::GetStatusResponse& status) {
  std::string out;
  for (const v1::ProfileStatus& p : status.profiles()) {
    absl::StrAppend(&out, "profile ", p.name(), ": ", p.syscalls(), " syscalls",
                    p.name() == status.default_profile() ? " (default)" : "", " - ",
                    p.description(), "\n");
  }
  for (const v1::PrincipalProfile& p : status.principal_profiles()) {
    absl::StrAppend(&out, "principal ", p.principal(), ": profile ", p.profile(),
                    p.principal() == status.caller_principal() ? " (you)" : "", "\n");
  }
  std::vector<std::string> required;
  for (int layer : status.required_layers()) {
    required.push_back(LayerName(static_cast<v1::Layer>(layer)));
  }
  absl::StrAppend(&out, "required layers: ",
                  required.empty() ? "none" : absl::StrJoin(required, ", "), "\n");
  absl::StrAppend(&out, "workers running: ", status.workers(), "\n");
  const v1::WorkerLayers& w = status.probe();
  std::vector<std::string> in_force;
  for (int layer : w.in_force()) {
    v1::Layer l = static_cast<v1::Layer>(layer);
    std::string name = LayerName(l);
    if (l == v1::LAYER_LANDLOCK) absl::StrAppend(&name, " (ABI ", w.landlock_abi(), ")");
    if (l == v1::LAYER_SECCOMP) {
      absl::StrAppend(&name, " (", w.seccomp_profile(), ", ", w.seccomp_syscalls(), " syscalls)");
    }
    in_force.push_back(name);
  }
  absl::StrAppend(&out, "a worker started now has in force: ", absl::StrJoin(in_force, ", "),
                  "\n");
  for (const v1::RefusedLayer& r : w.refused()) {
    absl::StrAppend(&out, "not in force: ", LayerName(r.layer()), ": ", r.reason(), "\n");
  }
  absl::StrAppend(&out, "worker uid: ", w.uid(), " (", w.uid_in_namespace(),
                  " in its namespace)\n");
  absl::StrAppend(&out, "worker rlimits: address space ", Bytes(w.address_space_limit_bytes()),
                  ", cpu ", w.cpu_limit_seconds(), " s, open files ", w.open_files_limit(),
                  ", processes ", w.processes_limit(), ", file size ",
                  Bytes(w.file_size_limit_bytes()), ", core ", Bytes(w.core_limit_bytes()),
                  "\n");
  return out;
}

int RunStatus(const std::string& address, const ConnectOptions& options) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Connect(address, options);
  if (!client.ok()) return Fail(kExitUnreachable, client.status());
  absl::StatusOr<v1::GetStatusResponse> status = (*client)->GetStatus();
  if (!status.ok()) return Fail(kExitFailed, status.status());
  std::fputs(FormatStatus(*status).c_str(), stdout);
  return 0;
}

}  // namespace ffibroker::cli
