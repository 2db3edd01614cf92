// The worker's self-confinement, applied in the order that
// docs/architecture.md gives.
//
// The first layer: the worker dies with the daemon and holds no descriptor
// but its channel (and /dev/null on 0-2). Namespaces, the minimal root, the
// unprivileged uid and no_new_privs are applied before exec by the daemon's
// spawner (daemon/sandbox_spawn.h); rlimits, Landlock and seccomp by
// lockdown.h.
#ifndef FFIBROKER_DAEMON_WORKER_CONFINEMENT_H_
#define FFIBROKER_DAEMON_WORKER_CONFINEMENT_H_

#include <sys/types.h>

#include "absl/status/status.h"

namespace ffibroker {

// Arranges SIGKILL on the parent's death and fails if the parent is already
// gone (`expected_parent` is no longer our parent; 0 = we are in our own pid
// namespace and cannot see it); then closes every descriptor above
// `channel_fd`. (The spawner already did both before exec; this is the
// worker not trusting that it was started correctly.)
absl::Status ApplyEarlyConfinement(pid_t expected_parent, int channel_fd);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_CONFINEMENT_H_
