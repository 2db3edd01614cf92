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
#include "absl/synchronization/notification.h"
#include "common/error_reason.h"
#include "common/log.h"
#include "common/log_event.h"
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

void WorkerProcess::RunAll(Completions completions) {
  for (Completion& c : completions) c.done(std::move(c.result));
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Spawn(
    SandboxPlan plan, absl::Time deadline, SandboxError* error,
    worker::v1::Hello* hello_out, WorkerWatcher* watcher) {
  if (watcher == nullptr) return absl::InternalError("a worker needs a watcher");
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
  // Declared before the worker: its destructor may complete the handshake.
  absl::Notification answered;
  absl::StatusOr<worker::v1::WorkerToDaemon> hello = absl::UnknownError("no hello");
  std::unique_ptr<WorkerProcess> worker(
      new WorkerProcess(child->pid, std::move(child->pidfd), std::move(ours)));
  worker->uid_ = child->uid;
  worker->uid_in_namespace_ = child->uid_in_namespace;
  {
    // The Hello is the answer to request 0, which no other request has.
    absl::MutexLock lock(&worker->mu_);
    worker->pending_.emplace(
        0, Pending{deadline, [&](absl::StatusOr<worker::v1::WorkerToDaemon> reply) {
                     hello = std::move(reply);
                     answered.Notify();
                   }});
  }
  worker->watcher_ = watcher;
  // From here on shutdown can see (and kill) the worker, even while it is
  // still starting or loading its library.
  absl::Status watched = watcher->Watch(worker.get());
  if (!watched.ok()) {
    worker->watcher_ = nullptr;
    worker.reset();  // kills it; fails the handshake
    return absl::UnavailableError(absl::StrCat("cannot start worker: ", watched.message()));
  }
  watcher->DeadlineAdded(deadline);
  answered.WaitForNotification();
  if (!hello.ok()) {
    return absl::UnavailableError(
        absl::StrCat("worker failed to start: ", worker->outcome().message));
  }
  if (!hello->has_hello() || hello->hello().protocol_version() != kWorkerProtocolVersion) {
    std::string why =
        hello->has_hello()
            ? absl::StrCat("speaks worker protocol v", hello->hello().protocol_version(),
                           ", the daemon needs v", kWorkerProtocolVersion)
            : "did not start with a hello";
    worker->Abandon(why);
    return absl::UnavailableError(absl::StrCat("worker failed to start: ", why));
  }
  *hello_out = hello->hello();
  return worker;
}

WorkerProcess::~WorkerProcess() {
  // Once forgotten, the watcher no longer reads the channel: we do.
  if (watcher_ != nullptr) watcher_->Forget(this);
  Completions out;
  {
    absl::MutexLock read(&read_mu_);
    KillAndReap(&out);
  }
  FailOutstanding(&out);
  RunAll(std::move(out));
}

void WorkerProcess::set_label(std::string label) {
  absl::MutexLock lock(&mu_);
  label_ = std::move(label);
}

std::string WorkerProcess::label() const {
  absl::MutexLock lock(&mu_);
  return label_;
}

int WorkerProcess::outstanding() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(pending_.size());
}

void WorkerProcess::Submit(worker::v1::DaemonToWorker* request, absl::Time deadline,
                           ReplyCallback done) {
  uint64_t id = 0;
  bool dead;
  absl::Status sent;
  {
    // Held from taking the id to the end of the send, so requests are
    // sent in the order of their sequence numbers.
    absl::MutexLock send(&send_mu_);
    {
      absl::MutexLock lock(&mu_);
      dead = outcome_.kind != WorkerOutcome::Kind::kRunning || end_handled_;
      if (!dead) {
        id = NextRequestId();
        pending_.emplace(id, Pending{deadline, std::move(done), next_sequence_++});
      }
    }
    if (!dead) {
      request->set_request_id(id);
      watcher_->DeadlineAdded(deadline);
      sent = channel_->Send(*request, deadline);
    }
  }
  if (dead) {
    done(OutcomeStatus());
    return;
  }
  if (sent.ok() || absl::IsUnavailable(sent)) return;  // gone: its end fails the request
  if (absl::IsResourceExhausted(sent)) {
    // Nothing was sent: the worker is unharmed, only this request fails.
    ReplyCallback callback;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return;  // already failed by the worker's end
      callback = std::move(it->second.done);
      pending_.erase(it);
    }
    callback(sent);
    return;
  }
  // The daemon's side failed (see Transport::Send); part of the request
  // may be on the channel, so the worker cannot be trusted to read on.
  if (absl::IsDeadlineExceeded(sent)) {
    Record(WorkerOutcome::Kind::kTimedOut, SIGKILL,
           absl::StrCat("killed because it did not take a request: ", sent.message()));
  } else {
    Record(WorkerOutcome::Kind::kStopped, SIGKILL,
           absl::StrCat("stopped because the daemon failed to send it a request: ",
                        sent.message()));
  }
  SignalKill();
}

absl::StatusOr<worker::v1::WorkerToDaemon> WorkerProcess::Exchange(
    worker::v1::DaemonToWorker* request, absl::Time deadline) {
  absl::Notification answered;
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = absl::UnknownError("no reply");
  Submit(request, deadline, [&](absl::StatusOr<worker::v1::WorkerToDaemon> r) {
    reply = std::move(r);
    answered.Notify();
  });
  answered.WaitForNotification();
  return reply;
}

absl::Time WorkerProcess::NextDeadline() const {
  absl::MutexLock lock(&mu_);
  if (outcome_.kind != WorkerOutcome::Kind::kRunning) return absl::InfiniteFuture();
  absl::Time next = fatal_grace_;
  for (const auto& [id, pending] : pending_) next = std::min(next, pending.deadline);
  return next;
}

void WorkerProcess::OnDeadline(absl::Time now) {
  std::optional<worker::v1::Fatal> lie;
  bool expired = false;
  bool hello = false;
  {
    absl::MutexLock lock(&mu_);
    if (outcome_.kind != WorkerOutcome::Kind::kRunning) return;
    for (const auto& [id, pending] : pending_) {
      if (pending.deadline <= now) {
        expired = true;
        hello = hello || id == 0;
      }
    }
    if (fatal_.has_value() && fatal_grace_ <= now) {
      lie.swap(fatal_);
      fatal_grace_ = absl::InfiniteFuture();
    }
  }
  if (lie.has_value()) {
    // The reporter ends the worker right after reporting: it lied.
    RecordContradictedFatal(*lie, "was still running a second later");
  }
  if (expired) {
    Record(WorkerOutcome::Kind::kTimedOut, SIGKILL,
           hello ? "did not say hello in time" : "killed because the call's deadline passed");
  }
  if (lie.has_value() || expired) SignalKill();
}

WorkerProcess::Completions WorkerProcess::OnReadable() {
  Completions out;
  absl::MutexLock read(&read_mu_);
  if (!channel_closed_) ReadChannel(/*ended=*/false, &out);
  return out;
}

WorkerProcess::Completions WorkerProcess::OnEnded() {
  Completions out;
  {
    absl::MutexLock read(&read_mu_);
    KillAndReap(&out);  // it has ended: reads what it sent, reaps, records how
  }
  bool stopped;
  int outstanding;
  {
    absl::MutexLock lock(&mu_);
    if (end_handled_) return out;
    end_handled_ = true;
    stopped = outcome_.kind == WorkerOutcome::Kind::kStopped;
    outstanding = static_cast<int>(pending_.size());
  }
  if (!stopped) {
    const WorkerOutcome ended = outcome();
    LogFields fields;
    fields.Event("worker_ended").WorkerPid(pid_);
    if (ended.kind == WorkerOutcome::Kind::kSignaled) {
      const char* abbrev = ::sigabbrev_np(ended.code);
      fields.Signal(abbrev ? absl::StrCat("SIG", abbrev) : absl::StrCat(ended.code));
    } else if (ended.kind == WorkerOutcome::Kind::kViolation && ended.code >= 0) {
      fields.Syscall(SyscallName(ended.code));
    }
    LOG_EVENT(LogLevel::kWarning, fields, "worker pid %d serving %s ended %s: %s", pid_, label(),
              outstanding == 0 ? "between calls"
                               : absl::StrCat("with ", outstanding, " requests outstanding"),
              ended.message);
  }
  FailOutstanding(&out);
  return out;
}

void WorkerProcess::FailOutstanding(Completions* out) {
  std::map<uint64_t, Pending> pending;
  {
    absl::MutexLock lock(&mu_);
    pending.swap(pending_);
    end_handled_ = true;
  }
  if (pending.empty()) return;
  absl::Status status = OutcomeStatus();
  uint64_t oldest = UINT64_MAX;
  for (const auto& [id, p] : pending) oldest = std::min(oldest, p.sequence);
  absl::Status not_started = WithReason(
      absl::UnavailableError(absl::StrCat("the worker ", outcome().message,
                                          " while running an earlier request, before starting "
                                          "this one")),
      kNotStartedReason);
  for (auto& [id, p] : pending) {
    out->push_back(Completion{std::move(p.done), p.sequence == oldest ? status : not_started});
  }
}

void WorkerProcess::ReadChannel(bool ended, Completions* out) {
  // Bounded while the worker runs: a worker cannot keep the watcher here by
  // writing as fast as it reads (epoll reports the rest again). Once it has
  // ended, what is queued is finite.
  for (int messages = 0; ended || messages < 64; ++messages) {
    worker::v1::WorkerToDaemon message;
    absl::StatusOr<Transport::Available> read = channel_->ReceiveAvailable(&message);
    if (!read.ok()) {
      if (absl::IsDataLoss(read.status())) {
        Violation(absl::StrCat("sent a packet that is no message (", read.status().message(),
                               ")"));
      }
      channel_closed_ = true;  // nothing after it can be trusted
      return;
    }
    if (*read == Transport::Available::kNothing) return;
    if (*read == Transport::Available::kClosed) {
      channel_closed_ = true;
      return;
    }
    if (message.has_fatal()) {
      absl::MutexLock lock(&mu_);
      if (!fatal_.has_value()) {
        fatal_ = message.fatal();
        // The reporter ends the worker right after reporting.
        fatal_grace_ = absl::Now() + absl::Seconds(1);
        watcher_->DeadlineAdded(fatal_grace_);
      }
      continue;
    }
    ReplyCallback done;
    bool dying = false;
    {
      absl::MutexLock lock(&mu_);
      // After a Fatal report the worker must end, not answer: its requests
      // wait for that end (or for the report to be found a lie).
      dying = fatal_.has_value();
      auto it = pending_.find(message.request_id());
      if (!dying && it != pending_.end() && outcome_.kind == WorkerOutcome::Kind::kRunning) {
        done = std::move(it->second.done);
        pending_.erase(it);
      }
    }
    if (dying) continue;
    if (!done) {
      if (alive()) {
        Violation(absl::StrCat("a reply carried request id ", message.request_id(),
                               ", which is not outstanding"));
      }
      channel_closed_ = true;
      return;
    }
    if (reply_hook_for_testing_) reply_hook_for_testing_();
    out->push_back(Completion{std::move(done), std::move(message)});
  }
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

void WorkerProcess::SignalKill() {
  // ESRCH if already gone: fine. A pidfd never names a recycled pid.
  PidfdSendSignal(pidfd_.get(), SIGKILL);
}

void WorkerProcess::Kill() {
  Record(WorkerOutcome::Kind::kStopped, SIGKILL, "stopped by the daemon");
  SignalKill();
}

void WorkerProcess::Violation(absl::string_view what) {
  Record(WorkerOutcome::Kind::kProtocolViolation, 0,
         absl::StrCat("broke the worker protocol: ", what));
  SignalKill();
}

void WorkerProcess::Abandon(const std::string& why) { Violation(why); }

void WorkerProcess::KillAndReap(Completions* out) {
  // ESRCH if already gone: fine. A pidfd never names a recycled pid.
  PidfdSendSignal(pidfd_.get(), SIGKILL);
  int wstatus = 0;
  bool waited = false;
  ReapOnce(/*block=*/true, &wstatus, &waited);
  // Reaped: every packet it sent is queued now. Replies complete their
  // requests; a Fatal report among them explains the end.
  if (!channel_closed_) ReadChannel(/*ended=*/true, out);
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
    case WorkerOutcome::Kind::kViolation: return WithReason(absl::PermissionDeniedError(message), "SYSCALL_FORBIDDEN", {{"syscall", absl::StrCat(end.code)}});
    case WorkerOutcome::Kind::kResourceLimit: return WithReason(absl::ResourceExhaustedError(message), "WORKER_RESOURCE_LIMIT", {{"signal", absl::StrCat(end.code)}});
    case WorkerOutcome::Kind::kTimedOut: return WithReason(absl::DeadlineExceededError(message), "WORKER_DEADLINE_EXCEEDED");
    case WorkerOutcome::Kind::kSignaled: return WithReason(absl::UnavailableError(message), "WORKER_CRASHED", {{"signal", absl::StrCat(end.code)}});
    case WorkerOutcome::Kind::kExited: return WithReason(absl::UnavailableError(message), "WORKER_EXITED", {{"exit_status", absl::StrCat(end.code)}});
    case WorkerOutcome::Kind::kProtocolViolation: return WithReason(absl::UnavailableError(message), "WORKER_PROTOCOL_VIOLATION");
    default: return WithReason(absl::UnavailableError(message), "WORKER_STOPPED");
  }
}

}  // namespace ffibroker
