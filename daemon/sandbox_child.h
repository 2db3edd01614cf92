// The child's half of SpawnSandboxed (sandbox_spawn.h): what the new
// process does between clone and execve.
//
// When the worker gets a user namespace (the usual case), the child shares
// the daemon's memory (CLONE_VM) and runs on a stack of its own while the
// daemon's other threads go on. A fork-like clone copied the daemon's page
// tables instead: ~2 ms of clone on this kind of VM, with the daemon's
// memory map locked meanwhile, and then a copy-on-write fault for every
// page any daemon thread touched before the child's exec — a worker start
// stalled calls and hand-outs in every other thread (docs/prestart.md,
// "What a start cost the rest of the daemon").
//
// Without a user namespace the copy stays: a root daemon's child switches
// to the worker's uid in the initial namespace before its exec, and memory
// it shared with the daemon would then be open to that uid's processes
// (ptrace, when fs.suid_dumpable is 1). In a user namespace they would
// also need CAP_SYS_PTRACE in that namespace (the kernel's check for a
// target in another user namespace), which only its owner, the daemon's
// uid, can have.
//
// Sharing memory sets the rules for the child's code, kept in both cases:
//   - raw system calls only (ChildSyscall): glibc's wrappers set errno,
//     which is the calling daemon thread's (the child shares its TLS);
//   - plain data only: the ChildPlan holds pointers and counts, prepared
//     before the clone, so the child calls no library code at all (nor
//     sanitizer-instrumented code, whose runtime state is per thread);
//   - no allocation, no lock, nothing written but the ChildPlan's binds and
//     its own stack; both outlive the child's use of them (SpawnSandboxed
//     waits for the exec, or kills and reaps the child);
//   - no signal handler may run: every signal, glibc's internal ones too,
//     is blocked from before the clone until the child has reset every
//     handler (StartChild).
// One effect reaches the daemon: when the child of a root daemon switches
// uid, the kernel marks the shared memory as not dumpable (fs.suid_dumpable
// 0, the default), so a root daemon leaves no core file once it has started
// a worker; a core would hold its token keys.
#ifndef FFIBROKER_DAEMON_SANDBOX_CHILD_H_
#define FFIBROKER_DAEMON_SANDBOX_CHILD_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace ffibroker {

// A bind mount of the new root, as the child reads it.
struct ChildBind {
  const char* source;
  const char* target;   // inside the new root
  unsigned long flags;  // remount flags (read-only + locked ones), pre-5.12
  uint64_t attrs;       // MOUNT_ATTR_* for mount_setattr
  bool is_file;
  // Filled in by the child: the source opened (see RunChild) and the
  // "/proc/self/fd/N" path the bind mount uses.
  int fd;
  char fd_path[40];
};

struct ChildLink {
  const char* target;
  const char* link;
};

// Everything the child reads: plain data, every string and array owned by
// the caller (SpawnSandboxed) and prepared before the clone.
struct ChildPlan {
  bool mount_ns = false;
  bool user_ns = false;
  bool set_ids = false;          // switch to uid/gid
  uint32_t uid = 65534;          // the ids to switch to (as the child sees them)
  uint32_t gid = 65534;
  bool drop_groups = false;      // root daemon: setgroups(0) (its groups may include 0)
  const char* new_root = nullptr;  // mount point of the new root, in the new namespace
  const char* const* mkdirs = nullptr;
  size_t mkdir_count = 0;
  const ChildLink* symlinks = nullptr;
  size_t symlink_count = 0;
  ChildBind* binds = nullptr;
  size_t bind_count = 0;
  const char* old_root = nullptr;
  const char* old_root_inside = nullptr;
  int sync_fd = -1;              // read: one byte "go" once ids are mapped
  int error_fd = -1;             // write: a ChildFailure on failure
  int channel_fd = -1;
  int devnull_fd = -1;
  int worker_channel_fd = -1;    // where the channel goes (fd 3)
  int ring_fd = -1;              // the channel's shared memory, or -1
  int worker_ring_fd = -1;       // where it goes (fd 4)
  const char* executable = nullptr;
  char* const* argv = nullptr;   // null-terminated
};

// What a failing child writes to plan.error_fd before it exits.
struct ChildFailure {
  int step;  // a ChildStep
  int err;   // errno
};

enum ChildStep {
  kWait, kPrivate, kOpenSource, kTmpfs, kMkdir, kSymlink, kBindTarget, kBind, kRemount, kPivot,
  kDetach, kSetgroups, kSetresgid, kSetresuid, kNoNewPrivs, kPdeathsig, kDup2,
  kCloseRange, kSignals, kExecve};

// The step's name for messages ("bind-mount"); "?" if out of range.
const char* ChildStepName(int step);

// The child's stack: mapped on construction, with a guard page below it,
// unmapped on destruction (only once the child has exec'd or been reaped).
class ChildStack {
 public:
  ChildStack();
  ~ChildStack();
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;

  bool valid() const { return base_ != nullptr; }
  void* top() const;
  // Gives the mapping up without unmapping it: for a child that could not
  // be confirmed gone.
  void Leak() { base_ = nullptr; }

 private:
  static constexpr size_t kSize = 256 * 1024;
  void* base_ = nullptr;
};

// Clones a child into `clone_flags` (namespaces, CLONE_PIDFD), sharing the
// daemon's memory if `share_memory` (CLONE_VM), that runs `plan` on
// `stack`; every signal is blocked in the calling thread around the clone.
// Returns its pid and sets *pidfd, or returns -1 with errno set.
pid_t StartChild(ChildPlan* plan, ChildStack* stack, int clone_flags, bool share_memory,
                 int* pidfd);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_SANDBOX_CHILD_H_
