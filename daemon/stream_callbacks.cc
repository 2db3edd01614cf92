#include "daemon/stream_callbacks.h"

#include <sys/random.h>

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/arg_kinds.h"
#include "common/callback_type.h"
#include "common/error_reason.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "common/transport.h"
#include "common/utf8.h"
#include "common/value_codec.h"

namespace ffibroker {
namespace {

// A fresh, non-zero id for the worker to know a callback by.
uint64_t NewWireId() {
  uint64_t id = 0;
  while (id == 0) {
    if (::getrandom(&id, sizeof id, 0) != sizeof id) id = 0;
  }
  return id;
}


}  // namespace

absl::Status StreamCallbacks::Register(const v1::RegisterCallback& request,
                                     ResolvedSignature resolved,
                                     std::function<absl::Status()> allowed) {
  if (request.callback_id() == 0) {
    return absl::InvalidArgumentError("register_callback.callback_id must not be 0");
  }
  if (resolved.proto.convention() != v1::Signature::CONVENTION_PLAIN) {
    return absl::InvalidArgumentError("a callback's signature must use the plain convention");
  }
  if (request.name().size() > kMaxCallbackNameBytes || !IsValidUtf8(request.name())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "register_callback.name must be valid UTF-8 of at most ", kMaxCallbackNameBytes,
        " bytes"));
  }
  absl::MutexLock lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("the stream is ending");
  if (registrations_.count(request.callback_id()) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "callback id ", request.callback_id(), " is already registered on this stream"));
  }
  if (registrations_.size() >= kMaxCallbacksPerStream) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this stream has ", registrations_.size(), " callbacks registered, the most one stream "
        "may have (release some with ReleaseCallback)"));
  }
  Registration r;
  r.client_id = request.callback_id();
  do {
    r.wire_id = NewWireId();
  } while (by_wire_.count(r.wire_id) != 0);
  r.name = request.name().empty() ? absl::StrCat("callback ", request.callback_id())
                                  : absl::StrCat("callback '", request.name(), "'");
  r.persistent = request.lifetime() == v1::RegisterCallback::LIFETIME_PERSISTENT;
  r.signature = std::move(resolved);
  r.allowed = std::move(allowed);
  by_wire_[r.wire_id] = r.client_id;
  registrations_.emplace(r.client_id, std::move(r));
  return absl::OkStatus();
}

void StreamCallbacks::Retire(const Registration& r) {
  if (r.declared == nullptr) return;  // never passed: no worker can call it
  released_.emplace_back(r.wire_id, r.declared->callback->sig.result);
  if (released_.size() > kMaxCallbacksPerStream) released_.pop_front();
}

void StreamCallbacks::ReleaseIn(const std::shared_ptr<WorkerProcess>& worker, uint64_t wire) {
  worker::v1::DaemonToWorker release;
  release.mutable_callback_release()->set_callback_id(wire);
  // No deadline of its own: it waits behind whatever the worker runs (whose
  // own deadlines bound the worker), and must not kill it.
  worker->Submit(&release, absl::InfiniteFuture(),
                 [weak = std::weak_ptr<WorkerProcess>(worker),
                  wire](absl::StatusOr<worker::v1::WorkerToDaemon>) {
                   if (std::shared_ptr<WorkerProcess> w = weak.lock()) w->UnbindCallback(wire);
                 });
}

absl::Status StreamCallbacks::Release(uint64_t callback_id) {
  std::vector<std::shared_ptr<WorkerProcess>> workers;
  uint64_t wire = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = registrations_.find(callback_id);
    if (it == registrations_.end()) {
      return absl::NotFoundError(
          absl::StrCat("callback ", callback_id, " is not registered on this stream"));
    }
    wire = it->second.wire_id;
    for (const auto& [weak, generation] : it->second.bound_in) {
      if (std::shared_ptr<WorkerProcess> w = weak.lock()) workers.push_back(std::move(w));
    }
    Retire(it->second);
    by_wire_.erase(wire);
    registrations_.erase(it);
  }
  for (const auto& worker : workers) ReleaseIn(worker, wire);
  return absl::OkStatus();
}

absl::StatusOr<CallbackScope::Bound> StreamCallbacks::Bind(uint64_t callback_id,
                                                         const TypeRef& declared) {
  std::function<absl::Status()> allowed;
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    auto it = registrations_.find(callback_id);
    if (it == registrations_.end() && closed_) {
      // A call that started after the client half-closed or left (one the
      // stream held): its callbacks could never be answered.
      return absl::FailedPreconditionError(absl::StrCat(
          "callback ", callback_id, " can no longer be invoked: ", closed_why_));
    }
    if (it == registrations_.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "callback ", callback_id, " is not registered on this stream (RegisterCallback)"));
    }
    allowed = it->second.allowed;
    name = it->second.name;
  }
  absl::Status ok = allowed();
  if (!ok.ok()) return WithMessagePrefix(ok, absl::StrCat(name, ": "));
  absl::MutexLock lock(&mu_);
  auto it = registrations_.find(callback_id);
  if (it == registrations_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("callback ", callback_id, " was released"));
  }
  Registration& r = it->second;
  absl::Status matches = CallbackSignatureMatches(*declared, r.signature.proto);
  if (!matches.ok()) return WithMessagePrefix(matches, absl::StrCat(name, ": "));
  if (r.declared == nullptr) r.declared = declared;
  Bound bound{r.wire_id, r.persistent, 0, {}};
  if (r.persistent) {
    for (const auto& [weak, generation] : r.bound_in) {
      std::shared_ptr<WorkerProcess> held = weak.lock();
      if (held != nullptr && held->alive()) {
        bound.generation = generation;
        bound.worker = held;
        break;
      }
    }
    if (bound.generation == 0) {
      size_t placed = 0;
      for (const auto& [id, other] : registrations_) {
        for (const auto& [weak, generation] : other.bound_in) placed += weak.expired() ? 0 : 1;
      }
      if (placed >= kMaxPersistentCallbacksPerWorker) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "this stream holds ", placed, " persistent callbacks bound in workers, the most "
            "allowed (release some with ReleaseCallback)"));
      }
    }
  }
  return bound;
}

CallbackContext StreamCallbacks::ForCall(uint64_t call_id) {
  CallbackContext context;
  context.scope = shared_from_this();
  context.call_id = call_id;
  return context;
}

absl::StatusOr<CallbackContext> StreamCallbacks::Nested(uint64_t invocation_id, uint64_t call_id) {
  absl::MutexLock lock(&mu_);
  auto it = invocations_.find(invocation_id);
  if (it == invocations_.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "within_invocation ", invocation_id, " is not waiting for an answer (it was answered, "
        "or its call ended): a nested call must be sent before the invocation is answered"));
  }
  if (it->second.depth + 1 > static_cast<uint32_t>(kMaxCallbackNesting)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "calls from callback handlers nest at most ", kMaxCallbackNesting, " deep"));
  }
  if (it->second.generation == 0 || it->second.worker.expired()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "within_invocation ", invocation_id, " was not made during a call of this stream "
        "(a library thread's): no worker thread waits to run a nested call"));
  }
  CallbackContext context;
  context.scope = shared_from_this();
  context.call_id = call_id;
  context.nested_generation = it->second.generation;
  context.within_invocation = it->second.worker_invocation;
  context.nested_worker = it->second.worker;
  Running placeholder;
  placeholder.parent_invocation = invocation_id;
  running_[call_id] = std::move(placeholder);  // Sent fills it in
  return context;
}

void StreamCallbacks::Sent(uint64_t call_id, const std::shared_ptr<WorkerProcess>& worker,
                         uint64_t generation, const std::vector<Bound>& bound,
                         const InstanceHooks& hooks) {
  std::shared_ptr<StreamCallbacks> self = shared_from_this();
  absl::MutexLock lock(&mu_);
  Running& run = running_[call_id];
  for (uint64_t wire : run.per_call) worker->UnbindCallback(wire);  // sent again
  run.per_call.clear();
  run.worker = worker.get();
  run.weak = worker;
  run.generation = generation;
  run.sequence = next_sequence_++;
  run.hooks = hooks;
  run.hooks.callbacks = CallbackContext();  // no cycle through the hooks
  for (const Bound& b : bound) {
    if (!b.persistent) {
      worker->BindCallback(b.wire_id, self);
      run.per_call.push_back(b.wire_id);
      continue;
    }
    auto client = by_wire_.find(b.wire_id);
    if (client == by_wire_.end()) {
      // Released (or the stream closed) since Bind: the worker binds it
      // anyway, so route it until the worker confirms the release.
      worker->BindCallback(b.wire_id, self);
      ReleaseIn(worker, b.wire_id);
      continue;
    }
    Registration& r = registrations_.at(client->second);
    bool held = false;
    for (const auto& [weak, g] : r.bound_in) held = held || weak.lock() == worker;
    if (!held) {
      worker->BindCallback(b.wire_id, self);  // until Release or Close
      r.bound_in.emplace_back(worker, generation);
    }
  }
}

void StreamCallbacks::Unsent(uint64_t call_id) {
  absl::MutexLock lock(&mu_);
  auto it = running_.find(call_id);
  if (it == running_.end()) return;
  if (std::shared_ptr<WorkerProcess> worker = it->second.weak.lock()) {
    for (uint64_t wire : it->second.per_call) worker->UnbindCallback(wire);
  }
  it->second.per_call.clear();
  it->second.worker = nullptr;  // no longer running anywhere
}

void StreamCallbacks::FailCall(uint64_t call_id, absl::Status status) {
  if (call_id == 0) {
    LOG_WARNING("callback failed outside a call of its stream: %s",
                SanitizeWorkerText(StatusText(status)));
    return;
  }
  failures_.emplace(call_id, std::move(status));  // the first failure wins
}

std::string StreamCallbacks::Zeros(const TypeRef& result) {
  return std::string(result == nullptr ? 0 : result->size, '\0');
}

void StreamCallbacks::SendAnswer(const Invocation& inv, uint64_t stream_invocation,
                               std::string value) {
  std::shared_ptr<WorkerProcess> worker = inv.worker.lock();
  if (worker == nullptr) return;  // it ended: nothing waits for the answer
  worker::v1::DaemonToWorker answer;
  answer.mutable_callback_answer()->set_invocation_id(inv.worker_invocation);
  answer.mutable_callback_answer()->set_value(std::move(value));
  absl::Status sent = worker->Post(&answer, absl::Now());
  if (!sent.ok() && !absl::IsUnavailable(sent)) {
    LOG_WARNING("answer to callback invocation %d not sent: %s", stream_invocation,
        StatusText(sent));
  }
}

absl::StatusOr<std::vector<v1::Value>> StreamCallbacks::DecodeArgs(
    const Registration& r, const worker::v1::CallbackInvoke& invoke, const Running* during) {
  mu_.AssertHeld();
  const ResolvedSignature& sig = r.declared->callback->sig;
  ASSIGN_OR_RETURN(DecodedInvocation decoded, DecodeCallbackArgs(r.name, sig, invoke));
  // Every argument is valid: only now do its class pointers become handles.
  if (decoded.instances.empty()) return std::move(decoded.values);
  if (during == nullptr || !during->hooks.adopt) {
    const size_t at = decoded.instances.front().first;
    return absl::DataLossError(absl::StrCat(
        "the library called ", r.name, " with ",
        DescribeArgument(static_cast<int>(at), sig.proto.params(static_cast<int>(at))),
        " a pointer outside any call of the stream"));
  }
  if (decoded.instances.size() > kMaxCallbackHandlesPerStream - handles_adopted_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the library passed ", r.name, " more class pointers than one stream may hold "
        "handles for (", kMaxCallbackHandlesPerStream, ")"));
  }
  for (const auto& [at, id] : decoded.instances) {
    ++handles_adopted_;
    decoded.values[at].set_handle_value(
        during->hooks.adopt(*sig.params[at], InstanceRef{id, during->generation}));
  }
  return std::move(decoded.values);
}

void StreamCallbacks::Invoked(std::weak_ptr<WorkerProcess> weak, worker::v1::CallbackInvoke invoke) {
  std::shared_ptr<WorkerProcess> worker = weak.lock();
  if (worker == nullptr) return;
  Invocation inv;
  inv.worker = weak;
  inv.worker_invocation = invoke.invocation_id();
  v1::StreamResponse out;
  absl::Status refused;  // answered with zeros at once, failing the call
  bool unknown = false;
  {
    absl::MutexLock lock(&mu_);
    // The call it happened in: the oldest of this stream's calls running in
    // the worker (at the invocation's nesting level).
    uint64_t parent = 0;
    if (invoke.within_invocation() != 0) {
      for (const auto& [id, other] : invocations_) {
        if (other.worker_invocation == invoke.within_invocation() &&
            other.worker.lock() == worker) {
          parent = id;
          inv.depth = other.depth + 1;
        }
      }
    }
    const Running* during = nullptr;
    for (const auto& [id, run] : running_) {
      if (run.worker == worker.get() && run.parent_invocation == parent &&
          (during == nullptr || run.sequence < during->sequence)) {
        during = &run;
        inv.call_id = id;
      }
    }
    inv.generation = during != nullptr ? during->generation : 0;
    for (const auto& arg : invoke.args()) inv.bytes += arg.size();
    auto wire = by_wire_.find(invoke.callback_id());
    if (wire == by_wire_.end() || registrations_.at(wire->second).declared == nullptr) {
      auto gone = std::find_if(released_.begin(), released_.end(), [&](const auto& entry) {
        return entry.first == invoke.callback_id();
      });
      if (gone == released_.end()) {
        unknown = true;  // its result size is not known: it cannot be answered
      } else {
        inv.result = gone->second;
        refused = absl::FailedPreconditionError(
            closed_ ? "the library called a callback after the client's side of the stream "
                      "ended"
                    : "the library called a callback the client released while the call ran");
      }
    } else {
      const Registration& r = registrations_.at(wire->second);
      inv.name = r.name;
      inv.result = r.declared->callback->sig.result;
      for (const auto& [bound, generation] : r.bound_in) {
        if (inv.generation == 0 && bound.lock() == worker) inv.generation = generation;
      }
      if (closed_) {
        refused = absl::CancelledError(absl::StrCat(
            "the stream ended before the client could answer ", r.name));
      } else if (invocations_.size() >= kMaxOutstandingInvocations ||
                 bytes_waiting_ + inv.bytes > kMaxInvocationBytesWaiting) {
        refused = absl::ResourceExhaustedError(absl::StrCat(
            "the client has ", invocations_.size(), " callback invocations (",
            bytes_waiting_, " bytes of arguments) unanswered, the most one stream may have"));
      }
      absl::StatusOr<std::vector<v1::Value>> args =
          refused.ok() ? DecodeArgs(r, invoke, during) : std::vector<v1::Value>();
      if (!args.ok()) {
        refused = args.status();
      } else if (refused.ok()) {
        const uint64_t id = next_invocation_++;
        v1::CallbackInvocation* call = out.mutable_callback_invocation();
        call->set_invocation_id(id);
        call->set_callback_id(r.client_id);
        call->set_call_id(inv.call_id);
        call->set_depth(inv.depth);
        for (v1::Value& v : *args) *call->add_args() = std::move(v);
        invocations_.emplace(id, inv);
        bytes_waiting_ += inv.bytes;
        waiting_.store(invocations_.size());
        sink_(std::move(out));  // under the lock: Close cannot pass it
      }
    }
    if (!refused.ok()) FailCall(inv.call_id, refused);
  }
  if (unknown) {
    worker->Abandon(absl::StrCat("invoked callback ", invoke.callback_id(),
                                 ", which this stream never passed to it"));
    return;
  }
  if (!refused.ok()) SendAnswer(inv, 0, Zeros(inv.result));
}

absl::Status StreamCallbacks::Answer(const v1::CallbackAnswer& answer) {
  Invocation inv;
  std::string value;
  {
    absl::MutexLock lock(&mu_);
    auto it = invocations_.find(answer.invocation_id());
    if (it == invocations_.end()) {
      return absl::NotFoundError(absl::StrCat(
          "callback invocation ", answer.invocation_id(), " is not waiting for an answer (it "
          "was answered already, or its call ended)"));
    }
    inv = std::move(it->second);
    invocations_.erase(it);
    bytes_waiting_ -= inv.bytes;
    waiting_.store(invocations_.size());
    const std::string about =
        absl::StrCat(inv.name, " (invocation ", answer.invocation_id(), ")");
    absl::Status failed;
    if (answer.has_error()) {
      const int code = answer.error().code();
      failed = code <= 0 || code > 16
                   ? absl::InvalidArgumentError(absl::StrCat(
                         about, " was answered with an error whose code ", code,
                         " is no error code (1..16)"))
                   : absl::Status(static_cast<absl::StatusCode>(code),
                                  absl::StrCat(about, " failed in the client: ",
                                               answer.error().message()));
    } else if (inv.result == nullptr || inv.result->size == 0) {
      if (answer.has_result()) {
        failed = absl::InvalidArgumentError(
            absl::StrCat(about, " returns void, but its answer carries a result"));
      }
    } else if (!answer.has_result()) {
      failed = absl::InvalidArgumentError(absl::StrCat(
          about, " returns ", inv.result->name, ", but its answer carries no result"));
    } else {
      absl::Status encoded = EncodeInline(*inv.result, answer.result(), &value);
      if (!encoded.ok()) {
        failed = absl::InvalidArgumentError(absl::StrCat(
            about, " was answered with an invalid result (", inv.result->name, "): ",
            encoded.message()));
      }
    }
    if (!failed.ok()) {
      value = Zeros(inv.result);
      FailCall(inv.call_id, failed);
    }
  }
  SendAnswer(inv, answer.invocation_id(), std::move(value));
  return absl::OkStatus();
}

absl::Status StreamCallbacks::CallEnded(uint64_t call_id, absl::Status status) {
  absl::MutexLock lock(&mu_);
  running_.erase(call_id);
  auto failed = failures_.find(call_id);
  if (failed != failures_.end()) {
    status = std::move(failed->second);
    failures_.erase(failed);
  }
  for (auto it = invocations_.begin(); it != invocations_.end();) {
    if (it->second.call_id != call_id) {
      ++it;
      continue;
    }
    if (absl::IsDeadlineExceeded(status)) {
      status = WithNewMessage(status, absl::StrCat(
          status.message(), " while ", it->second.name, " (invocation ", it->first,
          ") waited for the client's answer; the worker, blocked in the callback, was killed"));
    }
    std::shared_ptr<WorkerProcess> worker = it->second.worker.lock();
    if (worker == nullptr || !worker->alive()) {
      bytes_waiting_ -= it->second.bytes;
      it = invocations_.erase(it);
    } else {
      it->second.call_id = 0;  // a library thread's: still waits for its answer
      ++it;
    }
  }
  waiting_.store(invocations_.size());
  return status;
}

void StreamCallbacks::Close(const std::string& why) {
  std::map<uint64_t, Invocation> invocations;
  std::vector<std::pair<std::shared_ptr<WorkerProcess>, uint64_t>> persistent;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    closed_why_ = why;
    invocations.swap(invocations_);
    bytes_waiting_ = 0;
    waiting_.store(0);
    for (const auto& [id, inv] : invocations) {
      FailCall(inv.call_id, absl::CancelledError(absl::StrCat(
                                inv.name, " (invocation ", id, ") was not answered: ", why)));
    }
    for (const auto& [id, r] : registrations_) {
      for (const auto& [weak, generation] : r.bound_in) {
        if (std::shared_ptr<WorkerProcess> worker = weak.lock()) {
          persistent.emplace_back(worker, r.wire_id);
        }
      }
      Retire(r);
    }
    registrations_.clear();
    by_wire_.clear();
  }
  for (auto& [id, inv] : invocations) SendAnswer(inv, id, Zeros(inv.result));
  for (auto& [worker, wire] : persistent) ReleaseIn(worker, wire);
}

}  // namespace ffibroker
