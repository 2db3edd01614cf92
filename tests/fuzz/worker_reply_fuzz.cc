// Fuzz target: worker replies as the daemon sees them. The input's packets
// are written to a real SOCK_SEQPACKET channel (random framing: whole 'F'
// messages, 'P'/'C' fragments with any total length, truncation, empty
// packets); the daemon's end receives them with the production transport
// (common/transport.h) and decodes every WorkerToDaemon kind as the daemon
// does: a Result with DecodeCallResult (daemon/call_codec.h) against a real
// call context (a symbol of the classes test library and the Call the
// daemon encoded for it), an InstanceResult with the class's DecodeInline,
// Error and Fatal text with SanitizeWorkerText.
//
// Input: FuzzedDataProvider: the symbol and its arguments, then packets,
// each a 16-bit length and its bytes.
// Invariants: everything is a Status; a protocol violation is UNAVAILABLE;
// a decoded response has the declared shape; worker text is bounded and
// printable.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "google/protobuf/stubs/logging.h"
#include "common/transport.h"
#include "common/unique_fd.h"
#include "common/value_codec.h"
#include "daemon/call_codec.h"
#include "daemon/worker_process.h"
#include "tests/fuzz/classes_session.h"
#include "tests/fuzz/fuzz_values.h"

namespace ffibroker {
namespace {

void CheckWorkerText(const std::string& text) {
  std::string clean = SanitizeWorkerText(text);
  FUZZ_CHECK(clean.size() <= 300 + 3, clean);
  for (unsigned char c : clean) FUZZ_CHECK(c >= 0x20 && c < 0x7f, clean);
}

void Decode(const worker::v1::WorkerToDaemon& reply, const ResolvedSignature& sig,
            const std::string& name, const worker::v1::Call& sent, const InstanceHooks& hooks) {
  const fuzz::ClassesSession& s = fuzz::Classes();
  switch (reply.msg_case()) {
    case worker::v1::WorkerToDaemon::kResult: {
      bool violation = false;
      absl::StatusOr<v1::CallResponse> response =
          DecodeCallResult(name, sig, sent, reply.result(), hooks, 1, &violation);
      if (violation) {
        FUZZ_CHECK(response.status().code() == absl::StatusCode::kUnavailable,
                   response.status().ToString());
      }
      if (response.ok()) FUZZ_CHECK(!violation, name);
      break;
    }
    case worker::v1::WorkerToDaemon::kInstanceResult:
      for (const TypeRef& klass : s.classes.classes()) {
        if (klass->opaque) continue;
        absl::StatusOr<v1::Value> value = DecodeInline(*klass, reply.instance_result().data());
        if (!value.ok()) {
          FUZZ_CHECK(value.status().code() == absl::StatusCode::kInvalidArgument,
                     value.status().ToString());
        }
      }
      break;
    case worker::v1::WorkerToDaemon::kError:
      CheckWorkerText(reply.error().message());
      break;
    default:
      break;
  }
}

}  // namespace
}  // namespace ffibroker

// Protobuf logs every string field with invalid UTF-8 it parses; a hostile
// worker sends many. The parse result is what counts.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ffibroker;
  FuzzedDataProvider in(data, size);
  const fuzz::ClassesSession& s = fuzz::Classes();
  size_t index = in.ConsumeIntegralInRange<size_t>(0, s.symbols.size() - 1);
  const ResolvedSignature& sig = s.symbols[index];
  const std::string& name = s.open.symbols(static_cast<int>(index)).name();
  google::protobuf::RepeatedPtrField<v1::Value> args;
  for (const TypeRef& param : sig.params) *args.Add() = fuzz::RandomValue(in, *param);
  InstanceHooks hooks;
  hooks.map = [](const TypeDesc&, uint64_t handle,
                 const std::function<bool(uint64_t)>&) -> absl::StatusOr<InstanceRef> {
    return InstanceRef{handle, 1};
  };
  hooks.adopt = [](const TypeDesc&, const InstanceRef& where) { return where.worker_id + 1000; };
  const std::function<bool(uint64_t)> live = [](uint64_t) { return true; };
  uint64_t generation = 0;
  worker::v1::Call sent;
  sent.set_symbol_index(static_cast<uint32_t>(index));
  if (!EncodeCall(sig, args, hooks, live, &sent, &generation).ok()) sent.Clear();

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return 0;
  UniqueFd worker_end(fds[1]);
  SeqpacketTransport daemon_end{UniqueFd(fds[0])};
  while (in.remaining_bytes() > 0) {
    size_t length = in.ConsumeIntegral<uint16_t>();
    std::string packet = in.ConsumeBytesAsString(length);
    if (::send(worker_end.get(), packet.data(), packet.size(), MSG_DONTWAIT) < 0) break;
  }
  worker_end.reset();
  for (int i = 0; i < 64; ++i) {
    worker::v1::WorkerToDaemon reply;
    absl::Status received = daemon_end.Receive(&reply, absl::Now() + absl::Seconds(5), -1);
    if (!received.ok()) {
      FUZZ_CHECK(received.code() == absl::StatusCode::kDataLoss ||
                     received.code() == absl::StatusCode::kUnavailable,
                 received.ToString());
      if (received.code() == absl::StatusCode::kUnavailable) break;
      continue;
    }
    Decode(reply, sig, name, sent, hooks);
  }
  return 0;
}
