#include "daemon/worker/fatal_reporter.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <ucontext.h>

#include "common/transport.h"
#include "common/unique_fd.h"
#include "common/worker_protocol.h"

namespace ffibroker {
namespace {

int g_channel_fd = -1;  // written once before the handlers are installed

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
  ::syscall(SYS_getrusage, RUSAGE_SELF, &usage);
  char buf[96];
  size_t len = EncodeFatal(buf, sig, nr, arch, usage.ru_maxrss, info->si_code);
  ::syscall(SYS_sendto, g_channel_fd, buf, len, MSG_NOSIGNAL, nullptr, 0);
  // End so that the kernel's wait status confirms the report (the daemon
  // believes it only then; see FatalEndsBySignal). SA_RESETHAND restored
  // the default action, and every signal is blocked while we run.
  if (FatalEndsBySignal(sig, info->si_code)) {
    if (sig == SIGSYS) {
      // The same call with the same arguments: the filter traps it again,
      // and a trapped SIGSYS that is blocked kills the process.
      const greg_t* regs = static_cast<ucontext_t*>(context)->uc_mcontext.gregs;
      ::syscall(info->si_syscall, regs[REG_RDI], regs[REG_RSI], regs[REG_RDX], regs[REG_R10],
                regs[REG_R8], regs[REG_R9]);
    } else {
      return;  // into the faulting instruction again: it faults, and kills
    }
  }
  ::syscall(SYS_exit_group, 128 + sig);
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
  g_channel_fd = channel_fd;
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
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP, SIGXCPU, SIGXFSZ}) {
    if (::sigaction(sig, &action, nullptr) != 0) return ErrnoStatus("sigaction", errno);
  }
  return absl::OkStatus();
}

}  // namespace ffibroker
