#include "daemon/sandbox_spawn.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/close_range.h>
#include <linux/mount.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/worker_protocol.h"

namespace ffibroker {
namespace {

constexpr uint32_t kNobody = 65534;
// Bound into every worker's root (a symlink among them is recreated).
constexpr const char* kSystemLibraryDirs[] = {"/usr/lib", "/usr/lib64", "/usr/lib32",
                                              "/lib",     "/lib64",     "/lib32"};
constexpr char kNewRoot[] = "/tmp";  // mount point of the new root, in the new namespace

// Everything the child needs, prepared before clone3 so that the child only
// reads memory and makes system calls.
struct ChildPlan {
  struct Bind {
    std::string source, target;  // target is inside kNewRoot
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
  uint32_t uid = kNobody;        // the ids to switch to (as the child sees them)
  uint32_t gid = kNobody;
  bool drop_groups = false;      // root daemon: setgroups(0) (its groups may include 0)
  std::vector<std::string> mkdirs;
  std::vector<std::pair<std::string, std::string>> symlinks;  // target, linkpath
  std::vector<Bind> binds;
  std::string old_root, old_root_inside;
  int sync_fd = -1;              // read: one byte "go" once ids are mapped
  int error_fd = -1;             // write: {step, errno} on failure
  int channel_fd = -1;
  int devnull_fd = -1;
  const char* executable = nullptr;
  std::vector<char*> argv;
};

struct ChildFailure {
  int step;
  int err;
};

const char* const kStepNames[] = {
    "wait for the daemon", "make mounts private", "open a bind source", "mount the new root", "mkdir",
    "symlink", "create a bind target", "bind-mount", "remount read-only", "pivot_root",
    "detach the old root", "setgroups", "setresgid", "setresuid", "no_new_privs",
    "parent-death signal", "dup2", "close_range", "reset signals", "execve"};
enum ChildStep {
  kWait, kPrivate, kOpenSource, kTmpfs, kMkdir, kSymlink, kBindTarget, kBind, kRemount, kPivot,
  kDetach, kSetgroups, kSetresgid, kSetresuid, kNoNewPrivs, kPdeathsig, kDup2,
  kCloseRange, kSignals, kExecve};

[[noreturn]] void ChildFail(const ChildPlan& plan, int step) {
  ChildFailure failure{step, errno};
  ssize_t ignored = ::write(plan.error_fd, &failure, sizeof failure);
  (void)ignored;
  ::_exit(127);
}

// glibc's set*id wrappers would try to synchronize threads that do not
// exist in this child: use the raw system calls.
void SwitchIds(const ChildPlan& plan) {
  if (plan.drop_groups && ::syscall(SYS_setgroups, 0, nullptr) != 0) ChildFail(plan, kSetgroups);
  if (plan.set_ids) {
    if (::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0) ChildFail(plan, kSetresgid);
    if (::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0) ChildFail(plan, kSetresuid);
  }
}

// "/proc/self/fd/" + fd into `out` (40 bytes); async-signal-safe.
void FdPath(int fd, char* out) {
  const char prefix[] = "/proc/self/fd/";
  size_t n = 0;
  for (; prefix[n] != '\0'; ++n) out[n] = prefix[n];
  char digits[12];
  size_t d = 0;
  do {
    digits[d++] = static_cast<char>('0' + fd % 10);
    fd /= 10;
  } while (fd > 0);
  while (d > 0) out[n++] = digits[--d];
  out[n] = '\0';
}

// Runs in the child of clone3 (its own copy of memory): raw system calls
// and writes to `plan` only.
[[noreturn]] void RunChild(ChildPlan& plan) {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(plan, kPdeathsig);
  char go = 0;
  if (::read(plan.sync_fd, &go, 1) != 1) ChildFail(plan, kWait);  // daemon gone
  // The bind sources are opened now: in this mount namespace (a bind
  // source must belong to it), before the new root hides them (a source
  // under it, e.g. a pinned copy in /tmp) and with the daemon's uid (the
  // source may be in a directory only it can search).
  if (plan.mount_ns) {
    for (ChildPlan::Bind& bind : plan.binds) {
      bind.fd = ::open(bind.source.c_str(), O_PATH | O_CLOEXEC);
      if (bind.fd < 0) ChildFail(plan, kOpenSource);
      FdPath(bind.fd, bind.fd_path);
    }
  }
  // In a user namespace the ids switch first: files the child creates in
  // its new root need an owner mapped in the namespace (a root daemon's uid
  // 0 is not), and the capabilities held in the namespace survive the
  // switch until execve. Without one, the switch must wait for the mounts.
  if (plan.user_ns) SwitchIds(plan);
  if (plan.mount_ns) {
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ChildFail(plan, kPrivate);
    if (::mount("ffibroker-root", kNewRoot, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=0755,size=65536") != 0) {
      ChildFail(plan, kTmpfs);
    }
    for (const std::string& dir : plan.mkdirs) {
      if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) ChildFail(plan, kMkdir);
    }
    for (const auto& [target, link] : plan.symlinks) {
      if (::symlink(target.c_str(), link.c_str()) != 0) ChildFail(plan, kSymlink);
    }
    for (const ChildPlan::Bind& bind : plan.binds) {
      // The target may exist already, inside an ancestor bound before it
      // (read-only by then).
      struct stat st;
      if (::stat(bind.target.c_str(), &st) != 0) {
        if (bind.is_file) {
          int fd = ::open(bind.target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0444);
          if (fd < 0) ChildFail(plan, kBindTarget);
          ::close(fd);
        } else if (::mkdir(bind.target.c_str(), 0755) != 0) {
          ChildFail(plan, kBindTarget);
        }
      }
      // Recursive: in a new user namespace the kernel refuses to bind a
      // directory without the submounts locked under it.
      if (::mount(bind.fd_path, bind.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        ChildFail(plan, kBind);
      }
      // Read-only (and nosuid, nodev, maybe noexec) for the whole subtree.
      mount_attr attr = {};
      attr.attr_set = bind.attrs;
      if (::syscall(SYS_mount_setattr, AT_FDCWD, bind.target.c_str(), AT_RECURSIVE, &attr,
                    sizeof attr) != 0) {
        // Before Linux 5.12: only the top mount can be made read-only.
        if (errno != ENOSYS ||
            ::mount(nullptr, bind.target.c_str(), nullptr,
                    MS_BIND | MS_REMOUNT | MS_RDONLY | bind.flags, nullptr) != 0) {
          ChildFail(plan, kRemount);
        }
      }
    }
    if (::mkdir(plan.old_root.c_str(), 0700) != 0) ChildFail(plan, kMkdir);
    if (::syscall(SYS_pivot_root, kNewRoot, plan.old_root.c_str()) != 0) ChildFail(plan, kPivot);
    if (::chdir("/") != 0 || ::umount2(plan.old_root_inside.c_str(), MNT_DETACH) != 0 ||
        ::rmdir(plan.old_root_inside.c_str()) != 0) {
      ChildFail(plan, kDetach);
    }
    if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                nullptr) != 0) {
      ChildFail(plan, kRemount);
    }
  }
  if (!plan.user_ns) SwitchIds(plan);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ChildFail(plan, kNoNewPrivs);
  // A change of credentials clears the parent-death signal: set it again.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(plan, kPdeathsig);
  if (::dup2(plan.channel_fd, kWorkerChannelFd) != kWorkerChannelFd) ChildFail(plan, kDup2);
  for (int fd = 0; fd <= 2; ++fd) {
    if (::dup2(plan.devnull_fd, fd) != fd) ChildFail(plan, kDup2);
  }
  // Everything else closes at exec (the error pipe only if exec succeeds).
  if (::syscall(SYS_close_range, kWorkerChannelFd + 1, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    ChildFail(plan, kCloseRange);
  }
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // EINVAL for KILL/STOP: fine
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) ChildFail(plan, kSignals);
  char* envp[] = {nullptr};
  ::execve(plan.executable, plan.argv.data(), envp);
  ChildFail(plan, kExecve);
}

// Flags a read-only remount of a bind of `path` must keep (the kernel
// refuses to drop nosuid/nodev/noexec/atime flags locked by the source).
unsigned long LockedFlags(const std::string& path) {
  struct statvfs st;
  unsigned long flags = MS_NOSUID | MS_NODEV;
  if (::statvfs(path.c_str(), &st) != 0) return flags;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

// Fills the mount part of `plan`: system library dirs, the executable and
// the readable paths, each once, parents before children.
void PlanRoot(const SandboxPlan& in, ChildPlan* plan) {
  std::set<std::string> dirs;
  auto add_parents = [&](const std::string& path) {
    for (size_t slash = path.find('/', 1); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string dir = absl::StrCat(kNewRoot, path.substr(0, slash));
      if (dirs.insert(dir).second) plan->mkdirs.push_back(dir);
    }
  };
  // Candidates, bound in path order so an ancestor never hides what is
  // bound under it. A path under an earlier bind is skipped unless it needs
  // exec and that bind is noexec.
  std::vector<std::pair<std::string, bool>> wanted;  // real path, exec
  auto want = [&](const std::string& path, bool exec) {
    char real[PATH_MAX];
    if (::realpath(path.c_str(), real) != nullptr) wanted.emplace_back(real, exec);
  };
  for (const char* dir : kSystemLibraryDirs) {
    struct stat st;
    if (::lstat(dir, &st) != 0) continue;
    if (S_ISLNK(st.st_mode)) {
      char target[PATH_MAX];
      ssize_t n = ::readlink(dir, target, sizeof target - 1);
      if (n <= 0) continue;
      add_parents(dir);
      plan->symlinks.emplace_back(std::string(target, static_cast<size_t>(n)),
                                  absl::StrCat(kNewRoot, dir));
    } else if (S_ISDIR(st.st_mode)) {
      want(dir, /*exec=*/true);
    }
  }
  want(in.executable, /*exec=*/true);
  for (const std::string& path : in.library_paths) want(path, /*exec=*/true);
  for (const std::string& path : in.readable_paths) want(path, /*exec=*/false);
  std::sort(wanted.begin(), wanted.end());
  std::vector<std::pair<std::string, bool>> bound;
  for (const auto& [source, exec] : wanted) {
    bool skip = false;
    for (const auto& [b, b_exec] : bound) {
      bool under = source == b || (source.size() > b.size() &&
                                   source.compare(0, b.size(), b) == 0 && source[b.size()] == '/');
      if (under && (b_exec || !exec)) skip = true;
    }
    struct stat st;
    if (skip || ::stat(source.c_str(), &st) != 0) continue;
    add_parents(source);
    unsigned long flags = LockedFlags(source) | (exec ? 0 : MS_NOEXEC);
    uint64_t attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                     (exec ? 0 : MOUNT_ATTR_NOEXEC);
    plan->binds.push_back(
        {source, absl::StrCat(kNewRoot, source), flags, attrs, !S_ISDIR(st.st_mode)});
    bound.emplace_back(source, exec);
  }
  plan->old_root = absl::StrCat(kNewRoot, "/.old-root");
  plan->old_root_inside = "/.old-root";
}

// Whether `err` means the kernel (or its configuration) does not allow an
// operation, as opposed to a transient or resource failure. ENOSPC is what
// clone returns when user.max_user_namespaces is 0.
bool KernelRefused(int err) {
  return err == EPERM || err == EACCES || err == EINVAL || err == ENOSYS || err == ENOSPC ||
         err == EUSERS;
}

std::string ReadSmallFile(const std::string& path) {
  char buf[64];
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

bool WriteFile(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

}  // namespace

std::string InSystemLibraryDir(const std::string& path) {
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr) return "";
  const std::string resolved = real;
  for (const char* dir : kSystemLibraryDirs) {
    // As PlanRoot binds them: a directory at its real path (a symlink is
    // recreated, pointing to one of the others).
    struct stat st;
    char bound[PATH_MAX];
    if (::lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || ::realpath(dir, bound) == nullptr) {
      continue;
    }
    const size_t n = std::strlen(bound);
    if (resolved.size() > n && resolved.compare(0, n, bound) == 0 && resolved[n] == '/') {
      return resolved;
    }
  }
  return "";
}

absl::StatusOr<SandboxedChild> SpawnSandboxed(const SandboxPlan& in, SandboxError* error) {
  auto fail = [&](SandboxStep step, absl::Status status) {
    error->step = step;
    error->status = status;
    return status;
  };
  bool root = ::geteuid() == 0;
  ChildPlan plan;
  plan.mount_ns = in.mount_ns;
  plan.user_ns = in.user_ns;
  plan.set_ids = in.user_ns || root;
  // Outside the worker's user namespace: its own uid (root), else ours.
  const uint32_t outer_uid = root ? in.host_id.value_or(kNobody) : ::geteuid();
  const uint32_t outer_gid = root ? in.host_id.value_or(kNobody) : ::getegid();
  // Inside: 65534, mapped to the outer ids; without a user namespace only
  // a root daemon switches, and straight to the outer ids.
  plan.uid = in.user_ns ? kNobody : outer_uid;
  plan.gid = in.user_ns ? kNobody : outer_gid;
  // A root daemon drops its groups, unless its own user namespace has
  // frozen them (it was started with setgroups "deny", e.g. unshare -r).
  plan.drop_groups = root && ReadSmallFile("/proc/self/setgroups") != "deny\n";
  if (plan.mount_ns) PlanRoot(in, &plan);
  plan.executable = in.executable.c_str();
  for (const std::string& a : in.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);

  // Every descriptor the child uses sits at 10 or above, so its dup2 onto
  // 0-3 cannot overwrite one it still needs (a daemon started with stdio
  // closed hands out low numbers).
  int sync[2], errors[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) return fail(SandboxStep::kOther, ErrnoStatus("pipe2", errno));
  UniqueFd sync_read(sync[0]), sync_write(sync[1]);
  if (::pipe2(errors, O_CLOEXEC) != 0) return fail(SandboxStep::kOther, ErrnoStatus("pipe2", errno));
  UniqueFd error_read(errors[0]), error_write(errors[1]);
  UniqueFd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull.valid()) return fail(SandboxStep::kOther, ErrnoStatus("open /dev/null", errno));
  UniqueFd high_sync(::fcntl(sync_read.get(), F_DUPFD_CLOEXEC, 10));
  UniqueFd high_error(::fcntl(error_write.get(), F_DUPFD_CLOEXEC, 10));
  UniqueFd high_devnull(::fcntl(devnull.get(), F_DUPFD_CLOEXEC, 10));
  UniqueFd high_channel(::fcntl(in.channel_fd, F_DUPFD_CLOEXEC, 10));
  for (const UniqueFd* fd : {&high_sync, &high_error, &high_devnull, &high_channel}) {
    if (!fd->valid()) return fail(SandboxStep::kOther, ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)", errno));
  }
  plan.sync_fd = high_sync.get();
  plan.error_fd = high_error.get();
  plan.devnull_fd = high_devnull.get();
  plan.channel_fd = high_channel.get();

  uint64_t flags = CLONE_PIDFD;
  if (in.user_ns) flags |= CLONE_NEWUSER;
  if (in.mount_ns) flags |= CLONE_NEWNS;
  if (in.pid_ns) flags |= CLONE_NEWPID;
  if (in.net_ns) flags |= CLONE_NEWNET;
  if (in.ipc_ns) flags |= CLONE_NEWIPC;
  if (in.uts_ns) flags |= CLONE_NEWUTS;
  int pidfd = -1;
  clone_args args = {};
  args.flags = flags;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0 && errno == ENOSYS) {
    // Container runtimes often hide clone3 (their own seccomp profiles
    // cannot inspect its flags): clone takes the same flags in a register.
    // No stack is given, so the child runs on a copy of ours, as after fork.
    pid = ::syscall(SYS_clone, flags | SIGCHLD, nullptr, &pidfd, nullptr, nullptr);
  }
  if (pid < 0) {
    int err = errno;
    return fail(KernelRefused(err) ? SandboxStep::kClone : SandboxStep::kOther,
                ErrnoStatus("clone3 with namespaces", err));
  }
  if (pid == 0) RunChild(plan);

  SandboxedChild child;
  child.pid = static_cast<pid_t>(pid);
  child.pidfd.reset(pidfd);
  sync_read.reset();
  error_write.reset();
  high_sync.reset();
  high_error.reset();
  auto reap = [&] {
    ::kill(child.pid, SIGKILL);
    ::waitpid(child.pid, nullptr, 0);
  };
  if (in.user_ns) {
    std::string proc = absl::StrCat("/proc/", child.pid);
    // Unprivileged, groups must be frozen before gid_map can be written; a
    // root daemon may leave them settable so the child drops its own.
    if ((!plan.drop_groups && !WriteFile(proc + "/setgroups", "deny")) ||
        !WriteFile(proc + "/gid_map", absl::StrCat(kNobody, " ", outer_gid, " 1")) ||
        !WriteFile(proc + "/uid_map", absl::StrCat(kNobody, " ", outer_uid, " 1"))) {
      int err = errno;
      reap();
      return fail(KernelRefused(err) ? SandboxStep::kUserMap : SandboxStep::kOther,
                  ErrnoStatus("map the worker's user namespace", err));
    }
  }
  char go = 1;
  if (::write(sync_write.get(), &go, 1) != 1) {
    reap();
    return fail(SandboxStep::kOther, ErrnoStatus("start the worker", errno));
  }
  sync_write.reset();
  ChildFailure failure;
  ssize_t n;
  do {
    n = ::read(error_read.get(), &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  if (n != 0) {
    reap();
    if (n != sizeof failure || failure.step < 0 || failure.step > kExecve) {
      return fail(SandboxStep::kOther, absl::InternalError("worker setup failed"));
    }
    // Only the kernel refusing a mount operation counts as "no mount
    // namespace here"; a path that vanished or a full fd table does not.
    bool mount_op = failure.step == kPrivate || failure.step == kTmpfs ||
                    failure.step == kBind || failure.step == kRemount ||
                    failure.step == kPivot || failure.step == kDetach;
    SandboxStep step = mount_op && KernelRefused(failure.err) ? SandboxStep::kMount
                       : failure.step >= kSetgroups && failure.step <= kSetresuid
                           ? SandboxStep::kCredentials
                       : failure.step == kExecve ? SandboxStep::kExec
                                                 : SandboxStep::kOther;
    return fail(step, absl::FailedPreconditionError(absl::StrCat(
                          "worker setup failed at '", kStepNames[failure.step], "': ",
                          ::strerror(failure.err))));
  }
  child.uid = plan.set_ids ? outer_uid : ::geteuid();
  child.uid_in_namespace = plan.set_ids ? plan.uid : ::geteuid();
  return child;
}

}  // namespace ffibroker
