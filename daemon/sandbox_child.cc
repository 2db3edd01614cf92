#include "daemon/sandbox_child.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace ffibroker {
namespace {

#if !__GLIBC_PREREQ(2, 25)
// Older glibc's clone wrote the child's pid into the calling thread's TCB
// when CLONE_VM came without CLONE_THREAD.
#error "the sandboxed spawn needs glibc 2.25 or later"
#endif

// The child's code must not touch what it shares with the daemon's threads
// (sandbox_child.h); sanitizer runtimes keep per-thread state of their own.
#if defined(__clang__)
#define FFIB_CHILD_CODE __attribute__((no_sanitize("address", "undefined", "coverage")))
#else
#define FFIB_CHILD_CODE __attribute__((no_sanitize("address", "undefined")))
#endif

// A system call that leaves errno alone: the result, or -errno.
FFIB_CHILD_CODE inline long ChildSyscall(long n, long a = 0, long b = 0, long c = 0, long d = 0,
                                         long e = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  return ret;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  return x0;
#else
#error "the sandboxed spawn needs a raw system call for this architecture"
#endif
}

template <typename... Args>
FFIB_CHILD_CODE inline long Sys(long n, Args... args) {
  return ChildSyscall(n, (long)(args)...);  // NOLINT: pointers and ints alike
}

[[noreturn]] FFIB_CHILD_CODE void ChildFail(const ChildPlan& plan, int step, long result) {
  ChildFailure failure{step, static_cast<int>(-result)};
  Sys(SYS_write, plan.error_fd, &failure, sizeof failure);
  for (;;) Sys(SYS_exit_group, 127);
}

// Fails the child at `step` unless `result` (a Sys result) is success.
FFIB_CHILD_CODE inline void Check(const ChildPlan& plan, int step, long result) {
  if (result < 0) ChildFail(plan, step, result);
}

// The raw system calls switch ids for this process alone, as the child
// needs (glibc's wrappers would signal the daemon's threads).
FFIB_CHILD_CODE void SwitchIds(const ChildPlan& plan) {
  if (plan.drop_groups) Check(plan, kSetgroups, Sys(SYS_setgroups, 0, nullptr));
  if (plan.set_ids) {
    Check(plan, kSetresgid, Sys(SYS_setresgid, plan.gid, plan.gid, plan.gid));
    Check(plan, kSetresuid, Sys(SYS_setresuid, plan.uid, plan.uid, plan.uid));
  }
}

// "/proc/self/fd/" + fd into `out` (40 bytes).
FFIB_CHILD_CODE void FdPath(int fd, char* out) {
  static constexpr char kPrefix[] = "/proc/self/fd/";
  size_t n = 0;
  for (; kPrefix[n] != '\0'; ++n) out[n] = kPrefix[n];
  char digits[12];
  size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + fd % 10);
    fd /= 10;
  } while (fd > 0);
  while (d > 0) out[n++] = digits[--d];
  out[n] = '\0';
}

FFIB_CHILD_CODE void BuildRoot(ChildPlan& plan) {
  Check(plan, kPrivate, Sys(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr));
  Check(plan, kTmpfs, Sys(SYS_mount, "ffibroker-root", plan.new_root, "tmpfs",
                          MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=65536"));
  for (size_t i = 0; i < plan.mkdir_count; ++i) {
    long r = Sys(SYS_mkdirat, AT_FDCWD, plan.mkdirs[i], 0755);
    if (r != -EEXIST) Check(plan, kMkdir, r);
  }
  for (size_t i = 0; i < plan.symlink_count; ++i) {
    const ChildLink& link = plan.symlinks[i];
    Check(plan, kSymlink, Sys(SYS_symlinkat, link.target, AT_FDCWD, link.link));
  }
  for (size_t i = 0; i < plan.bind_count; ++i) {
    const ChildBind& bind = plan.binds[i];
    // The target may exist already, inside an ancestor bound before it
    // (read-only by then).
    struct stat st;
    if (Sys(SYS_newfstatat, AT_FDCWD, bind.target, &st, 0) < 0) {
      if (bind.is_file) {
        long fd = Sys(SYS_openat, AT_FDCWD, bind.target, O_CREAT | O_WRONLY | O_CLOEXEC, 0444);
        Check(plan, kBindTarget, fd);
        Sys(SYS_close, fd);
      } else {
        Check(plan, kBindTarget, Sys(SYS_mkdirat, AT_FDCWD, bind.target, 0755));
      }
    }
    // Recursive: in a new user namespace the kernel refuses to bind a
    // directory without the submounts locked under it.
    Check(plan, kBind,
          Sys(SYS_mount, bind.fd_path, bind.target, nullptr, MS_BIND | MS_REC, nullptr));
    // Read-only (and nosuid, nodev, maybe noexec) for the whole subtree.
    mount_attr attr;  // every field set: no memset call
    attr.attr_set = bind.attrs;
    attr.attr_clr = 0;
    attr.propagation = 0;
    attr.userns_fd = 0;
    long r = Sys(SYS_mount_setattr, AT_FDCWD, bind.target, AT_RECURSIVE, &attr, sizeof attr);
    // Before Linux 5.12: only the top mount can be made read-only.
    if (r == -ENOSYS) {
      r = Sys(SYS_mount, nullptr, bind.target, nullptr,
              MS_BIND | MS_REMOUNT | MS_RDONLY | bind.flags, nullptr);
    }
    Check(plan, kRemount, r);
  }
  Check(plan, kMkdir, Sys(SYS_mkdirat, AT_FDCWD, plan.old_root, 0700));
  Check(plan, kPivot, Sys(SYS_pivot_root, plan.new_root, plan.old_root));
  Check(plan, kDetach, Sys(SYS_chdir, "/"));
  Check(plan, kDetach, Sys(SYS_umount2, plan.old_root_inside, MNT_DETACH));
  Check(plan, kDetach, Sys(SYS_unlinkat, AT_FDCWD, plan.old_root_inside, AT_REMOVEDIR));
  Check(plan, kRemount, Sys(SYS_mount, nullptr, "/", nullptr,
                            MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr));
}

// The kernel's sigaction for SIG_DFL (handler, flags, restorer and mask all
// zero; large enough for every layout the kernel reads).
struct KernelSigaction {
  unsigned long words[4] = {};
};

[[noreturn]] FFIB_CHILD_CODE void RunChild(ChildPlan& plan) {
  Check(plan, kPdeathsig, Sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL));
  char go = 0;
  long got = Sys(SYS_read, plan.sync_fd, &go, 1);
  if (got != 1) ChildFail(plan, kWait, got < 0 ? got : -EPIPE);  // the daemon gave up
  // Every handler goes back to its default now, before anything could
  // unblock a signal: a daemon's handler must never run in this child.
  static const KernelSigaction kDefault;  // zeros, in read-only data: no memset call
  for (int sig = 1; sig <= 64; ++sig) {
    Sys(SYS_rt_sigaction, sig, &kDefault, nullptr, 8);  // EINVAL for KILL/STOP: fine
  }
  // The bind sources are opened now: in this mount namespace (a bind
  // source must belong to it), before the new root hides them (a source
  // under it, e.g. a pinned copy in /tmp) and with the daemon's uid (the
  // source may be in a directory only it can search).
  if (plan.mount_ns) {
    for (size_t i = 0; i < plan.bind_count; ++i) {
      ChildBind& bind = plan.binds[i];
      long fd = Sys(SYS_openat, AT_FDCWD, bind.source, O_PATH | O_CLOEXEC);
      Check(plan, kOpenSource, fd);
      bind.fd = static_cast<int>(fd);
      FdPath(bind.fd, bind.fd_path);
    }
  }
  // In a user namespace the ids switch first: files the child creates in
  // its new root need an owner mapped in the namespace (a root daemon's uid
  // 0 is not), and the capabilities held in the namespace survive the
  // switch until execve. Without one, the switch must wait for the mounts.
  if (plan.user_ns) SwitchIds(plan);
  if (plan.mount_ns) BuildRoot(plan);
  if (!plan.user_ns) SwitchIds(plan);
  Check(plan, kNoNewPrivs, Sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  // A change of credentials clears the parent-death signal: set it again.
  Check(plan, kPdeathsig, Sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL));
  // The descriptors used here sit at 10 or above (SpawnSandboxed), never
  // on the ones they go to.
  Check(plan, kDup2, Sys(SYS_dup3, plan.channel_fd, plan.worker_channel_fd, 0));
  int last_kept = plan.worker_channel_fd;
  if (plan.ring_fd >= 0) {
    Check(plan, kDup2, Sys(SYS_dup3, plan.ring_fd, plan.worker_ring_fd, 0));
    last_kept = plan.worker_ring_fd;
  }
  for (int fd = 0; fd <= 2; ++fd) Check(plan, kDup2, Sys(SYS_dup3, plan.devnull_fd, fd, 0));
  // Everything else closes at exec (the error pipe only if exec succeeds).
  Check(plan, kCloseRange, Sys(SYS_close_range, last_kept + 1, ~0U, CLOSE_RANGE_CLOEXEC));
  uint64_t none = 0;
  Check(plan, kSignals, Sys(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none));
  char* envp[] = {nullptr};
  long r = Sys(SYS_execve, plan.executable, plan.argv, envp);
  ChildFail(plan, kExecve, r);
}

FFIB_CHILD_CODE int ChildMain(void* plan) { RunChild(*static_cast<ChildPlan*>(plan)); }

}  // namespace

const char* ChildStepName(int step) {
  static const char* const kNames[] = {
      "wait for the daemon", "make mounts private", "open a bind source", "mount the new root",
      "mkdir", "symlink", "create a bind target", "bind-mount", "remount read-only", "pivot_root",
      "detach the old root", "setgroups", "setresgid", "setresuid", "no_new_privs",
      "parent-death signal", "dup2", "close_range", "reset signals", "execve"};
  static_assert(sizeof kNames / sizeof kNames[0] == kExecve + 1, "a name for every step");
  return step >= 0 && step <= kExecve ? kNames[step] : "?";
}

ChildStack::ChildStack() {
  const size_t guard = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* p = ::mmap(nullptr, kSize + guard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) return;
  if (::mprotect(p, guard, PROT_NONE) != 0) {
    ::munmap(p, kSize + guard);
    return;
  }
  base_ = p;
}

ChildStack::~ChildStack() {
  if (base_ != nullptr) ::munmap(base_, kSize + static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
}

void* ChildStack::top() const {
  return static_cast<char*>(base_) + kSize + static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

pid_t StartChild(ChildPlan* plan, ChildStack* stack, int clone_flags, bool share_memory,
                 int* pidfd) {
  // The raw call: pthread_sigmask leaves glibc's internal signals (SIGCANCEL,
  // SIGSETXID) unblocked. A thread of the daemon calling a set*id function
  // meanwhile waits the few microseconds until they are unblocked again.
  const uint64_t all = ~uint64_t{0};
  uint64_t old = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old, sizeof all);
  // glibc's clone, not clone3: it runs ChildMain on the new stack, and the
  // flags fit in its int (container runtimes also often hide clone3).
  const int flags = clone_flags | (share_memory ? CLONE_VM : 0) | SIGCHLD;
  pid_t pid = ::clone(&ChildMain, stack->top(), flags, plan, pidfd);
  const int err = errno;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old, nullptr, sizeof old);
  errno = err;
  return pid;
}

}  // namespace ffibroker
