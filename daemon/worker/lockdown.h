// The worker's lockdown around loading the library, in the order of
// docs/architecture.md.
//
//   LockdownBeforeLoad: rlimits, then Landlock (read-only access to the
//     library, the system library directories and the profile's paths),
//     the fatal-signal reporter, and the loading seccomp filter (the
//     profile plus what dlopen needs). no_new_privs was set before exec.
//   (the caller then dlopens, resolves symbols, prepares cifs: the
//     library's constructors run here, under the loading filter)
//   LockdownAfterLoad: the profile's seccomp filter, on every thread.
//     Filters only ever add up: nothing can be loosened afterwards.
//
// Each function records in `layers` what is actually in force; a layer the
// kernel refuses is recorded in layers->refused with the reason, not
// treated as an error (the daemon decides whether it is required).
#ifndef FFIBROKER_DAEMON_WORKER_LOCKDOWN_H_
#define FFIBROKER_DAEMON_WORKER_LOCKDOWN_H_

#include <string>

#include "absl/status/status.h"
#include "ffibroker/v1/confinement.pb.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {

// What the worker can see of its own confinement right after exec: its uid,
// no_new_privs, capabilities.
void ReportEarlyLayers(v1::WorkerLayers* layers);

// Errors only for failures that must stop the worker (e.g. setrlimit
// refusing a lower limit).
// `channel_fd` is where the fatal-signal reporter writes.
absl::Status LockdownBeforeLoad(const worker::v1::Lockdown& lockdown,
                                const std::string& library_path, int channel_fd,
                                v1::WorkerLayers* layers);

absl::Status LockdownAfterLoad(const worker::v1::Lockdown& lockdown, v1::WorkerLayers* layers);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_WORKER_LOCKDOWN_H_
