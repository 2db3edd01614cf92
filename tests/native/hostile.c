/* A hostile library: every function misbehaves in one way a library we do
 * not trust might. Each is called through ffibrokerd by
 * tests/integration/confinement_test.cc, whose table (and docs/confinement.md)
 * gives the outcome the daemon must report. Every function is declared
 * `i32 NAME()` and returns a value only if the daemon failed to stop it
 * (the tests then fail on the unexpected success).
 *
 * Raw syscall() is used where glibc might refuse or emulate the call before
 * the kernel sees it: the point is the system call reaching seccomp. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

enum { kChannelFd = 3 };

/* A well-behaved function: the next call after a hostile one must work. */
int32_t healthy(int32_t v) { return v + 1; }

/* --- Crashes. ----------------------------------------------------------- */

int32_t h_segfault(void) {
  volatile int32_t* p = (volatile int32_t*)16;
  return *p;
}

int32_t h_abort(void) {
  abort();
}

/* Deep enough to overflow any stack; the bound only keeps the compiler
 * from seeing an infinite recursion. */
static int32_t recurse(volatile char* previous, uint64_t depth) {
  volatile char frame[4096];
  frame[0] = previous != 0 ? previous[0] : 1;
  if (depth == 0) return frame[0];
  return recurse(frame, depth - 1) + frame[4095];
}
int32_t h_stack_overflow(void) { return recurse(0, UINT64_MAX); }

int32_t h_write_read_only(void) {
  static const char text[] = "constant";
  *(volatile char*)text = 'X';
  return 0;
}

int32_t h_divide_by_zero(void) {
  volatile int32_t seven = 7, zero = 0;
  return seven / zero;
}

int32_t h_illegal_instruction(void) {
  __asm__ volatile("ud2");
  return 0;
}

/* --- Hangs. ------------------------------------------------------------- */

int32_t h_infinite_loop(void) {
  for (volatile uint64_t i = 0;; ++i) {
  }
}

int32_t h_loop_signals_blocked(void) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, 0);
  for (volatile uint64_t i = 0;; ++i) {
  }
}

/* --- Resources. --------------------------------------------------------- */

/* Allocates and touches memory until malloc fails, then uses the NULL it
 * got (as careless code does). */
int32_t h_malloc_bomb(void) {
  for (;;) {
    // volatile: else clang drops the unused allocation and the loop spins.
    char* volatile p = malloc(1 << 20);
    memset(p, 1, 1 << 20);
  }
}

int32_t h_fork_bomb(void) {
  for (int i = 0; i < 64; ++i) {
    if (fork() == 0) {
      for (;;) fork();
    }
  }
  return 0;
}

static void* answer(void* arg) {
  *(int32_t*)arg = 42;
  return 0;
}

/* 42 where threads are allowed. */
int32_t h_thread(void) {
  pthread_t t;
  int32_t result = 0;
  int rc = pthread_create(&t, 0, answer, &result);
  if (rc != 0) return -rc;
  pthread_join(t, 0);
  return result;
}

/* --- Escapes. ----------------------------------------------------------- */

int32_t h_execve_shell(void) {
  char* argv[] = {"/bin/sh", "-c", "echo escaped > /tmp/ffibroker-hostile", 0};
  char* envp[] = {0};
  execve("/bin/sh", argv, envp);
  return -errno;
}

int32_t h_connect_loopback(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -errno;
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_port = htons(22);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return connect(fd, (struct sockaddr*)&addr, sizeof addr) == 0 ? 0 : -errno;
}

/* Returns the bytes read, or -errno: under files-readonly the file is not
 * in the worker's root. */
int32_t h_read_passwd(void) {
  int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  char buf[256];
  ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  return (int32_t)n;
}

int32_t h_create_file(void) {
  int fd = open("/tmp/ffibroker-hostile-file", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  return fd < 0 ? -errno : 0;
}

int32_t h_ptrace(void) { return (int32_t)syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0); }

int32_t h_kill_parent(void) { return kill(getppid(), SIGKILL); }

int32_t h_kill_everyone(void) { return kill(-1, SIGKILL); }

int32_t h_mmap_wx(void) {
  void* p = mmap(0, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? -errno : 0;
}

int32_t h_mprotect_exec(void) {
  void* p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return -errno;
  return mprotect(p, 4096, PROT_READ | PROT_EXEC) == 0 ? 0 : -errno;
}

int32_t h_setuid_root(void) { return (int32_t)syscall(SYS_setuid, 0); }

int32_t h_unshare(void) { return (int32_t)syscall(SYS_unshare, 0x10000000 /* CLONE_NEWUSER */); }

int32_t h_mount(void) { return (int32_t)syscall(SYS_mount, "none", "/", "tmpfs", 0, 0); }

int32_t h_bpf(void) { return (int32_t)syscall(SYS_bpf, 0, 0, 0); }

int32_t h_perf_event_open(void) { return (int32_t)syscall(SYS_perf_event_open, 0, 0, -1, -1, 0); }

int32_t h_io_uring_setup(void) { return (int32_t)syscall(SYS_io_uring_setup, 1, 0); }

int32_t h_userfaultfd(void) { return (int32_t)syscall(SYS_userfaultfd, 0); }

int32_t h_keyctl(void) { return (int32_t)syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0); }

int32_t h_prctl(void) { return (int32_t)syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0); }

int32_t h_chdir(void) { return (int32_t)syscall(SYS_chdir, "/"); }

/* --- The channel and the process itself. -------------------------------- */

/* The functions below that write on the channel's socket then hold their
 * reply back for a while: the reply travels through the channel's
 * shared-memory ring, which has no order with the socket (the daemon reads
 * the socket's packets when the ring is empty), and these tests are about
 * the packet, read while the call still runs. h_channel_garbage_and_return
 * replies at once. */
static void linger(void) {
  struct timespec delay = {3, 0};
  nanosleep(&delay, 0);
}

/* A packet that is not a worker message, sent where the reply should go. */
int32_t h_channel_garbage(void) {
  static const char garbage[] = "\xff\xfe garbage \x00\x01 not a WorkerToDaemon";
  send(kChannelFd, garbage, sizeof garbage, MSG_NOSIGNAL);
  linger();
  return 0;
}

/* The same garbage, and the reply at once. */
int32_t h_channel_garbage_and_return(void) {
  static const char garbage[] = "\xff\xfe garbage \x00\x01 not a WorkerToDaemon";
  send(kChannelFd, garbage, sizeof garbage, MSG_NOSIGNAL);
  return 5;
}

/* A forged reply: a well-formed frame with a wrong message kind. */
int32_t h_channel_forged_hello(void) {
  /* 'F', then WorkerToDaemon.hello (field 1, length 2) { protocol_version: 3 } */
  static const char forged[] = {'F', 0x0a, 0x02, 0x08, 0x03};
  send(kChannelFd, forged, sizeof forged, MSG_NOSIGNAL);
  linger();
  return 0;
}

int32_t h_close_channel(void) { return close(kChannelFd); }

int32_t h_exit_midcall(void) { exit(0); }

int32_t h_raise_sigstop(void) { return raise(SIGSTOP); }

/* --- Messages (issue 9, finding 18). ------------------------------------ */

/* A system call of another architecture: i386 getpid (#20) through the
 * 32-bit entry point. */
int32_t h_i386_syscall(void) {
  long ret = 20;
  __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
  return (int32_t)ret;
}

/* An x32 system call: getpid (#39) with __X32_SYSCALL_BIT. */
int32_t h_x32_syscall(void) { return (int32_t)syscall(0x40000000 | SYS_getpid); }

/* Ends the thread serving the call. */
int32_t h_pthread_exit(void) { pthread_exit(NULL); }

/* A forbidden call made while SIGSYS is blocked: the worker's reporter
 * cannot run. */
int32_t h_socket_sigsys_blocked(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGSYS);
  sigprocmask(SIG_BLOCK, &set, NULL);
  return (int32_t)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}

/* Replaces the worker's SIGSYS handler with one that returns, then makes a
 * forbidden call: that would turn it into a silent -ENOSYS. */
static void ignore_sigsys(int sig) { (void)sig; }
int32_t h_replace_sigsys_handler(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = ignore_sigsys;
  sigaction(SIGSYS, &action, NULL);
  return (int32_t)syscall(SYS_chroot, "/");
}

/* --- Lies on the channel (issue 9, finding 10). ------------------------- */

/* Queues an extra, well-formed reply before the worker's own: a Result
 * whose value is 7. Every request carries a fresh random id that the reply
 * must echo; a library has not seen the id of the request it runs in, so
 * it can only guess (here 1). The daemon must reject it as a protocol
 * violation instead of taking it as the answer (and then giving every later
 * call the previous call's answer). */
int32_t h_channel_extra_reply(void) {
  /* 'F', WorkerToDaemon { request_id (field 60, varint): 1,
   *                       result (field 3) { value (field 1): 07 00 00 00 } } */
  static const char extra[] = {'F', (char)0xe0, 0x03, 0x01, 0x1a, 0x06,
                               0x0a, 0x04, 0x07, 0x00, 0x00, 0x00};
  send(kChannelFd, extra, sizeof extra, MSG_NOSIGNAL);
  linger();
  return 0;
}

/* Forges the fatal-signal reporter's packet, naming a syscall it never
 * made (chroot, #161), and goes on living. The daemon must not believe a
 * Fatal the kernel does not confirm. */
static void forge_fatal(void) {
  /* 'F', WorkerToDaemon.fatal (field 20) { signal: 31 (SIGSYS),
   *                                        syscall: 161, si_code: 1 } */
  static const char forged[] = {'F', (char)0xa2, 0x01, 0x07, 0x08, 0x1f,
                                0x10, (char)0xa1, 0x01, 0x28, 0x01};
  send(kChannelFd, forged, sizeof forged, MSG_NOSIGNAL);
}

int32_t h_channel_forged_fatal(void) {
  forge_fatal();
  linger();
  return 0;
}

/* Forges a Fatal naming chroot (#161), then really makes another forbidden
 * call (socket) with SIGSYS blocked, so the kernel does kill it by SIGSYS:
 * the signal agrees with the report, the call does not. The daemon must
 * check the name against the kernel's audit record of the trap. */
int32_t h_channel_forged_fatal_then_socket(void) {
  forge_fatal();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGSYS);
  sigprocmask(SIG_BLOCK, &set, NULL);
  return (int32_t)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}

/* --- Death between calls (issue 9, finding 17). ------------------------- */

static void* crash_soon(void* unused) {
  (void)unused;
  struct timespec delay = {0, 100 * 1000 * 1000};
  nanosleep(&delay, 0);
  volatile int32_t* p = (volatile int32_t*)16;
  return (void*)(intptr_t)*p;
}

/* Returns at once; a thread it started segfaults ~100 ms later, while no
 * call is running (needs a profile with threads). */
int32_t h_crash_later(void) {
  pthread_t t;
  int rc = pthread_create(&t, 0, crash_soon, 0);
  if (rc != 0) return -rc;
  pthread_detach(t);
  return 0;
}
