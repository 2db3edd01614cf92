// The kernel's own record of a seccomp action, read back from the kernel
// log, for the one case the worker's reporter cannot describe: a forbidden
// system call made while the library had SIGSYS blocked, which the kernel
// answers by killing the worker without running any handler.
//
// Workers install their filters with SECCOMP_FILTER_FLAG_LOG, so every trap
// is also written to the kernel log as an audit record (type=1326) naming
// the process, the architecture and the system call number. The daemon,
// which has read access to /dev/kmsg when it runs as root, looks that record
// up after such a death. Only kernel-facility records count (a user space
// write to /dev/kmsg has another facility), only those of a trap or a kill
// (not the answers of fail_with_errno rules, which are logged too), and only
// those written after the worker started, so a recycled pid cannot be blamed
// for an older record.
// The kernel rate-limits these records: a missing record leaves the syscall
// unnamed, never misnamed.
//
// Thread-safety: the functions are thread-safe (no shared state).
//
//   std::optional<SeccompAuditRecord> r = FindSeccompAuditRecord(pid, started_us);
//   if (r) Describe(r->arch, r->syscall);
#ifndef FFIBROKER_DAEMON_KERNEL_AUDIT_H_
#define FFIBROKER_DAEMON_KERNEL_AUDIT_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace ffibroker {

struct SeccompAuditRecord {
  uint32_t arch = 0;     // AUDIT_ARCH_* of the call
  int64_t syscall = -1;  // its number (x32 numbers include __X32_SYSCALL_BIT)
};

// Microseconds since boot on the clock the kernel log stamps its records
// with (CLOCK_MONOTONIC), for FindSeccompAuditRecord's `not_before_us`.
uint64_t KernelLogClockMicros();

// The newest seccomp audit record of process `pid` (a pid in the daemon's
// pid namespace) stamped at or after `not_before_us`; nullopt if there is
// none or the kernel log cannot be read (not root, no /dev/kmsg).
std::optional<SeccompAuditRecord> FindSeccompAuditRecord(pid_t pid, uint64_t not_before_us);

// Parses one /dev/kmsg record ("PRIO,SEQ,USEC,FLAGS;MESSAGE"): the seccomp
// audit record of `pid` stamped at or after `not_before_us`, else nullopt.
std::optional<SeccompAuditRecord> ParseSeccompAuditRecord(absl::string_view record, pid_t pid,
                                                          uint64_t not_before_us);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_KERNEL_AUDIT_H_
