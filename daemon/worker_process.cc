#include "daemon/worker_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/worker_protocol.h"

namespace ffibroker {
namespace {

int PidfdOpen(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// RAII for the posix_spawn attribute and file-action objects.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

}  // namespace

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  const char* description = ::sigdescr_np(sig);
  return absl::StrCat(abbrev ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig),
                      " (", description ? description : "unknown signal", ")");
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Spawn(
    const WorkerOptions& options, absl::Time deadline) {
  ASSIGN_OR_RETURN(auto channel, SeqpacketTransport::Pair());
  std::unique_ptr<SeqpacketTransport> ours = std::move(channel.first);
  std::unique_ptr<SeqpacketTransport> theirs = std::move(channel.second);

  SpawnSetup setup;
  // dup2 onto the same number would leave close-on-exec set; make sure the
  // source is a different descriptor.
  UniqueFd moved;
  int child_fd = theirs->fd();
  if (child_fd == kWorkerChannelFd) {
    moved.reset(::fcntl(child_fd, F_DUPFD_CLOEXEC, kWorkerChannelFd + 1));
    if (!moved.valid()) return ErrnoStatus("dup of the worker channel", errno);
    child_fd = moved.get();
  }
  posix_spawn_file_actions_adddup2(&setup.actions, child_fd, kWorkerChannelFd);
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, kWorkerChannelFd + 1);
  // The daemon blocks its shutdown signals in every thread; the worker
  // starts with none blocked and default dispositions, in its own process
  // group so a terminal's Ctrl-C reaches only the daemon.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  posix_spawnattr_setpgroup(&setup.attr, 0);
  posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF |
                                            POSIX_SPAWN_SETPGROUP);

  std::string parent = absl::StrCat("--parent-pid=", ::getpid());
  std::vector<char*> argv = {const_cast<char*>("ffibroker-worker"),
                             parent.data(), nullptr};
  char* envp[] = {nullptr};  // the worker inherits no environment
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, options.worker_path.c_str(), &setup.actions,
                         &setup.attr, argv.data(), envp);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot start worker ", options.worker_path, ": ", ::strerror(rc)));
  }
  UniqueFd pidfd(PidfdOpen(pid));
  if (!pidfd.valid()) {
    int err = errno;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return ErrnoStatus("pidfd_open", err);
  }
  theirs.reset();
  moved.reset();

  std::unique_ptr<WorkerProcess> worker(
      new WorkerProcess(pid, std::move(pidfd), std::move(ours)));
  worker::v1::WorkerToDaemon hello;
  absl::Status status = worker->channel_->Receive(&hello, deadline, worker->pidfd_.get());
  if (!status.ok()) {
    if (absl::IsDeadlineExceeded(status)) {
      worker->Record(WorkerOutcome::Kind::kTimedOut, 0, "did not say hello in time");
      worker->KillAndReap();
    } else {
      worker->Reap(absl::Seconds(1));
    }
    return absl::UnavailableError(
        absl::StrCat("worker failed to start: ", worker->outcome().message));
  }
  if (!hello.has_hello() ||
      hello.hello().protocol_version() != kWorkerProtocolVersion) {
    std::string why =
        hello.has_hello()
            ? absl::StrCat("speaks worker protocol v", hello.hello().protocol_version(),
                           ", the daemon needs v", kWorkerProtocolVersion)
            : "did not start with a hello";
    worker->Abandon(why);
    return absl::UnavailableError(absl::StrCat("worker failed to start: ", why));
  }
  return worker;
}

WorkerProcess::~WorkerProcess() { KillAndReap(); }

void WorkerProcess::Record(WorkerOutcome::Kind kind, int code,
                           std::string message) {
  absl::MutexLock lock(&mu_);
  if (outcome_.kind != WorkerOutcome::Kind::kRunning) return;
  outcome_ = WorkerOutcome{kind, code, std::move(message)};
}

WorkerOutcome WorkerProcess::outcome() const {
  absl::MutexLock lock(&mu_);
  return outcome_;
}

bool WorkerProcess::alive() const {
  absl::MutexLock lock(&mu_);
  return outcome_.kind == WorkerOutcome::Kind::kRunning;
}

void WorkerProcess::Kill() {
  stop_requested_ = true;
  Record(WorkerOutcome::Kind::kStopped, SIGKILL, "stopped by the daemon");
  PidfdSendSignal(pidfd_.get(), SIGKILL);
}

void WorkerProcess::Abandon(const std::string& why) {
  Record(WorkerOutcome::Kind::kProtocolViolation, 0,
         absl::StrCat("broke the worker protocol: ", why));
  KillAndReap();
}

void WorkerProcess::KillAndReap() {
  if (reaped_) return;
  PidfdSendSignal(pidfd_.get(), SIGKILL);  // ESRCH if already gone: fine
  int wstatus = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &wstatus, 0);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  if (r != pid_) {
    Record(WorkerOutcome::Kind::kExited, -1, "vanished (could not be reaped)");
  } else if (WIFEXITED(wstatus)) {
    Record(WorkerOutcome::Kind::kExited, WEXITSTATUS(wstatus),
           absl::StrCat("exited with status ", WEXITSTATUS(wstatus)));
  } else if (WIFSIGNALED(wstatus)) {
    Record(WorkerOutcome::Kind::kSignaled, WTERMSIG(wstatus),
           absl::StrCat("killed by signal ", SignalName(WTERMSIG(wstatus))));
  }
  // Whatever was recorded, the process is gone now.
  Record(WorkerOutcome::Kind::kExited, 0, "ended");
}

void WorkerProcess::Reap(absl::Duration grace) {
  pollfd pfd = {pidfd_.get(), POLLIN, 0};
  int ms = static_cast<int>(absl::ToInt64Milliseconds(grace));
  while (::poll(&pfd, 1, ms) < 0 && errno == EINTR) {
  }
  KillAndReap();
}

absl::StatusOr<worker::v1::WorkerToDaemon> WorkerProcess::Exchange(
    const worker::v1::DaemonToWorker& request, absl::Time deadline) {
  if (!alive() || reaped_) {
    return absl::UnavailableError(absl::StrCat("worker ", outcome().message));
  }
  absl::Status status = channel_->Send(request);
  worker::v1::WorkerToDaemon reply;
  if (status.ok()) status = channel_->Receive(&reply, deadline, pidfd_.get());
  if (status.ok()) return reply;

  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      Record(WorkerOutcome::Kind::kTimedOut, SIGKILL,
             "killed because the call's deadline passed");
      KillAndReap();
      return absl::DeadlineExceededError(outcome().message);
    case absl::StatusCode::kUnavailable:  // channel closed: dead or dying
    case absl::StatusCode::kAborted:      // pidfd readable: it has ended
      Reap(absl::Seconds(1));
      break;
    default:  // malformed reply, oversized packet, send failure
      Record(WorkerOutcome::Kind::kProtocolViolation, 0,
             absl::StrCat("broke the worker protocol: ", status.message()));
      KillAndReap();
      break;
  }
  return absl::UnavailableError(absl::StrCat("worker ", outcome().message));
}

}  // namespace ffibroker
