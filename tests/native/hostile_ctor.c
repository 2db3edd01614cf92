/* Hostile library constructors, which run inside dlopen, before the
 * profile's seccomp filter can be installed. Built twice (see
 * tests/CMakeLists.txt): HOSTILE_CTOR_SOCKET tries a syscall the loading
 * filter forbids; HOSTILE_CTOR_FILTER installs a seccomp filter of its own
 * (allowed: it is how the worker installs the profile's), which the daemon
 * must notice. HOSTILE_CTOR_SLEEP never returns from its constructor: the
 * open must still end at the policy's limits.max_open_millis. */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((constructor)) static void misbehave(void) {
#if defined(HOSTILE_CTOR_SOCKET)
  syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
#elif defined(HOSTILE_CTOR_SLEEP)
  for (;;) {
    struct timespec hour = {3600, 0};
    nanosleep(&hour, 0);
  }
#elif defined(HOSTILE_CTOR_FILTER)
  struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  struct sock_fprog program = {1, &allow};
  syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program);
#endif
}

int32_t healthy(int32_t v) { return v + 1; }
