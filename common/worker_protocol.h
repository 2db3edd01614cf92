// Constants of the internal daemon<->worker protocol (see
// proto/ffibroker/worker/v1/worker.proto for the messages and their order).
#ifndef FFIBROKER_COMMON_WORKER_PROTOCOL_H_
#define FFIBROKER_COMMON_WORKER_PROTOCOL_H_

#include <linux/seccomp.h>
#include <signal.h>

namespace ffibroker {

// Bumped whenever the meaning of a worker message changes. The daemon
// refuses a worker whose Hello carries another version.
// 5: pipelining, batches; 6: callbacks (closures, invocations, answers,
// nested requests, releases); 7: the shared-memory channel (--ring-fd,
// rings, markers and wake-up packets: docs/worker-protocol.md).
inline constexpr unsigned kWorkerProtocolVersion = 7;

// The flags the worker installs its profile's seccomp filter with: on every
// thread (TSYNC), and with every trap also written to the kernel's audit log
// (LOG), which is how the daemon names a forbidden call the worker's
// reporter could not report (daemon/kernel_audit.h). The loading filter
// allows these flags for that install.
inline constexpr unsigned kSeccompInstallFlags = SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG;

// The descriptor number of the channel in the worker process.
inline constexpr int kWorkerChannelFd = 3;
// Where a worker started with --ring-fd finds its channel's shared memory
// (common/shm_ring.h); it maps it and closes the descriptor at once.
inline constexpr int kWorkerRingFd = 4;

// How the worker's fatal-signal reporter ends after sending its Fatal
// report, which is how the daemon checks the report against the kernel's
// wait status. True: it dies by `signal` itself (for a seccomp SIGSYS it
// re-makes the forbidden system call with SIGSYS blocked, so the kernel
// kills it; for a fault the kernel raised it returns into the faulting
// instruction with the default action restored). False: it exits with
// status 128 + signal.
inline bool FatalEndsBySignal(int signal, int si_code) {
  constexpr int kSysSeccomp = 1;  // si_code of a seccomp SIGSYS
  if (signal == SIGSYS) return si_code == kSysSeccomp;
  if (signal == SIGSEGV || signal == SIGBUS || signal == SIGILL || signal == SIGFPE) {
    return si_code > 0;  // raised by the kernel for an instruction, not sent
  }
  return false;
}

}  // namespace ffibroker

#endif  // FFIBROKER_COMMON_WORKER_PROTOCOL_H_
