// ExceptionStatus: the status for the exception being handled, for code
// that runs off any RPC's guard (start threads, the worker watcher) and
// must answer its waiters whatever happened, never end the daemon.
//
//   try { started = StartWorker(...); }
//   catch (...) { started = ExceptionStatus("starting the worker"); }
#ifndef FFIBROKER_DAEMON_EXCEPTION_STATUS_H_
#define FFIBROKER_DAEMON_EXCEPTION_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ffibroker {

// Call only inside a catch block. RESOURCE_EXHAUSTED "the daemon ran out of
// memory <doing>" for std::bad_alloc, INTERNAL "internal error <doing>: what()"
// for another std::exception, INTERNAL "internal error <doing>" otherwise;
// each is logged.
absl::Status ExceptionStatus(absl::string_view doing);

}  // namespace ffibroker

#endif  // FFIBROKER_DAEMON_EXCEPTION_STATUS_H_
