#include "daemon/worker_process.h"

#include "daemon/metrics.h"

#include <cctype>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/worker_protocol.h"
#include "daemon/kernel_audit.h"
#include "daemon/profiles.h"
#include "daemon/worker_watcher.h"

namespace ffibroker {
namespace {

// How far the kernel log's clock may lag ours (it is the scheduler clock).
constexpr uint64_t kAuditClockSlackUs = 1000000;

int PidfdSendSignal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

// "killed by signal SIGKILL (Killed)" / "exited with status 3": how a wait
// status reads (a signal is never shown as an exit status).
std::string DescribeEnd(bool waited, int wstatus) {
  if (!waited) return "vanished";
  if (WIFSIGNALED(wstatus)) return absl::StrCat("was killed by signal ", SignalName(WTERMSIG(wstatus)));
  if (WIFEXITED(wstatus)) return absl::StrCat("exited with status ", WEXITSTATUS(wstatus));
  return "ended";
}

// Whether a worker that ended with `wstatus` can have sent `fatal` (see
// FatalEndsBySignal).
bool KernelAgrees(const worker::v1::Fatal& fatal, bool waited, int wstatus) {
  if (!waited) return false;
  int sig = fatal.signal();
  if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == sig) return true;
  // CPU time: past the hard limit the kernel sends SIGKILL.
  if (sig == SIGXCPU && WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL) return true;
  return !FatalEndsBySignal(sig, fatal.si_code()) && WIFEXITED(wstatus) &&
         WEXITSTATUS(wstatus) == 128 + sig;
}

// What a seccomp trap stopped: "the forbidden system call socket (#41)" or
// "a system call of another architecture (x32 getpid #1073741863)".
std::string TrappedCall(uint32_t audit_arch, int nr) {
  if (std::optional<std::string> foreign = ForeignSyscall(audit_arch, nr)) {
    return absl::StrCat("a system call of another architecture (", *foreign, ")");
  }
  return absl::StrCat("the forbidden system call ", nr >= 0 && nr < 4096 ? SyscallName(nr) : "?",
                      " (#", nr, ")");
}

}  // namespace

class ABSL_SCOPED_LOCKABLE WorkerProcess::ExchangeLock {
 public:
  explicit ExchangeLock(WorkerProcess* worker) ABSL_EXCLUSIVE_LOCK_FUNCTION(worker->exchange_mu_)
      : worker_(worker) {
    worker_->exchange_mu_.Lock();
  }
  ~ExchangeLock() ABSL_UNLOCK_FUNCTION() {
    worker_->exchange_mu_.Unlock();
    // The watcher saw the end while we held the channel and left it to us.
    if (worker_->end_pending_.exchange(false)) worker_->OnEnded();
  }
  ExchangeLock(const ExchangeLock&) = delete;
  ExchangeLock& operator=(const ExchangeLock&) = delete;

 private:
  WorkerProcess* const worker_;
};

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
    worker::v1::Hello* hello_out, WorkerWatcher* watcher) {
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
  if (watcher != nullptr) {
    // From here on shutdown can see (and kill) the worker, even while it
    // is still starting or loading its library.
    absl::Status watched = watcher->Watch(worker.get(), worker->pidfd_.get());
    if (!watched.ok()) {
      worker->Kill();
      return absl::UnavailableError(
          absl::StrCat("cannot start worker: ", watched.message()));
    }
    worker->watcher_ = watcher;
  }
  worker::v1::WorkerToDaemon hello;
  absl::Status status;
  {
    ExchangeLock exchange(worker.get());
    status = worker->channel_->Receive(&hello, deadline, worker->pidfd_.get());
    if (absl::IsDeadlineExceeded(status)) {
      worker->Record(WorkerOutcome::Kind::kTimedOut, 0, "did not say hello in time");
      worker->KillAndReap();
    } else if (!status.ok()) {
      worker->Reap(absl::Seconds(1));
    }
  }
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("worker failed to start: ", worker->outcome().message));
  }
  if (!hello.has_hello() || hello.request_id() != 0 ||
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

WorkerProcess::~WorkerProcess() {
  {
    absl::MutexLock exchange(&exchange_mu_);
    KillAndReap();
  }
  if (watcher_ != nullptr) watcher_->Forget(this);
}

void WorkerProcess::set_label(std::string label) {
  absl::MutexLock lock(&mu_);
  label_ = std::move(label);
}

std::string WorkerProcess::label() const {
  absl::MutexLock lock(&mu_);
  return label_;
}

uint64_t WorkerProcess::NextRequestId() {
  // Random, so a library cannot predict the id of a request it has not
  // seen (and forge its reply in advance); never 0 (the Hello's).
  uint64_t id = 0;
  while (id == 0 || id == last_request_id_) {
    if (::getrandom(&id, sizeof id, 0) != sizeof id) id = last_request_id_ * 6364136223846793005u + 1;
  }
  last_request_id_ = id;
  return id;
}

bool WorkerProcess::ReapOnce(bool block, int* wstatus, bool* waited) {
  absl::MutexLock lock(&reap_mu_);
  while (!reaped_) {
    siginfo_t info = {};
    int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info,
                      WEXITED | (block ? 0 : WNOHANG));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0 && info.si_pid == 0) return false;  // still running (WNOHANG)
    reaped_ = true;
    waited_ = rc == 0;
    // Reaped (or, if waitid failed, not our child any more): the uid is free.
    uid_lease_.Release();
    if (info.si_code == CLD_EXITED) {
      wstatus_ = (info.si_status & 0xff) << 8;
    } else {
      wstatus_ = info.si_status & 0x7f;  // killed or dumped: the signal
    }
  }
  *wstatus = wstatus_;
  *waited = waited_;
  return true;
}

void WorkerProcess::ConfirmFatal(bool reaped, int wstatus) {
  std::optional<worker::v1::Fatal> fatal;
  {
    absl::MutexLock lock(&mu_);
    fatal.swap(fatal_);
  }
  if (!fatal.has_value()) return;
  if (KernelAgrees(*fatal, reaped, wstatus)) {
    RecordFatal(*fatal);
    return;
  }
  RecordContradictedFatal(*fatal, reaped ? DescribeEnd(true, wstatus) : "was still running");
}

void WorkerProcess::RecordContradictedFatal(const worker::v1::Fatal& fatal,
                                            absl::string_view how_it_ended) {
  Record(WorkerOutcome::Kind::kProtocolViolation, 0,
         absl::StrCat("broke the worker protocol: it sent a fatal report (signal ", fatal.signal(),
                      fatal.signal() == SIGSYS ? absl::StrCat(", syscall #", fatal.syscall()) : "",
                      ") that the kernel contradicts: the worker ", how_it_ended));
}

std::string WorkerProcess::DrainIdleChannel() {
  std::string unsolicited;
  // Bounded: a worker cannot keep us here by writing as fast as we read.
  for (int packets = 0; packets < 64; ++packets) {
    worker::v1::WorkerToDaemon packet;
    absl::StatusOr<bool> read = channel_->ReceiveWaiting(&packet);
    if (read.ok() && !*read) break;  // nothing (more) waiting
    if (read.ok() && packet.has_fatal()) {
      absl::MutexLock lock(&mu_);
      if (!fatal_.has_value()) fatal_ = packet.fatal();
      continue;
    }
    // Anything else, even an empty packet or a fragment never completed,
    // is a packet nobody asked for.
    if (unsolicited.empty()) {
      unsolicited = read.ok()
                        ? absl::StrCat("sent a packet (a reply to request ", packet.request_id(),
                                       ") while no request was outstanding")
                        : absl::StrCat("sent a packet while no request was outstanding (",
                                       read.status().message(), ")");
    }
    if (!read.ok() && !absl::IsDataLoss(read.status())) break;  // the daemon's side failed
  }
  return unsolicited;
}

bool WorkerProcess::CheckIdle() {
  if (!alive()) return false;
  {
    ExchangeLock exchange(this);
    std::string unsolicited = DrainIdleChannel();
    int wstatus = 0;
    bool waited = false;
    bool ended = ReapOnce(/*block=*/false, &wstatus, &waited);
    bool fatal_reported;
    {
      absl::MutexLock lock(&mu_);
      fatal_reported = fatal_.has_value();
    }
    if (!unsolicited.empty()) {
      Record(WorkerOutcome::Kind::kProtocolViolation, 0,
             absl::StrCat("broke the worker protocol: ", unsolicited));
      KillAndReap();
    } else if (fatal_reported) {
      Reap(absl::Seconds(1));  // the reporter ends the worker right after reporting
    } else if (ended) {
      KillAndReap();  // records how it ended
    }
  }
  // Asked after letting go: an end the watcher handed over meanwhile has
  // been recorded by then.
  return alive();
}

void WorkerProcess::OnEnded() {
  int wstatus = 0;
  bool waited = false;
  // Announced before trying the lock: a holder checks it after letting go
  // (ExchangeLock), so either we get the lock or the holder sees the flag.
  end_pending_ = true;
  if (!exchange_mu_.TryLock()) {
    // The channel is in use: its holder runs OnEnded again when it lets go
    // (having explained the end itself, if it saw it). Reaping now keeps
    // the zombie's life short.
    ReapOnce(/*block=*/false, &wstatus, &waited);
    return;
  }
  end_pending_ = false;
  bool was_alive = alive();
  std::string unsolicited = DrainIdleChannel();
  if (!unsolicited.empty()) {
    Record(WorkerOutcome::Kind::kProtocolViolation, 0,
           absl::StrCat("broke the worker protocol: ", unsolicited));
  }
  KillAndReap();  // it has ended: reaps it without waiting, records how
  exchange_mu_.Unlock();
  if (was_alive) {
    LOG_WARNING("worker pid %d serving %s ended between calls: %s", pid_, label(),
                outcome().message);
  }
}

void WorkerProcess::Record(WorkerOutcome::Kind kind, int code,
                           std::string message) {
  absl::MutexLock lock(&mu_);
  if (outcome_.kind != WorkerOutcome::Kind::kRunning) return;
  outcome_ = WorkerOutcome{kind, code, std::move(message)};
  metrics::WorkerEnded(outcome_);
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
  absl::MutexLock exchange(&exchange_mu_);
  Record(WorkerOutcome::Kind::kProtocolViolation, 0,
         absl::StrCat("broke the worker protocol: ", why));
  KillAndReap();
}

void WorkerProcess::KillAndReap() {
  // ESRCH if already gone: fine. A pidfd never names a recycled pid.
  PidfdSendSignal(pidfd_.get(), SIGKILL);
  int wstatus = 0;
  bool waited = false;
  ReapOnce(/*block=*/true, &wstatus, &waited);
  // Reaped: every packet it sent is queued now. A Fatal report among them
  // explains the end even if no one was reading when it came (a failed
  // send skips the receive; an idle check drains before it reaps). Other
  // packets are late and moot: the worker is gone.
  DrainIdleChannel();
  ConfirmFatal(waited, wstatus);  // a pending Fatal report, believed or not
  if (!waited) {
    Record(WorkerOutcome::Kind::kExited, -1, "vanished (could not be reaped)");
  } else if (WIFEXITED(wstatus)) {
    Record(WorkerOutcome::Kind::kExited, WEXITSTATUS(wstatus),
           absl::StrCat("exited with status ", WEXITSTATUS(wstatus)));
  } else if (WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGSYS) {
    // Only seccomp sends SIGSYS (no profile lets a worker send signals but
    // SIGABRT to itself), for a forbidden call and for one of another
    // architecture alike. Unreported: the kernel killed the worker without
    // running its reporter, because SIGSYS was blocked when the call was
    // made (glibc's pthread_create blocks all signals around clone3) or the
    // library had damaged the reporter.
    // The kernel's audit record names the call (see kernel_audit.h); no
    // need to look when a report already explained the end.
    std::optional<SeccompAuditRecord> audit;
    if (alive()) audit = FindSeccompAuditRecord(pid_, AuditNotBefore());
    const char* why = "the worker's reporter did not run, SIGSYS was blocked when the call "
                      "was made";
    if (!audit.has_value()) {
      Record(WorkerOutcome::Kind::kViolation, -1,
             absl::StrCat("was stopped for a forbidden system call (which one is unknown: ", why,
                          ", and the kernel log holds no record of it: the kernel rate-limits "
                          "those)"));
    } else {
      int nr = static_cast<int>(audit->syscall);
      Record(WorkerOutcome::Kind::kViolation, nr,
             absl::StrCat("was stopped for ", TrappedCall(audit->arch, nr),
                          " (named by the kernel's audit record: ", why, ")"));
    }
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
  int ready;
  while ((ready = ::poll(&pfd, 1, ms)) < 0 && errno == EINTR) {
  }
  if (ready == 0) {
    // Still running: a Fatal report it sent is a lie (the reporter ends
    // the worker right after reporting).
    std::optional<worker::v1::Fatal> fatal;
    {
      absl::MutexLock lock(&mu_);
      fatal.swap(fatal_);
    }
    if (fatal.has_value()) {
      RecordContradictedFatal(
          *fatal, absl::StrCat("was still running ", absl::FormatDuration(grace), " later"));
    }
  }
  KillAndReap();
}

absl::StatusOr<worker::v1::WorkerToDaemon> WorkerProcess::Exchange(
    worker::v1::DaemonToWorker* request, absl::Time deadline) {
  ExchangeLock exchange(this);
  if (!alive()) {
    return absl::UnavailableError(absl::StrCat("worker ", outcome().message));
  }
  const uint64_t id = NextRequestId();
  request->set_request_id(id);
  absl::Status status = channel_->Send(*request, deadline);
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
  if (status.ok() && reply.has_fatal()) {
    {
      absl::MutexLock lock(&mu_);
      fatal_ = reply.fatal();
    }
    Reap(absl::Seconds(1));  // the reporter ends the worker right after reporting
    return OutcomeStatus();
  }
  if (status.ok() && reply.request_id() != id) {
    Record(WorkerOutcome::Kind::kProtocolViolation, 0,
           absl::StrCat("broke the worker protocol: a reply carried request id ",
                        reply.request_id(), ", the request outstanding was ", id));
    KillAndReap();
    return OutcomeStatus();
  }
  if (status.ok()) {
    if (reply_hook_for_testing_) reply_hook_for_testing_();
    return reply;
  }

  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:  // no reply, or not reading
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

uint64_t WorkerProcess::AuditNotBefore() const {
  return started_us_ > kAuditClockSlackUs ? started_us_ - kAuditClockSlackUs : 0;
}

void WorkerProcess::RecordFatal(const worker::v1::Fatal& fatal) {
  int sig = fatal.signal();
  if (fatal.thread_ended() && sig == 0) {
    Record(WorkerOutcome::Kind::kExited, 0,
           "ended: the library ended the worker's calling thread (pthread_exit) in the "
           "middle of the call");
    return;
  }
  if (sig <= 0 || sig >= NSIG) {
    Record(WorkerOutcome::Kind::kProtocolViolation, 0,
           absl::StrCat("broke the worker protocol: fatal report with signal ", sig));
    return;
  }
  constexpr int kSysSeccomp = 1;  // si_code of a seccomp SIGSYS
  if (sig == SIGSYS && fatal.si_code() == kSysSeccomp) {
    int nr = fatal.syscall();
    // The report is the worker's word: where the kernel logged the trap
    // (kernel_audit.h), its record must name the same call.
    std::optional<SeccompAuditRecord> audit = FindSeccompAuditRecord(pid_, AuditNotBefore());
    if (audit.has_value() && (audit->syscall != nr || audit->arch != fatal.arch())) {
      Record(WorkerOutcome::Kind::kProtocolViolation, 0,
             absl::StrCat("broke the worker protocol: its fatal report named system call #", nr,
                          ", the kernel's audit record of the trap #", audit->syscall));
      return;
    }
    Record(WorkerOutcome::Kind::kViolation, nr,
           absl::StrCat("was stopped for ", TrappedCall(fatal.arch(), nr)));
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
