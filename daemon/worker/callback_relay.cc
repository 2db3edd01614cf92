#include "daemon/worker/callback_relay.h"

#include <ffi.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/arg_kinds.h"
#include "common/limits.h"
#include "daemon/worker/request_server.h"

namespace ffibroker {
namespace {

// This thread's nesting: how many nested requests it is running, and the
// invocation whose nested request it runs now (0: none).
thread_local int tls_depth = 0;
thread_local uint64_t tls_within = 0;

// The C arguments `args` of a callback of signature `sig`, encoded into
// `out` (common/arg_kinds.h, "callback invocations"). Class pointers are
// registered with `engine` as borrowed instances, listed in `borrowed`.
void EncodeArgs(const ResolvedSignature& sig, void** args, CallEngine* engine,
                worker::v1::CallbackInvoke* out, std::vector<uint64_t>* borrowed) {
  const size_t n = sig.params.size();
  uint64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const TypeDesc& type = *sig.params[i];
    std::string* bytes = out->add_args();
    switch (ArgKindOf(type)) {
      case ArgKind::kInline:
        bytes->assign(static_cast<const char*>(args[i]), type.size);
        break;
      case ArgKind::kHandle: {
        void* ptr = *static_cast<void**>(args[i]);
        uint64_t id = 0;
        if (ptr != nullptr && engine != nullptr) {
          id = engine->BorrowInstance(ptr, *type.element);
          borrowed->push_back(id);
        }
        *bytes = InstanceIdBytes(id);
        break;
      }
      case ArgKind::kString: {
        const char* s = *static_cast<const char* const*>(args[i]);
        if (s == nullptr) {
          out->add_arg_null(static_cast<uint32_t>(i));
        } else {
          // One byte past the maximum, so the daemon can say "too long".
          bytes->assign(s, ::strnlen(s, static_cast<size_t>(type.max_length) + 1));
        }
        break;
      }
      default:  // `in` buffers, below: their length may be a later argument
        continue;
    }
    total += bytes->size();
  }
  for (size_t i = 0; i < n; ++i) {
    const TypeDesc& type = *sig.params[i];
    if (ArgKindOf(type) != ArgKind::kBufferIn) continue;
    const char* data = *static_cast<const char* const*>(args[i]);
    if (data == nullptr) {
      out->add_arg_null(static_cast<uint32_t>(i));
      continue;
    }
    bool negative = false;
    const uint64_t told = ToldBufferLength(sig, static_cast<int>(i), out->args(), &negative);
    // A length the daemon could not accept is not read at all: the buffer
    // is sent empty and the daemon reports the mismatch on the call.
    if (negative || told > kMaxBufferLength || total + told > kMaxCallPayloadBytes) continue;
    out->mutable_args(static_cast<int>(i))->assign(data, static_cast<size_t>(told));
    total += told;
  }
}

// Writes the answer's `value` into libffi's return slot `ret` for a result
// of `type`: integers narrower than ffi_arg widened (libffi's rule for
// closures), everything else as its bytes. A value of the wrong size (the
// daemon sends exactly the size) leaves zeros.
void WriteResult(const TypeDesc& type, const std::string& value, void* ret) {
  if (type.size == 0) return;  // void
  std::memset(ret, 0, std::max(type.size, sizeof(ffi_arg)));
  if (value.size() != type.size) return;
  const ScalarInfo* scalar = type.scalar;
  const bool integer = scalar != nullptr && (scalar->klass == ScalarClass::kSigned ||
                                             scalar->klass == ScalarClass::kUnsigned ||
                                             scalar->klass == ScalarClass::kBool);
  if (integer && type.size < sizeof(ffi_arg)) {
    uint64_t wide = 0;
    std::memcpy(&wide, value.data(), type.size);
    const unsigned bits = static_cast<unsigned>(type.size * 8);
    if (scalar->klass == ScalarClass::kSigned && (wide >> (bits - 1)) & 1) {
      wide |= ~uint64_t{0} << bits;  // sign-extend
    }
    std::memcpy(ret, &wide, sizeof(ffi_arg));
    return;
  }
  std::memcpy(ret, value.data(), type.size);
}

}  // namespace

void CallbackRelay::Invoke(uint64_t callback_id, const TypeDesc& type, void* ret, void** args) {
  const int saved_errno = errno;
  try {
    const ResolvedSignature& sig = type.callback->sig;
    CallEngine* engine = server_->engine();
    worker::v1::WorkerToDaemon event;
    worker::v1::CallbackInvoke* invoke = event.mutable_callback_invoke();
    invoke->set_callback_id(callback_id);
    invoke->set_within_invocation(tls_within);
    std::vector<uint64_t> borrowed;
    EncodeArgs(sig, args, engine, invoke, &borrowed);
    const uint64_t id = channel_->Expect();
    invoke->set_invocation_id(id);
    if (!channel_->Send(event).ok()) LeaveWorker(1);
    while (true) {
      absl::StatusOr<worker::v1::DaemonToWorker> message = channel_->NextFor(id);
      if (!message.ok()) LeaveWorker(absl::IsUnavailable(message.status()) ? 0 : 1);
      if (message->has_callback_answer()) {
        WriteResult(*sig.result, message->callback_answer().value(), ret);
        break;
      }
      RunNested(*message, id);
    }
    channel_->Forget(id);
    for (uint64_t b : borrowed) engine->ForgetInstance(b);
  } catch (...) {
    // Nothing may unwind into the library's C frames (a nested request's
    // pthread_exit is reported and ends the worker before it gets here).
    LeaveWorker(1);
  }
  errno = saved_errno;
}

void CallbackRelay::RunNested(const worker::v1::DaemonToWorker& request, uint64_t invocation) {
  worker::v1::WorkerToDaemon reply;
  if (tls_depth >= kMaxCallbackNesting) {
    reply.mutable_error()->set_code(worker::v1::Error::CODE_BAD_REQUEST);
    reply.mutable_error()->set_message(absl::StrCat(
        "requests sent by callback handlers nest at most ", kMaxCallbackNesting,
        " deep on one worker thread (the callback nesting limit)"));
    reply.set_request_id(request.request_id());
  } else {
    ++tls_depth;
    const uint64_t outer = tls_within;
    tls_within = invocation;
    reply = server_->Serve(request);
    tls_within = outer;
    --tls_depth;
  }
  server_->SendReply(std::move(reply));
}

void CallbackRelay::Unbound(uint64_t last_id) {
  worker::v1::WorkerToDaemon report;
  report.mutable_fatal()->set_callback_released(last_id);
  (void)channel_->Send(report);
  LeaveWorker(128);  // 128 + signal 0: how the daemon confirms the report (FatalEndsBySignal)
}

}  // namespace ffibroker
