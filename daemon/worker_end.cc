// WorkerProcess (worker_process.h): how a worker's end is understood and
// recorded: reaping, the kernel's word against the worker's Fatal report,
// kills and protocol violations, and the status its requests fail with.
#include <cctype>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/log.h"
#include "common/worker_protocol.h"
#include "daemon/kernel_audit.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "daemon/worker_process.h"
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

void WorkerProcess::Record(WorkerOutcome::Kind kind, int code, std::string message,
                           const char* reason) {
  absl::MutexLock lock(&mu_);
  if (outcome_.kind != WorkerOutcome::Kind::kRunning) return;
  outcome_ = WorkerOutcome{kind, code, std::move(message), reason};
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

bool WorkerProcess::TakesRequests() const {
  absl::MutexLock lock(&mu_);
  return !end_handled_;
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

void WorkerProcess::KillAndReap(Completions* out, bool owner_stops) {
  // Still running when its owner lets it go: stopped by the daemon, not
  // crashed (a failed open's worker, the status probe's).
  int wstatus = 0;
  bool waited = false;
  owner_stops = owner_stops && !ReapOnce(/*block=*/false, &wstatus, &waited);
  // ESRCH if already gone: fine. A pidfd never names a recycled pid.
  PidfdSendSignal(pidfd_.get(), SIGKILL);
  ReapOnce(/*block=*/true, &wstatus, &waited);
  // Reaped: every packet it sent is queued now. Replies complete their
  // requests; a Fatal report among them explains the end (and wins over
  // the owner's stop: it came first).
  if (!channel_closed_) ReadChannel(/*ended=*/true, out);
  ConfirmFatal(waited, wstatus);  // a pending Fatal report, believed or not
  if (owner_stops) Record(WorkerOutcome::Kind::kStopped, SIGKILL, "stopped by the daemon");
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
           "middle of the call",
           "WORKER_THREAD_ENDED");
    return;
  }
  if (fatal.callback_released() != 0 && sig == 0) {
    Record(WorkerOutcome::Kind::kExited, 0,
           "ended: the library called a callback after it was released (a per-call "
           "callback after its call returned, or a persistent one after ReleaseCallback)",
           "CALLBACK_RELEASED");
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
  // The report's peak is the worker's own only above what it inherited
  // from the daemon (inherited_rss_kb_); at or below it, it says nothing.
  const uint64_t peak_kb = fatal.max_rss_kb() > 0 ? static_cast<uint64_t>(fatal.max_rss_kb()) : 0;
  const uint64_t peak = peak_kb > inherited_rss_kb_ ? peak_kb * 1024 : 0;
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
    case WorkerOutcome::Kind::kExited:
      if (end.reason != nullptr) return WithReason(absl::UnavailableError(message), end.reason);
      return WithReason(absl::UnavailableError(message), "WORKER_EXITED", {{"exit_status", absl::StrCat(end.code)}});
    case WorkerOutcome::Kind::kProtocolViolation: return WithReason(absl::UnavailableError(message), "WORKER_PROTOCOL_VIOLATION");
    default: return WithReason(absl::UnavailableError(message), "WORKER_STOPPED");
  }
}

}  // namespace ffibroker
