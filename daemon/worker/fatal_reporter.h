// The worker's fatal-signal reporter.
//
// Installs handlers, on an alternate stack, for the signals that end a
// worker (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP,
// SIGXCPU, SIGXFSZ). Each handler sends one worker::v1::Fatal message on
// the channel — hand-encoded, no allocation — naming the signal and, for a
// seccomp SIGSYS, the refused syscall, then ends the worker in a way the
// kernel's wait status confirms (FatalEndsBySignal in
// common/worker_protocol.h): a seccomp SIGSYS re-makes the same call, which
// the filter traps again with SIGSYS blocked, so the kernel kills the
// worker by SIGSYS; a fault the kernel raised returns into the faulting
// instruction with the default action restored, so it dies by that signal;
// other signals exit with status 128 + signal. The daemon validates the
// message like any other worker output and believes it only if the wait
// status agrees.
//
// Why not just let the signal kill us: a worker that is pid 1 of its own
// pid namespace ignores signals it sends itself (abort() would not stop
// it), and seccomp's trap is the only way the daemon learns the syscall.
// (Signals the kernel forces, as above, kill even a namespace's pid 1.)
#ifndef FFIBROKER_DAEMON_WORKER_FATAL_REPORTER_H_
#define FFIBROKER_DAEMON_WORKER_FATAL_REPORTER_H_

#include <signal.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"

namespace ffibroker {

// The signals the reporter handles. A profile may not let a library change
// their handlers (daemon/profile_guard.h).
inline constexpr int kReportedSignals[] = {SIGSEGV, SIGBUS,  SIGILL,  SIGFPE, SIGABRT,
                                           SIGSYS,  SIGTRAP, SIGXCPU, SIGXFSZ};

// Installs the handlers; `channel_fd` is where reports go and must be
// kWorkerChannelFd (the handler uses the constant). Call before
// seccomp (which forbids sigaction and sigaltstack afterwards).
absl::Status InstallFatalReporter(int channel_fd);

// Encodes a channel packet (frame byte, then WorkerToDaemon{fatal: {signal,
// syscall, arch, max_rss_kb, si_code}}) into `buf` (at least 64 bytes);
// returns the length.
// Async-signal-safe; exposed for tests.
size_t EncodeFatal(char* buf, int32_t signal, int32_t syscall, uint32_t arch,
                   int64_t max_rss_kb, int32_t si_code);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_FATAL_REPORTER_H_
