// The worker's self-confinement, applied in the order DESIGN.md gives.
//
// This first layer makes the worker die with the daemon and hold no
// descriptor but its channel. Later layers (namespaces, rlimits, Landlock,
// no_new_privs, seccomp) are added here in their order.
#ifndef FFIBROKER_DAEMON_WORKER_CONFINEMENT_H_
#define FFIBROKER_DAEMON_WORKER_CONFINEMENT_H_

#include <sys/types.h>

#include "absl/status/status.h"

namespace ffibroker {

// Arranges SIGKILL on the parent's death and exits if the parent is already
// gone (its pid is no longer our parent); then closes every descriptor above
// `channel_fd` and stdin/stdout (stderr stays for diagnostics). Returns an
// error only if a step that must succeed failed.
absl::Status ApplyEarlyConfinement(pid_t expected_parent, int channel_fd);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_CONFINEMENT_H_
