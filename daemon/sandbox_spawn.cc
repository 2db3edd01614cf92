#include "daemon/sandbox_spawn.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <linux/close_range.h>
#include <linux/mount.h>
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
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/worker_protocol.h"
#include "daemon/sandbox_child.h"
#include "daemon/worker_process.h"  // SignalName

namespace ffibroker {
namespace {

constexpr uint32_t kNobody = 65534;
// Bound into every worker's root (a symlink among them is recreated).
constexpr const char* kSystemLibraryDirs[] = {"/usr/lib", "/usr/lib64", "/usr/lib32",
                                              "/lib",     "/lib64",     "/lib32"};
constexpr char kNewRoot[] = "/tmp";  // mount point of the new root, in the new namespace

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

// What the child reads, owned: the plan points into it. Kept on the heap
// until the child has exec'd or been reaped (leaked if that cannot be
// confirmed, see ChildGuard).
struct ChildMemory {
  struct Bind {
    std::string source, target;
    unsigned long flags;
    uint64_t attrs;
    bool is_file;
  };
  std::string new_root = kNewRoot;
  std::vector<std::string> mkdirs;
  std::vector<std::pair<std::string, std::string>> symlinks;  // target, linkpath
  std::vector<Bind> binds;
  std::string old_root, old_root_inside;
  std::string executable;
  std::vector<std::string> argv;
  // The plain-data view of the above.
  std::vector<const char*> mkdir_ptrs;
  std::vector<ChildLink> link_view;
  std::vector<ChildBind> bind_view;
  std::vector<char*> argv_ptrs;
  ChildPlan plan;

  // Points the plan at the strings above (after they are final).
  void Freeze() {
    for (const std::string& dir : mkdirs) mkdir_ptrs.push_back(dir.c_str());
    for (const auto& [target, link] : symlinks) link_view.push_back({target.c_str(), link.c_str()});
    for (const Bind& b : binds) {
      ChildBind view = {};
      view.source = b.source.c_str();
      view.target = b.target.c_str();
      view.flags = b.flags;
      view.attrs = b.attrs;
      view.is_file = b.is_file;
      view.fd = -1;
      bind_view.push_back(view);
    }
    for (std::string& a : argv) argv_ptrs.push_back(a.data());
    argv_ptrs.push_back(nullptr);
    plan.new_root = new_root.c_str();
    plan.mkdirs = mkdir_ptrs.data();
    plan.mkdir_count = mkdir_ptrs.size();
    plan.symlinks = link_view.data();
    plan.symlink_count = link_view.size();
    plan.binds = bind_view.data();
    plan.bind_count = bind_view.size();
    plan.old_root = old_root.c_str();
    plan.old_root_inside = old_root_inside.c_str();
    plan.executable = executable.c_str();
    plan.argv = argv_ptrs.data();
  }
};

// Fills the mount part of `plan`: system library dirs, the executable and
// the readable paths, each once, parents before children.
void PlanRoot(const SandboxPlan& in, ChildMemory* plan) {
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

// "killed by signal SIGKILL (Killed)" / "exited with status 127" for a
// child reaped with waitid.
std::string DescribeChildEnd(const siginfo_t& end) {
  if (end.si_code == CLD_KILLED || end.si_code == CLD_DUMPED) {
    return absl::StrCat("killed by signal ", SignalName(end.si_status));
  }
  if (end.si_code == CLD_EXITED) return absl::StrCat("exited with status ", end.si_status);
  return "its end could not be seen";
}

// Until its exec the child may run on `stack` and read `memory` (the
// daemon's own memory, when shared). On every way out of SpawnSandboxed
// before that — a failure, or an exception — the guard kills the child and
// waits until it is gone. Should that wait fail, both are leaked rather
// than freed under a child that may still run.
class ChildGuard {
 public:
  static constexpr absl::Duration kReapWait = absl::Seconds(10);

  ChildGuard(pid_t pid, int pidfd, ChildStack* stack, std::unique_ptr<ChildMemory>* memory)
      : pid_(pid), pidfd_(pidfd), stack_(stack), memory_(memory) {}
  ~ChildGuard() { (void)End(); }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;

  // The error pipe reached EOF: the child has exec'd (or died), and uses
  // neither any more.
  void Execd() { armed_ = false; }

  // Kills the child and reaps it (the pidfd stays open); returns how it
  // ended (si_code 0 if it was not reaped here). The wait is bounded
  // (kReapWait): a child the kernel cannot end (stuck in an uninterruptible
  // wait) is left, with its stack and plan leaked.
  siginfo_t End() {
    siginfo_t info = {};
    if (!armed_) return info;
    armed_ = false;
    // ESRCH: it ended already (and is not reaped yet); waitid still reaps it.
    if (::syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0) != 0 && errno != ESRCH &&
        ::kill(pid_, SIGKILL) != 0) {
      Leak("could not kill", errno);
      return info;
    }
    const absl::Time give_up = absl::Now() + kReapWait;
    pollfd p = {pidfd_, POLLIN, 0};  // readable once the child has ended
    int ready;
    do {
      ready = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(
                                0, absl::ToInt64Milliseconds(give_up - absl::Now()))));
    } while (ready < 0 && errno == EINTR);
    if (ready <= 0) {
      Leak("could not see the end of", ready < 0 ? errno : ETIMEDOUT);
      return info;
    }
    int rc;
    do {
      rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_), &info, WEXITED);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) Leak("could not reap", errno);
    return info;
  }

 private:
  void Leak(const char* what, int err) noexcept {
    stack_->Leak();
    (void)memory_->release();
    try {
      LOG_ERROR("%s worker pid %d, which failed its setup (errno %d); keeping its memory", what,
                pid_, err);
    } catch (...) {
    }
  }

  const pid_t pid_;
  const int pidfd_;
  ChildStack* const stack_;
  std::unique_ptr<ChildMemory>* const memory_;
  bool armed_ = true;
};

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

absl::StatusOr<SandboxedChild> SpawnSandboxed(const SandboxPlan& in, absl::Time deadline,
                                              SandboxError* error) {
  auto fail = [&](SandboxStep step, absl::Status status) {
    error->step = step;
    error->status = status;
    return status;
  };
  bool root = ::geteuid() == 0;
  auto memory = std::make_unique<ChildMemory>();
  ChildPlan& plan = memory->plan;
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
  if (plan.mount_ns) PlanRoot(in, memory.get());
  memory->old_root = absl::StrCat(kNewRoot, "/.old-root");
  memory->old_root_inside = "/.old-root";
  memory->executable = in.executable;
  memory->argv = in.argv;
  memory->Freeze();
  plan.worker_channel_fd = kWorkerChannelFd;

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
  UniqueFd high_ring(in.ring_fd >= 0 ? ::fcntl(in.ring_fd, F_DUPFD_CLOEXEC, 10) : -1);
  if (in.ring_fd >= 0 && !high_ring.valid()) {
    return fail(SandboxStep::kOther, ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)", errno));
  }
  for (const UniqueFd* fd : {&high_sync, &high_error, &high_devnull, &high_channel}) {
    if (!fd->valid()) return fail(SandboxStep::kOther, ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)", errno));
  }
  plan.sync_fd = high_sync.get();
  plan.error_fd = high_error.get();
  plan.devnull_fd = high_devnull.get();
  plan.channel_fd = high_channel.get();
  if (in.ring_fd >= 0) {
    plan.ring_fd = high_ring.get();
    plan.worker_ring_fd = kWorkerRingFd;
  }

  int flags = CLONE_PIDFD;
  if (in.user_ns) flags |= CLONE_NEWUSER;
  if (in.mount_ns) flags |= CLONE_NEWNS;
  if (in.pid_ns) flags |= CLONE_NEWPID;
  if (in.net_ns) flags |= CLONE_NEWNET;
  if (in.ipc_ns) flags |= CLONE_NEWIPC;
  if (in.uts_ns) flags |= CLONE_NEWUTS;
  ChildStack stack;
  if (!stack.valid()) return fail(SandboxStep::kOther, ErrnoStatus("map the child's stack", errno));
  int pidfd = -1;
  // Memory is shared only with a user namespace (sandbox_child.h says why).
  const pid_t pid = StartChild(&plan, &stack, flags, /*share_memory=*/in.user_ns, &pidfd);
  if (pid < 0) {
    int err = errno;
    return fail(KernelRefused(err) ? SandboxStep::kClone : SandboxStep::kOther,
                ErrnoStatus("clone with namespaces", err));
  }
  SandboxedChild child;
  child.pid = pid;
  child.pidfd.reset(pidfd);
  // From here on every way out, an exception included, ends the child
  // unless it has exec'd.
  ChildGuard guard(child.pid, child.pidfd.get(), &stack, &memory);
  sync_read.reset();
  error_write.reset();
  high_sync.reset();
  high_error.reset();
  if (in.user_ns) {
    std::string proc = absl::StrCat("/proc/", child.pid);
    // Unprivileged, groups must be frozen before gid_map can be written; a
    // root daemon may leave them settable so the child drops its own.
    if ((!plan.drop_groups && !WriteFile(proc + "/setgroups", "deny")) ||
        !WriteFile(proc + "/gid_map", absl::StrCat(kNobody, " ", outer_gid, " 1")) ||
        !WriteFile(proc + "/uid_map", absl::StrCat(kNobody, " ", outer_uid, " 1"))) {
      int err = errno;
      guard.End();
      return fail(KernelRefused(err) ? SandboxStep::kUserMap : SandboxStep::kOther,
                  ErrnoStatus("map the worker's user namespace", err));
    }
  }
  char go = 1;
  if (::write(sync_write.get(), &go, 1) != 1) {
    int err = errno;
    siginfo_t end = guard.End();
    return fail(SandboxStep::kOther,
                err == EPIPE ? absl::UnavailableError(absl::StrCat(
                                   "the new worker process ended before it started: ",
                                   DescribeChildEnd(end)))
                             : ErrnoStatus("start the worker", err));
  }
  sync_write.reset();
  // The error pipe ends (EOF) at the child's exec, or brings its failure.
  ChildFailure failure;
  ssize_t n = -1;
  while (true) {
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms < 0) {
      guard.End();
      return fail(SandboxStep::kOther,
                  absl::DeadlineExceededError(
                      "the worker's sandbox was not set up by the deadline (its child stopped, "
                      "or a bind source hung)"));
    }
    pollfd p = {error_read.get(), POLLIN, 0};
    // At most a second per poll; left_ms may be INT64_MAX (no deadline).
    int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 999) + 1));
    if (ready < 0 && errno != EINTR) {
      int err = errno;
      guard.End();
      return fail(SandboxStep::kOther, ErrnoStatus("wait for the worker's exec", err));
    }
    if (ready <= 0) continue;
    n = ::read(error_read.get(), &failure, sizeof failure);
    if (n >= 0 || errno != EINTR) break;
  }
  if (n == 0) guard.Execd();
  if (n != 0) {
    guard.End();
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
                          "worker setup failed at '", ChildStepName(failure.step), "': ",
                          ::strerror(failure.err))));
  }
  child.uid = plan.set_ids ? outer_uid : ::geteuid();
  child.uid_in_namespace = plan.set_ids ? plan.uid : ::geteuid();
  return child;
}

}  // namespace ffibroker
