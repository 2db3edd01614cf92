#include "daemon/worker_process.h"

#include <cctype>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/worker_protocol.h"
#include "daemon/profiles.h"

namespace ffibroker {
namespace {

int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

}  // namespace

std::string SanitizeWorkerText(const std::string& text) {
  std::string out;
  for (char c : text.substr(0, 300)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) ? c : '?');
  }
  if (text.size() > 300) out += "...";
  return out;
}

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  const char* description = ::sigdescr_np(sig);
  return absl::StrCat(abbrev ? absl::StrCat("SIG", abbrev) : absl::StrCat("signal ", sig),
                      " (", description ? description : "unknown signal", ")");
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Spawn(
    SandboxPlan plan, absl::Time deadline, SandboxError* error,
    worker::v1::Hello* hello_out) {
  ASSIGN_OR_RETURN(auto channel, SeqpacketTransport::Pair());
  std::unique_ptr<SeqpacketTransport> ours = std::move(channel.first);
  std::unique_ptr<SeqpacketTransport> theirs = std::move(channel.second);
  plan.channel_fd = theirs->fd();
  absl::StatusOr<SandboxedChild> child = SpawnSandboxed(plan, error);
  if (!child.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot start worker ", plan.executable, ": ", child.status().message()));
  }
  theirs.reset();
  pid_t pid = child->pid;
  std::unique_ptr<WorkerProcess> worker(
      new WorkerProcess(pid, std::move(child->pidfd), std::move(ours)));
  worker->uid_ = child->uid;
  worker->uid_in_namespace_ = child->uid_in_namespace;
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
  *hello_out = hello.hello();
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
  } else if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGSYS) {
    // Only seccomp sends SIGSYS (no profile lets a worker send signals but
    // SIGABRT to itself). Unreported: the signal was blocked when the
    // syscall was made (glibc's pthread_create blocks all), so the kernel
    // killed the worker without running its reporter.
    Record(WorkerOutcome::Kind::kViolation, -1,
           "was stopped for a forbidden system call (which one is unknown: the library "
           "had blocked SIGSYS when it made it)");
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
  if (!status.ok() && !absl::IsUnavailable(status)) {
    // The daemon's side failed (see Transport::Send), not the worker.
    if (absl::IsResourceExhausted(status)) return status;  // nothing sent: still usable
    if (absl::IsDeadlineExceeded(status)) {
      Record(WorkerOutcome::Kind::kTimedOut, SIGKILL,
             absl::StrCat("killed because it did not take a request: ", status.message()));
    } else {
      Record(WorkerOutcome::Kind::kStopped, SIGKILL,
             absl::StrCat("stopped because the daemon failed to send it a request: ",
                          status.message()));
    }
    KillAndReap();  // part of a request may be on the channel
    return OutcomeStatus();
  }
  worker::v1::WorkerToDaemon reply;
  if (status.ok()) status = channel_->Receive(&reply, deadline, pidfd_.get());
  if (status.ok() && !reply.has_fatal()) return reply;
  if (status.ok()) {
    RecordFatal(reply.fatal());
    Reap(absl::Seconds(1));  // the handler exits right after reporting
    return OutcomeStatus();
  }

  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      Record(WorkerOutcome::Kind::kTimedOut, SIGKILL,
             "killed because the call's deadline passed");
      KillAndReap();
      return OutcomeStatus();
    case absl::StatusCode::kUnavailable:  // channel closed: dead or dying
    case absl::StatusCode::kAborted:      // pidfd readable: it has ended
      Reap(absl::Seconds(1));
      break;
    default:  // malformed reply, oversized packet
      Record(WorkerOutcome::Kind::kProtocolViolation, 0,
             absl::StrCat("broke the worker protocol: ", status.message()));
      KillAndReap();
      break;
  }
  return OutcomeStatus();
}

void WorkerProcess::RecordFatal(const worker::v1::Fatal& fatal) {
  int sig = fatal.signal();
  if (sig <= 0 || sig >= NSIG) {
    Record(WorkerOutcome::Kind::kProtocolViolation, 0,
           absl::StrCat("broke the worker protocol: fatal report with signal ", sig));
    return;
  }
  constexpr int kSysSeccomp = 1;  // si_code of a seccomp SIGSYS
  if (sig == SIGSYS && fatal.si_code() == kSysSeccomp) {
    int nr = fatal.syscall();
    Record(WorkerOutcome::Kind::kViolation, nr,
           absl::StrCat("was stopped for the forbidden system call ",
                        nr >= 0 && nr < 4096 ? SyscallName(nr) : "?", " (#", nr, ")"));
    return;
  }
  if (sig == SIGXCPU) {
    Record(WorkerOutcome::Kind::kResourceLimit, sig,
           "exceeded its CPU time limit (SIGXCPU)");
    return;
  }
  uint64_t peak = fatal.max_rss_kb() > 0 ? static_cast<uint64_t>(fatal.max_rss_kb()) * 1024 : 0;
  if (address_space_limit_ > 0 && peak >= address_space_limit_ / 2 &&
      (sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT)) {
    Record(WorkerOutcome::Kind::kResourceLimit, sig,
           absl::StrCat("ran out of memory (peak resident ", peak >> 20,
                        " MiB, address-space limit ", address_space_limit_ >> 20,
                        " MiB) and was killed by signal ", SignalName(sig)));
    return;
  }
  Record(WorkerOutcome::Kind::kSignaled, sig,
         absl::StrCat("killed by signal ", SignalName(sig)));
}

absl::Status WorkerProcess::OutcomeStatus() const {
  WorkerOutcome end = outcome();
  std::string message = absl::StrCat("worker ", end.message);
  switch (end.kind) {
    case WorkerOutcome::Kind::kViolation: return absl::PermissionDeniedError(message);
    case WorkerOutcome::Kind::kResourceLimit: return absl::ResourceExhaustedError(message);
    case WorkerOutcome::Kind::kTimedOut: return absl::DeadlineExceededError(message);
    default: return absl::UnavailableError(message);
  }
}

}  // namespace ffibroker
