#include "daemon/worker/fatal_reporter.h"

#include <signal.h>
#include <linux/audit.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <ucontext.h>

#include "common/transport.h"
#include "common/worker_protocol.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"

namespace ffibroker {
namespace {

// The handler reads no data a library could overwrite (it shares the
// worker's memory) and calls no function through the PLT (whose GOT entry a
// library could redirect to one that returns, turning the trapped syscall
// into a silent -ENOSYS): the channel is a constant and syscalls are made
// inline. A library can at worst damage the handler so that the kernel
// kills the worker without a report, never make a violation go unnoticed.
constexpr int kChannelFd = kWorkerChannelFd;

long RawSyscall(long nr, long a1, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                long a6 = 0) {
#if defined(__x86_64__)
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
#else
  return ::syscall(nr, a1, a2, a3, a4, a5, a6);
#endif
}

size_t PutVarint(char* p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  p[n++] = static_cast<char>(v);
  return n;
}

// Field `number` as a varint (proto3 int32/int64 use the 64-bit two's
// complement of negative values).
size_t PutField(char* p, int number, uint64_t value) {
  size_t n = PutVarint(p, static_cast<uint64_t>(number) << 3);
  return n + PutVarint(p + n, value);
}

void OnFatalSignal(int sig, siginfo_t* info, void* context) {
  int32_t nr = 0;
  uint32_t arch = 0;
  if (sig == SIGSYS) {
    nr = info->si_syscall;
    arch = info->si_arch;
  }
  struct rusage usage = {};
  RawSyscall(SYS_getrusage, RUSAGE_SELF, reinterpret_cast<long>(&usage));
  char buf[96];
  size_t len = EncodeFatal(buf, sig, nr, arch, usage.ru_maxrss, info->si_code);
  RawSyscall(SYS_sendto, kChannelFd, reinterpret_cast<long>(buf), static_cast<long>(len),
             MSG_NOSIGNAL);
  // End so that the kernel's wait status confirms the report (the daemon
  // believes it only then; see FatalEndsBySignal). SA_RESETHAND restored
  // the default action, and every signal is blocked while we run.
  if (FatalEndsBySignal(sig, info->si_code)) {
    if (sig == SIGSYS) {
      // The same call again: the filter traps it again, and a trapped
      // SIGSYS that is blocked kills the process. A call of another
      // architecture is made again through its own entry point.
      if (info->si_arch == AUDIT_ARCH_I386) {
        long i386_nr = info->si_syscall;
        __asm__ volatile("int $0x80" : "+a"(i386_nr) : : "memory");
      } else {
        const greg_t* regs = static_cast<ucontext_t*>(context)->uc_mcontext.gregs;
        RawSyscall(info->si_syscall, regs[REG_RDI], regs[REG_RSI], regs[REG_RDX],
                   regs[REG_R10], regs[REG_R8], regs[REG_R9]);
      }
    } else {
      return;  // into the faulting instruction again: it faults, and kills
    }
  }
  for (;;) RawSyscall(SYS_exit_group, 128 + sig);
}

}  // namespace

size_t EncodeFatal(char* buf, int32_t signal, int32_t syscall, uint32_t arch,
                   int64_t max_rss_kb, int32_t si_code) {
  char body[80];
  size_t n = 0;
  n += PutField(body + n, 1, static_cast<uint64_t>(static_cast<int64_t>(signal)));
  n += PutField(body + n, 2, static_cast<uint64_t>(static_cast<int64_t>(syscall)));
  n += PutField(body + n, 3, arch);
  n += PutField(body + n, 4, static_cast<uint64_t>(max_rss_kb));
  n += PutField(body + n, 5, static_cast<uint64_t>(static_cast<int64_t>(si_code)));
  // The transport's frame byte, then WorkerToDaemon.fatal: field 20,
  // length-delimited.
  buf[0] = kTransportFrameByte;
  size_t m = 1 + PutVarint(buf + 1, (20u << 3) | 2u);
  m += PutVarint(buf + m, n);
  for (size_t i = 0; i < n; ++i) buf[m + i] = body[i];
  return m + n;
}

absl::Status InstallFatalReporter(int channel_fd) {
  if (channel_fd != kChannelFd) {
    return absl::InvalidArgumentError("the fatal-signal reporter writes to the channel fd 3 only");
  }
  // A stack overflow must still be reportable: handlers run on their own stack.
  constexpr size_t kStack = 64 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (stack == MAP_FAILED) return ErrnoStatus("mmap of the signal stack", errno);
  stack_t ss = {};
  ss.ss_sp = stack;
  ss.ss_size = kStack;
  if (::sigaltstack(&ss, nullptr) != 0) return ErrnoStatus("sigaltstack", errno);
  struct sigaction action = {};
  action.sa_sigaction = OnFatalSignal;
  // SA_RESETHAND: a fault inside the handler kills the worker outright.
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigfillset(&action.sa_mask);
  for (int sig : kReportedSignals) {
    if (::sigaction(sig, &action, nullptr) != 0) return ErrnoStatus("sigaction", errno);
  }
  return absl::OkStatus();
}

}  // namespace ffibroker
