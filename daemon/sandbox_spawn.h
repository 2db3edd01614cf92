// SpawnSandboxed: starts the worker executable in new namespaces.
//
// The child shares the daemon's memory until it execs (CLONE_VM, on a stack
// of its own), so it runs only raw system calls on data prepared before the
// clone (sandbox_child.h says why and what that rules out).
// In order, the child: arranges SIGKILL on the daemon's death and waits for
// the daemon to map its user namespace; opens the bind sources; switches to
// an unprivileged uid (65534 "nobody" inside a user namespace, mapped
// outside to the plan's host_id when the daemon is root — a uid of the
// worker's own, see worker_uid_pool.h — or to 65534 if none is given, and to
// the daemon's own uid when it is not root; without a user namespace a root
// daemon's child takes host_id itself) — before the mounts in a user
// namespace, after them without one; builds a minimal read-only root
// (tmpfs with the system library directories, the worker executable, the
// library and the readable paths bind-mounted read-only) and pivots into
// it; sets no_new_privs; puts its channel on fd 3 and /dev/null on 0-2;
// execs. A failure at any step is reported back with the step's name and
// errno. It uses clone, never clone3 (which container runtimes often hide).
#ifndef FFIBROKER_DAEMON_SANDBOX_SPAWN_H_
#define FFIBROKER_DAEMON_SANDBOX_SPAWN_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/unique_fd.h"

namespace ffibroker {

struct SandboxPlan {
  std::string executable;          // absolute path of the worker
  std::vector<std::string> argv;   // including argv[0]
  int channel_fd = -1;             // becomes fd 3 in the child (borrowed)
  int ring_fd = -1;                // if set, becomes fd 4 (borrowed): the channel's ring
  uint32_t ring_bytes = 0;         // WorkerProcess::Spawn: each ring's size (0: no rings)
  bool user_ns = true;
  bool mount_ns = true;            // needs user_ns or a root daemon
  bool pid_ns = true;
  bool net_ns = true;
  bool ipc_ns = true;
  bool uts_ns = true;
  // Files or directories to make readable inside the new root, read-only:
  // `library_paths` may be mapped executable (the library), `readable_paths`
  // (the profile's) are also noexec. The system library directories are
  // always there.
  std::vector<std::string> library_paths;
  std::vector<std::string> readable_paths;
  // Root daemon only: the uid and gid the worker has in the initial
  // namespace (never 0). Unset: 65534. Ignored by a non-root daemon.
  std::optional<uint32_t> host_id;
};

struct SandboxedChild {
  pid_t pid = -1;
  UniqueFd pidfd;
  uint32_t uid = 0;              // the child's uid in the initial namespace
  uint32_t uid_in_namespace = 0; // as the child sees it
};

// Which step failed, for choosing a fallback: kClone means the kernel
// refused the namespaces themselves, kMount the minimal root. Only a refusal
// (EPERM, EACCES, EINVAL, ENOSYS, ENOSPC, EUSERS) is classified so; a
// transient or resource failure is kOther and must not cost a layer.
enum class SandboxStep { kNone, kClone, kUserMap, kMount, kCredentials, kExec, kOther };

struct SandboxError {
  SandboxStep step = SandboxStep::kNone;
  absl::Status status;
};

// The real path of `path` if it lies in one of the system library
// directories every worker's root holds (bound read-only, readable under
// Landlock: /usr/lib*, /lib*), so a worker can load it in place; empty if
// it does not, or cannot be resolved.
std::string InSystemLibraryDir(const std::string& path);

// Starts the child. On failure returns the step and a status whose message
// names the step and the errno ("bind-mount /usr/lib: Operation not
// permitted"); the child (if any) has been reaped.
// Waits for the child's exec until `deadline`: past it the child is killed
// and the status is DEADLINE_EXCEEDED.
absl::StatusOr<SandboxedChild> SpawnSandboxed(const SandboxPlan& plan, absl::Time deadline,
                                              SandboxError* error);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_SANDBOX_SPAWN_H_
