// Profile rules that would let a library defeat the daemon's own guarantees.
//
// A confinement profile says what a library may do; it must never let the
// library change how the worker reports what it did. The worker's reporter
// (daemon/worker/fatal_reporter.h) is a handler, on its own stack, for the
// signals that end a worker; it is what turns a forbidden syscall into
// "forbidden system call NAME (#N)" and a crash into "killed by signal S".
// A rule is refused when, as written, it would allow (no argument
// condition excludes it):
//   - rt_sigaction (sigaction, signal) on one of the reporter's signals:
//     the library's own handler would make forbidden syscalls silent
//     no-ops (seccomp's trap returns -ENOSYS once a handler returns) and
//     crashes hangs;
//   - sigaltstack with a new stack: the reporter would run on the library's;
//   - seccomp: a filter of the library's own, e.g. one that kills the
//     worker before its report can be sent;
//   - prctl PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_SECCOMP, PR_SET_MM,
//     PR_SET_PTRACER, PR_SET_SYSCALL_USER_DISPATCH: leaving the daemon's
//     death behind, opening the worker to tracing, another filter, rewriting
//     the memory map, redirecting syscalls past seccomp's view;
//   - ptrace, process_vm_writev: one process of the worker rewriting
//     another's memory and registers (its reporter, its channel);
//   - execve, execveat: a new program image without the reporter.
// fail_with_errno rules are never refused (the call does not happen).
//
// Stateless; thread-safe.
//
//   RETURN_IF_ERROR(CheckProfileKeepsGuarantees(file, profile, tree));
#ifndef FFIBROKER_DAEMON_PROFILE_GUARD_H_
#define FFIBROKER_DAEMON_PROFILE_GUARD_H_

#include <string>

#include "absl/status/status.h"
#include "ffibroker/v1/confinement.pb.h"
#include "google/protobuf/text_format.h"

namespace ffibroker {

// OK, or INVALID_ARGUMENT "FILE:LINE:COLUMN: '<syscall>' ... <reason>" for
// the first rule of `profile` (parsed from `file`, locations in `tree`)
// that would let a library defeat a guarantee.
absl::Status CheckProfileKeepsGuarantees(const std::string& file,
                                         const v1::ConfinementProfile& profile,
                                         const google::protobuf::TextFormat::ParseInfoTree& tree);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_PROFILE_GUARD_H_
