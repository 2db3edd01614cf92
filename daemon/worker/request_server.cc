#include "common/error_reason.h"
#include "daemon/worker/request_server.h"

#include <cxxabi.h>
#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/worker_protocol.h"
#include "daemon/worker/lockdown.h"

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

// Applies the lockdown around loading: rlimits and Landlock, dlopen, the
// callback closures and cif preparation, then the fatal-signal reporter
// and seccomp. An empty path is a probe: everything but the load. A
// pre-started worker (`prestarted` set: the lockdown its Prestart applied)
// skips the first half, done already, and ends with that lockdown's filter.
absl::StatusOr<std::unique_ptr<CallEngine>> OpenLocked(const worker::v1::Open& open,
                                                       const worker::v1::Lockdown* prestarted,
                                                       CallbackSink* callbacks,
                                                       v1::WorkerLayers* layers) {
  absl::Status status;
  if (prestarted == nullptr) {
    status = LockdownBeforeLoad(open.lockdown(), open.path(), kWorkerChannelFd, layers);
    if (!status.ok()) return absl::InternalError(StatusText(status));
  }
  std::unique_ptr<CallEngine> engine;
  if (!open.path().empty()) {
    absl::StatusOr<std::unique_ptr<CallEngine>> opened = CallEngine::Open(open, callbacks);
    if (!opened.ok()) return opened.status();
    engine = std::move(*opened);
  }
  status = LockdownAfterLoad(prestarted != nullptr ? *prestarted : open.lockdown(), layers);
  if (!status.ok()) return absl::InternalError(StatusText(status));
  return engine;
}

// The library ended the thread serving a request (pthread_exit unwinds it):
// report that and exit before the unwinding reaches our own frames, whose
// destructors (closing the channel among them) are not the library's doing.
[[noreturn]] void ReportThreadEnded(WorkerChannel& channel) {
  worker::v1::WorkerToDaemon report;
  report.mutable_fatal()->set_thread_ended(true);
  (void)channel.Send(report);
  LeaveWorker(128);  // 128 + signal 0: how the daemon confirms the report (FatalEndsBySignal)
}

// Runs `library_code` (anything that may run the library's code), reporting
// a thread it ends instead of unwinding further.
template <typename F>
auto ReportingThreadEnd(WorkerChannel& channel, F library_code) {
  try {
    return library_code();
  } catch (abi::__forced_unwind&) {
    ReportThreadEnded(channel);
  }
}

}  // namespace

void LeaveWorker(int code) { ::_exit(code); }

RequestServer::RequestServer(WorkerChannel* channel, v1::WorkerLayers layers)
    : channel_(channel), layers_(std::move(layers)), relay_(channel, this) {}

worker::v1::WorkerToDaemon RequestServer::ServeOpen(const worker::v1::Open& open) {
  opened_once_ = true;
  const worker::v1::Lockdown* before = prestarted_.has_value() ? &*prestarted_ : nullptr;
  absl::StatusOr<std::unique_ptr<CallEngine>> opened = ReportingThreadEnd(
      *channel_, [&] { return OpenLocked(open, before, &relay_, &layers_); });
  worker::v1::WorkerToDaemon reply;
  if (!opened.ok()) return ErrorReply(OpenErrorCode(opened.status()), opened.status());
  owned_engine_ = std::move(*opened);
  engine_.store(owned_engine_.get(), std::memory_order_release);
  *reply.mutable_opened()->mutable_layers() = layers_;
  return reply;
}

worker::v1::WorkerToDaemon RequestServer::Serve(const worker::v1::DaemonToWorker& request) {
  worker::v1::WorkerToDaemon reply;
  CallEngine* engine = this->engine();
  auto bad_request = [](const absl::Status& status) {
    return ErrorReply(worker::v1::Error::CODE_BAD_REQUEST, status);
  };
  if (request.has_prestart() && !opened_once_ && !prestarted_.has_value() &&
      request.within_invocation() == 0) {
    // Everything but the load and the profile's filter, before any library
    // is known (docs/prestart.md).
    const worker::v1::Prestart& prestart = request.prestart();
    absl::Status locked = LockdownBeforeLoad(prestart.lockdown(), prestart.library_path(),
                                             kWorkerChannelFd, &layers_);
    if (locked.ok()) {
      prestarted_ = prestart.lockdown();
      *reply.mutable_prestarted()->mutable_layers() = layers_;
    } else {
      reply = ErrorReply(worker::v1::Error::CODE_LOCKDOWN_FAILED, locked);
    }
  } else if (request.has_open() && !opened_once_ && request.within_invocation() == 0) {
    reply = ServeOpen(request.open());
  } else if (request.has_call() && engine != nullptr) {
    absl::StatusOr<worker::v1::Result> result =
        ReportingThreadEnd(*channel_, [&] { return engine->Call(request.call()); });
    if (result.ok()) {
      *reply.mutable_result() = std::move(*result);
    } else {
      reply = bad_request(result.status());
    }
  } else if (request.has_batch() && engine != nullptr) {
    absl::StatusOr<worker::v1::BatchResult> results =
        ReportingThreadEnd(*channel_, [&]() -> absl::StatusOr<worker::v1::BatchResult> {
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
      reply = bad_request(results.status());
    }
  } else if (engine != nullptr && IsInstanceRequest(request)) {
    absl::StatusOr<worker::v1::InstanceResult> result =
        ReportingThreadEnd(*channel_, [&] { return ServeInstance(*engine, request); });
    if (result.ok()) {
      *reply.mutable_instance_result() = std::move(*result);
    } else {
      reply = bad_request(result.status());
    }
  } else if (request.has_callback_release() && engine != nullptr) {
    reply.mutable_callback_released()->set_was_bound(
        engine->ReleaseCallback(request.callback_release().callback_id()));
  } else {
    reply = bad_request(absl::InvalidArgumentError("unexpected request"));
  }
  reply.set_request_id(request.request_id());  // every reply echoes its request's id
  return reply;
}

void RequestServer::SendReply(worker::v1::WorkerToDaemon reply) {
  absl::Status sent = channel_->Send(reply);
  if (absl::IsResourceExhausted(sent)) {
    // Too large for the channel (the daemon bounds what it asks for, so
    // only a library string or a bug gets here): say so instead.
    worker::v1::WorkerToDaemon error =
        ErrorReply(worker::v1::Error::CODE_BAD_REQUEST, sent);
    error.set_request_id(reply.request_id());
    sent = channel_->Send(error);
  }
  if (!sent.ok()) LeaveWorker(1);
}

}  // namespace ffibroker
