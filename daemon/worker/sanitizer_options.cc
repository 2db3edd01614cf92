// The worker's UndefinedBehaviorSanitizer options in the sanitizer build
// (FFIBROKER_SANITIZE; docs/testing.md). Linked into ffibroker-worker only
// in that build.
//
// The daemon starts the worker with an empty environment, so UBSAN_OPTIONS
// never reaches it: the options are compiled in. Any report ends the worker
// (halt_on_error), which the daemon sees as an unexpected exit and the test
// as a failure. The runtime must leave fatal signals to the worker's own
// reporter (daemon/worker/fatal_reporter.h), which the suite tests, and must
// make no system call the seccomp profiles forbid: no stack unwinding
// through /proc, no symbolizer process.

extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=0:symbolize=0:handle_segv=0:handle_sigbus=0:"
         "handle_sigfpe=0:handle_sigill=0:handle_abort=0:use_sigaltstack=0";
}
