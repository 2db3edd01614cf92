#include "common/error_reason.h"
#include "daemon/worker/lockdown.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"
#include "daemon/worker/fatal_reporter.h"

namespace ffibroker {
namespace {

// Landlock access rights by ABI version (numbers from the kernel UAPI; the
// bookworm headers predate some of them).
constexpr uint64_t kFsAccessV1 = (1ULL << 13) - 1;  // EXECUTE .. MAKE_SYM
constexpr uint64_t kFsRefer = 1ULL << 13;           // ABI 2
constexpr uint64_t kFsTruncate = 1ULL << 14;        // ABI 3
constexpr uint64_t kFsIoctlDev = 1ULL << 15;        // ABI 5
constexpr uint64_t kNetBindTcp = 1ULL << 0;         // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;      // ABI 4
constexpr uint64_t kReadFile = 1ULL << 2;
constexpr uint64_t kReadDir = 1ULL << 3;

struct RulesetAttr {  // struct landlock_ruleset_attr up to ABI 4
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
};

void Refuse(v1::WorkerLayers* layers, v1::Layer layer, std::string reason) {
  v1::RefusedLayer* refused = layers->add_refused();
  refused->set_layer(layer);
  refused->set_reason(std::move(reason));
}

absl::Status SetLimit(int resource, uint64_t soft, uint64_t hard, const char* name) {
  struct rlimit limit = {soft, hard};
  if (::setrlimit(resource, &limit) != 0) {
    return ErrnoStatus(absl::StrCat("setrlimit(", name, ")"), errno);
  }
  return absl::OkStatus();
}

// Landlock: read-only access to `paths`, nothing else on the file system;
// no TCP bind/connect from ABI 4 on.
void ApplyLandlock(const std::vector<std::string>& paths, v1::WorkerLayers* layers) {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0,
                       LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 0) {
    Refuse(layers, v1::LAYER_LANDLOCK,
           errno == EOPNOTSUPP ? "Landlock is disabled in this kernel"
                               : absl::StrCat("no Landlock in this kernel (", std::strerror(errno), ")"));
    return;
  }
  RulesetAttr attr = {kFsAccessV1, 0};
  if (abi >= 2) attr.handled_access_fs |= kFsRefer;
  if (abi >= 3) attr.handled_access_fs |= kFsTruncate;
  if (abi >= 5) attr.handled_access_fs |= kFsIoctlDev;
  size_t attr_size = sizeof(uint64_t);
  if (abi >= 4) {
    attr.handled_access_net = kNetBindTcp | kNetConnectTcp;
    attr_size = sizeof attr;
  }
  UniqueFd ruleset(static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0)));
  if (!ruleset.valid()) {
    Refuse(layers, v1::LAYER_LANDLOCK, StatusText(ErrnoStatus("landlock_create_ruleset", errno)));
    return;
  }
  for (const std::string& path : paths) {
    UniqueFd fd(::open(path.c_str(), O_PATH | O_CLOEXEC));
    if (!fd.valid()) continue;  // not in this root: nothing to allow
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) continue;
    landlock_path_beneath_attr rule = {};
    rule.allowed_access = S_ISDIR(st.st_mode) ? (kReadFile | kReadDir) : kReadFile;
    rule.parent_fd = fd.get();
    if (::syscall(SYS_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0) {
      Refuse(layers, v1::LAYER_LANDLOCK,
             StatusText(ErrnoStatus(absl::StrCat("landlock_add_rule ", path), errno)));
      return;
    }
  }
  if (::syscall(SYS_landlock_restrict_self, ruleset.get(), 0) != 0) {
    Refuse(layers, v1::LAYER_LANDLOCK, StatusText(ErrnoStatus("landlock_restrict_self", errno)));
    return;
  }
  layers->add_in_force(v1::LAYER_LANDLOCK);
  layers->set_landlock_abi(static_cast<uint32_t>(abi));
}

// `bpf` as a program for the kernel; `bpf` must outlive the result.
absl::StatusOr<sock_fprog> Program(const std::string& bpf, const char* which) {
  if (bpf.empty() || bpf.size() % sizeof(sock_filter) != 0 ||
      bpf.size() / sizeof(sock_filter) > BPF_MAXINSNS) {
    return absl::InvalidArgumentError(absl::StrCat("malformed seccomp program (", which, ")"));
  }
  return sock_fprog{static_cast<unsigned short>(bpf.size() / sizeof(sock_filter)),
                    reinterpret_cast<sock_filter*>(const_cast<char*>(bpf.data()))};
}

}  // namespace

void ReportEarlyLayers(v1::WorkerLayers* layers) {
  layers->set_uid_in_namespace(::getuid());
  if (::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) {
    layers->add_in_force(v1::LAYER_NO_NEW_PRIVS);
  } else {
    Refuse(layers, v1::LAYER_NO_NEW_PRIVS, "no_new_privs is not set");
  }
  __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) == 0 &&
      (data[0].effective | data[1].effective | data[0].permitted | data[1].permitted) == 0) {
    layers->add_in_force(v1::LAYER_NO_CAPABILITIES);
  } else {
    Refuse(layers, v1::LAYER_NO_CAPABILITIES, "the worker still holds capabilities");
  }
}

absl::Status LockdownBeforeLoad(const worker::v1::Lockdown& lockdown,
                                const std::string& library_path, int channel_fd,
                                v1::WorkerLayers* layers) {
  uint64_t as = lockdown.address_space_bytes();
  uint64_t cpu = lockdown.cpu_seconds();
  uint64_t files = lockdown.open_files();
  if (as == 0 || cpu == 0 || files == 0) {
    return absl::InvalidArgumentError("lockdown without limits");
  }
  // Soft CPU limit: SIGXCPU (reported); the hard limit one second later kills.
  for (absl::Status s : {SetLimit(RLIMIT_AS, as, as, "AS"),
                         SetLimit(RLIMIT_CPU, cpu, cpu + 1, "CPU"),
                         SetLimit(RLIMIT_NOFILE, files, files, "NOFILE"),
                         SetLimit(RLIMIT_NPROC, lockdown.processes(), lockdown.processes(),
                                  "NPROC"),
                         SetLimit(RLIMIT_FSIZE, 0, 0, "FSIZE"),
                         SetLimit(RLIMIT_CORE, 0, 0, "CORE")}) {
    if (!s.ok()) return s;
  }
  layers->add_in_force(v1::LAYER_RLIMITS);
  layers->set_address_space_limit_bytes(as);
  layers->set_cpu_limit_seconds(cpu);
  layers->set_open_files_limit(files);
  layers->set_processes_limit(lockdown.processes());
  layers->set_file_size_limit_bytes(0);
  layers->set_core_limit_bytes(0);

  std::vector<std::string> readable(lockdown.readable_paths().begin(),
                                    lockdown.readable_paths().end());
  for (const char* dir : {"/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32"}) {
    readable.emplace_back(dir);
  }
  if (!library_path.empty()) readable.push_back(library_path);
  ApplyLandlock(readable, layers);

  // The library's constructors run inside dlopen: from here on crashes are
  // reported and the loading filter is in force.
  RETURN_IF_ERROR(InstallFatalReporter(channel_fd));
  ASSIGN_OR_RETURN(sock_fprog loading, Program(lockdown.seccomp_bpf_loading(), "the loading"));
  // LOG: the kernel also records every trap (daemon/kernel_audit.h).
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_LOG, &loading) != 0) {
    return ErrnoStatus("installing the loading seccomp filter", errno);
  }
  return absl::OkStatus();
}

absl::Status LockdownAfterLoad(const worker::v1::Lockdown& lockdown, v1::WorkerLayers* layers) {
  ASSIGN_OR_RETURN(sock_fprog program, Program(lockdown.seccomp_bpf(), "the profile's"));
  // TSYNC: a thread a library constructor started gets the filter too (or
  // the install fails, naming that thread).
  // LOG: the kernel also records every trap, so the daemon can name a
  // forbidden call even when the reporter could not run (kernel_audit.h).
  long rc = ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, kSeccompInstallFlags, &program);
  if (rc != 0) {
    return rc > 0 ? absl::FailedPreconditionError(absl::StrCat(
                        "thread ", rc, " could not take the seccomp filter"))
                  : ErrnoStatus("installing the seccomp filter", errno);
  }
  layers->add_in_force(v1::LAYER_SECCOMP);
  layers->set_seccomp_profile(lockdown.profile());
  layers->set_seccomp_syscalls(lockdown.profile_syscalls());
  return absl::OkStatus();
}

}  // namespace ffibroker
