// The child's half of SpawnSandboxed (sandbox_spawn.h): what the new
// process does between clone and execve.
//
// The child shares the daemon's memory (CLONE_VM) and runs on a stack of
// its own while the daemon's other threads go on. A fork-like clone copied
// the daemon's page tables instead: ~2 ms of clone on this kind of VM, with
// the daemon's memory map locked meanwhile, and then a copy-on-write fault
// for every page any daemon thread touched before the child's exec — a
// worker start stalled calls and hand-outs in every other thread
// (docs/prestart.md, "What a start costs").
//
// Sharing memory sets the rules for the child's code:
//   - raw system calls only (ChildSyscall): glibc's wrappers set errno,
//     which is the calling daemon thread's (the child shares its TLS);
//   - no allocation, no lock, nothing written but the ChildPlan and its own
//     stack; the plan is prepared before the clone and outlives the child's
//     use of it (the parent waits for the exec, or reaps the child);
//   - no signal handler may run: every signal is blocked from before the
//     clone (StartChild) until the child has reset every handler.
#ifndef FFIBROKER_DAEMON_SANDBOX_CHILD_H_
#define FFIBROKER_DAEMON_SANDBOX_CHILD_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ffibroker {

struct ChildPlan {
  struct Bind {
    std::string source, target;  // target is inside the new root
    unsigned long flags;         // remount flags (read-only + locked ones), pre-5.12
    uint64_t attrs;              // MOUNT_ATTR_* for mount_setattr
    bool is_file;
    // Filled in by the child: the source opened (see RunChild) and the
    // "/proc/self/fd/N" path the bind mount uses.
    int fd = -1;
    char fd_path[40] = {};
  };
  bool mount_ns = false;
  bool user_ns = false;
  bool set_ids = false;          // switch to uid/gid
  uint32_t uid = 65534;          // the ids to switch to (as the child sees them)
  uint32_t gid = 65534;
  bool drop_groups = false;      // root daemon: setgroups(0) (its groups may include 0)
  std::string new_root;          // mount point of the new root, in the new namespace
  std::vector<std::string> mkdirs;
  std::vector<std::pair<std::string, std::string>> symlinks;  // target, linkpath
  std::vector<Bind> binds;
  std::string old_root, old_root_inside;
  int sync_fd = -1;              // read: one byte "go" once ids are mapped
  int error_fd = -1;             // write: a ChildFailure on failure
  int channel_fd = -1;
  int devnull_fd = -1;
  int worker_channel_fd = -1;    // where the channel goes (fd 3)
  const char* executable = nullptr;
  std::vector<char*> argv;
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

 private:
  static constexpr size_t kSize = 256 * 1024;
  void* base_ = nullptr;
};

// Clones a child into `clone_flags` (namespaces, CLONE_PIDFD; CLONE_VM is
// added) that runs `plan` on `stack`, with every signal blocked in the
// calling thread around the clone. Returns its pid and sets *pidfd, or
// returns -1 with errno set.
pid_t StartChild(ChildPlan* plan, ChildStack* stack, int clone_flags, int* pidfd);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_SANDBOX_CHILD_H_
