// ffibroker-worker: serves calls into one library for ffibrokerd.
//
// Started by the daemon with exec, its channel on fd 3. Not meant to be run
// by hand. Order: confine (early layers) -> Hello -> [Prestart: the lockdown
// before loading, for a pre-started worker] -> Open (dlopen, dlsym,
// ffi_prep_cif) -> serve Call requests until the channel closes. Every
// reply carries the request_id of the request it answers.
#include <cxxabi.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/cli_flags.h"
#include "common/log.h"
#include "common/transport.h"
#include "common/worker_protocol.h"
#include "daemon/worker/call_engine.h"
#include "daemon/worker/confinement.h"
#include "daemon/worker/lockdown.h"
#include "ffibroker/worker/v1/worker.pb.h"

namespace ffibroker {
namespace {

worker::v1::WorkerToDaemon ErrorReply(worker::v1::Error::Code code,
                                      const absl::Status& status) {
  worker::v1::WorkerToDaemon reply;
  reply.mutable_error()->set_code(code);
  reply.mutable_error()->set_message(std::string(status.message()));
  return reply;
}

worker::v1::Error::Code OpenErrorCode(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound: return worker::v1::Error::CODE_SYMBOL_NOT_FOUND;
    case absl::StatusCode::kFailedPrecondition: return worker::v1::Error::CODE_LOAD_FAILED;
    case absl::StatusCode::kInternal: return worker::v1::Error::CODE_LOCKDOWN_FAILED;
    default: return worker::v1::Error::CODE_PREP_FAILED;
  }
}

bool IsInstanceRequest(const worker::v1::DaemonToWorker& request) {
  switch (request.msg_case()) {
    case worker::v1::DaemonToWorker::kInstanceNew:
    case worker::v1::DaemonToWorker::kInstanceRead:
    case worker::v1::DaemonToWorker::kInstanceWrite:
    case worker::v1::DaemonToWorker::kInstanceFree:
    case worker::v1::DaemonToWorker::kStaticAccess:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<worker::v1::InstanceResult> ServeInstance(
    CallEngine& engine, const worker::v1::DaemonToWorker& request) {
  switch (request.msg_case()) {
    case worker::v1::DaemonToWorker::kInstanceNew:
      return engine.NewInstance(request.instance_new());
    case worker::v1::DaemonToWorker::kInstanceRead:
      return engine.ReadInstance(request.instance_read());
    case worker::v1::DaemonToWorker::kInstanceWrite:
      return engine.WriteInstance(request.instance_write());
    case worker::v1::DaemonToWorker::kInstanceFree:
      return engine.FreeInstance(request.instance_free());
    default:
      return engine.AccessStatic(request.static_access());
  }
}

// Applies the lockdown around loading: rlimits and Landlock, dlopen and
// cif preparation, then the fatal-signal reporter and seccomp. An empty
// path is a probe: everything but the load. A pre-started worker
// (`prestarted` set: the lockdown its Prestart applied) skips the first
// half, done already, and ends with the prestarted lockdown's filter.
absl::StatusOr<std::unique_ptr<CallEngine>> OpenLocked(const worker::v1::Open& open,
                                                       const worker::v1::Lockdown* prestarted,
                                                       v1::WorkerLayers* layers) {
  absl::Status status;
  if (prestarted == nullptr) {
    status = LockdownBeforeLoad(open.lockdown(), open.path(), kWorkerChannelFd, layers);
    if (!status.ok()) return absl::InternalError(status.ToString());
  }
  std::unique_ptr<CallEngine> engine;
  if (!open.path().empty()) {
    absl::StatusOr<std::unique_ptr<CallEngine>> opened = CallEngine::Open(open);
    if (!opened.ok()) return opened.status();
    engine = std::move(*opened);
  }
  status = LockdownAfterLoad(prestarted != nullptr ? *prestarted : open.lockdown(), layers);
  if (!status.ok()) return absl::InternalError(status.ToString());
  return engine;
}

// Ends the worker at once with `code`. After lockdown nothing may run on the
// way out (atexit handlers, static and library destructors, stdio flushing
// could make syscalls the profile forbids and be reported as a violation),
// so the worker always leaves with _exit.
[[noreturn]] void Leave(int code) { ::_exit(code); }

// The library ended the thread serving a request (pthread_exit unwinds it):
// report that and exit before the unwinding reaches our own frames, whose
// destructors (closing the channel among them) are not the library's doing.
[[noreturn]] void ReportThreadEnded(Transport& channel) {
  worker::v1::WorkerToDaemon report;
  report.mutable_fatal()->set_thread_ended(true);
  (void)channel.Send(report);
  Leave(128);  // 128 + signal 0: how the daemon confirms the report (FatalEndsBySignal)
}

// Runs `library_code` (anything that may run the library's code), reporting
// a thread it ends instead of unwinding further.
template <typename F>
auto ReportingThreadEnd(Transport& channel, F library_code) {
  try {
    return library_code();
  } catch (abi::__forced_unwind&) {
    ReportThreadEnded(channel);
  }
}

// Serves requests until the channel closes (exit status 0) or fails (1).
[[noreturn]] void Serve(Transport& channel) {
  worker::v1::WorkerToDaemon hello;
  hello.mutable_hello()->set_protocol_version(kWorkerProtocolVersion);
  ReportEarlyLayers(hello.mutable_hello()->mutable_layers());
  v1::WorkerLayers layers = hello.hello().layers();
  if (!channel.Send(hello).ok()) Leave(1);
  bool opened_once = false;
  // Set by a Prestart: the lockdown applied before the library was known.
  std::optional<worker::v1::Lockdown> prestarted;

  std::unique_ptr<CallEngine> engine;
  while (true) {
    worker::v1::DaemonToWorker request;
    absl::Status status = channel.Receive(&request, absl::InfiniteFuture(), -1);
    if (absl::IsUnavailable(status)) Leave(0);  // the daemon closed us
    if (!status.ok()) Leave(1);
    worker::v1::WorkerToDaemon reply;
    if (request.has_prestart() && !opened_once && !prestarted.has_value()) {
      // Everything but the load and the profile's filter, before any
      // library is known (docs/prestart.md).
      const worker::v1::Prestart& prestart = request.prestart();
      absl::Status locked = LockdownBeforeLoad(prestart.lockdown(), prestart.library_path(),
                                               kWorkerChannelFd, &layers);
      if (locked.ok()) {
        prestarted = prestart.lockdown();
        *reply.mutable_prestarted()->mutable_layers() = layers;
      } else {
        reply = ErrorReply(worker::v1::Error::CODE_LOCKDOWN_FAILED, locked);
      }
    } else if (request.has_open() && !opened_once) {
      opened_once = true;
      const worker::v1::Lockdown* before = prestarted.has_value() ? &*prestarted : nullptr;
      absl::StatusOr<std::unique_ptr<CallEngine>> opened = ReportingThreadEnd(
          channel, [&] { return OpenLocked(request.open(), before, &layers); });
      if (opened.ok()) {
        engine = std::move(*opened);
        *reply.mutable_opened()->mutable_layers() = layers;
      } else {
        reply = ErrorReply(OpenErrorCode(opened.status()), opened.status());
      }
    } else if (request.has_call() && engine != nullptr) {
      absl::StatusOr<worker::v1::Result> result =
          ReportingThreadEnd(channel, [&] { return engine->Call(request.call()); });
      if (result.ok()) {
        *reply.mutable_result() = std::move(*result);
      } else {
        reply = ErrorReply(worker::v1::Error::CODE_BAD_REQUEST, result.status());
      }
    } else if (request.has_batch() && engine != nullptr) {
      absl::StatusOr<worker::v1::BatchResult> results =
          ReportingThreadEnd(channel, [&]() -> absl::StatusOr<worker::v1::BatchResult> {
            worker::v1::BatchResult out;
            for (const worker::v1::Call& call : request.batch().calls()) {
              absl::StatusOr<worker::v1::Result> result = engine->Call(call);
              if (!result.ok()) return result.status();
              *out.add_results() = std::move(*result);
            }
            return out;
          });
      if (results.ok()) {
        *reply.mutable_batch_result() = std::move(*results);
      } else {
        reply = ErrorReply(worker::v1::Error::CODE_BAD_REQUEST, results.status());
      }
    } else if (engine != nullptr && IsInstanceRequest(request)) {
      absl::StatusOr<worker::v1::InstanceResult> result =
          ReportingThreadEnd(channel, [&] { return ServeInstance(*engine, request); });
      if (result.ok()) {
        *reply.mutable_instance_result() = std::move(*result);
      } else {
        reply = ErrorReply(worker::v1::Error::CODE_BAD_REQUEST, result.status());
      }
    } else {
      reply = ErrorReply(worker::v1::Error::CODE_BAD_REQUEST,
                         absl::InvalidArgumentError("unexpected request"));
    }
    reply.set_request_id(request.request_id());  // every reply echoes its request's id
    absl::Status sent = channel.Send(reply);
    if (absl::IsResourceExhausted(sent)) {
      // Too large for the channel (the daemon bounds what it asks for, so
      // only a library string or a bug gets here): say so instead.
      worker::v1::WorkerToDaemon error =
          ErrorReply(worker::v1::Error::CODE_BAD_REQUEST, sent);
      error.set_request_id(request.request_id());
      sent = channel.Send(error);
    }
    if (!sent.ok()) Leave(1);
  }
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  using namespace ffibroker;
  InitLogging("ffibroker-worker", LogLevel::kWarning);
  CLI::App app("Serves calls into one library for ffibrokerd, which starts it with its "
               "channel on fd 3; not meant to be run by hand.",
               "ffibroker-worker");
  pid_t parent_pid = 0;
  app.add_option("--parent-pid", parent_pid,
                 "pid of the daemon that started us (0: invisible, own pid namespace)")
      ->required()
      ->check(CLI::NonNegativeNumber);
  if (std::optional<int> exit_code = ParseFlags(app, argc, argv)) return *exit_code;
  absl::Status confined =
      ApplyEarlyConfinement(parent_pid, kWorkerChannelFd);
  if (!confined.ok()) {
    LOG_ERROR("confinement failed: %s", confined.ToString());
    return 1;
  }
  SeqpacketTransport channel{UniqueFd(kWorkerChannelFd)};
  Serve(channel);
}
