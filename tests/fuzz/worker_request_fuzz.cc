// Fuzz target: the worker's request decoding, in-process (daemon/worker/
// call_engine.h): what a compromised daemon, or a daemon bug, could send.
// The engine opens the native test library tests/native/classes.c (the
// functions of classes_session.cc), then serves a random sequence of Call
// and instance/static requests: mostly valid ones encoded by the daemon's
// own EncodeCall, then mutated (sizes, counts, ids, offsets, indexes).
//
// Invariants: every request gets a Status or a result and never touches
// memory outside its frame or a live instance (AddressSanitizer); a read
// returns exactly the bytes asked for.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "daemon/call_codec.h"
#include "daemon/worker/call_engine.h"
#include "tests/fuzz/classes_session.h"
#include "tests/fuzz/fuzz_values.h"

namespace ffibroker {
namespace {

// Replaces `bytes` with a copy of a different size, now and then.
void MaybeResize(FuzzedDataProvider& in, std::string* bytes) {
  if (in.ConsumeIntegralInRange<int>(0, 7) != 0) return;
  size_t size = in.ConsumeIntegralInRange<size_t>(0, bytes->size() + 16);
  bytes->resize(size, static_cast<char>(in.ConsumeIntegral<uint8_t>()));
}

uint64_t PickId(FuzzedDataProvider& in, const std::vector<uint64_t>& ids) {
  if (ids.empty() || in.ConsumeIntegralInRange<int>(0, 7) == 0) return in.ConsumeIntegral<uint64_t>();
  return ids[in.ConsumeIntegralInRange<size_t>(0, ids.size() - 1)];
}

void FuzzCall(FuzzedDataProvider& in, CallEngine& engine, std::vector<uint64_t>& ids) {
  const fuzz::ClassesSession& s = fuzz::Classes();
  size_t index = in.ConsumeIntegralInRange<size_t>(0, s.symbols.size() - 1);
  const ResolvedSignature& sig = s.symbols[index];
  google::protobuf::RepeatedPtrField<v1::Value> args;
  for (const TypeRef& param : sig.params) *args.Add() = fuzz::RandomValue(in, *param);
  InstanceHooks hooks;
  hooks.map = [&](const TypeDesc&, uint64_t,
                  const std::function<bool(uint64_t)>&) -> absl::StatusOr<InstanceRef> {
    return InstanceRef{PickId(in, ids), 1};
  };
  hooks.adopt = [](const TypeDesc&, const InstanceRef& where) { return where.worker_id; };
  hooks.max_buffer_bytes = 4096;
  const std::function<bool(uint64_t)> live = [](uint64_t) { return true; };
  uint64_t generation = 0;
  worker::v1::DaemonToWorker request;
  worker::v1::Call* call = request.mutable_call();
  call->set_symbol_index(static_cast<uint32_t>(index));
  if (!EncodeCall(sig, args, hooks, live, call, &generation).ok()) return;
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0:
      call->set_symbol_index(in.ConsumeIntegral<uint32_t>());
      break;
    case 1:
      if (call->args_size() > 0) {
        MaybeResize(in, call->mutable_args(in.ConsumeIntegralInRange<int>(0, call->args_size() - 1)));
        }
      break;
    case 2:
      call->add_args(in.ConsumeRandomLengthString(16));
      break;
    case 3:
      call->add_arg_null(in.ConsumeIntegral<uint32_t>() % 40);
      break;
    default:
      break;
  }
  absl::StatusOr<worker::v1::Result> result = engine.Call(request.call());
  // Every handle the engine registered, owned or borrowed, of the function
  // actually called (the mutation may have changed the index): all are
  // freed at the end of the input, so the engine's instance table does not
  // grow over a run and every input frees what it allocates (libFuzzer's
  // leak detection stays on and meaningful).
  if (!result.ok() || call->symbol_index() >= s.symbols.size()) return;
  const ResolvedSignature& called = s.symbols[call->symbol_index()];
  if (called.result->kind == TypeKind::kHandle && !result->null_result()) {
    // An FfiReturn failure has no value; else a handle is its 8-byte id.
    if (result->ffi_return() != 0 && result->value().empty()) return;
    FUZZ_CHECK(result->value().size() == sizeof(uint64_t), call->DebugString());
    uint64_t id;
    memcpy(&id, result->value().data(), sizeof id);
    if (id != 0) ids.push_back(id);
  }
}

void FuzzInstance(FuzzedDataProvider& in, CallEngine& engine, std::vector<uint64_t>& ids) {
  const fuzz::ClassesSession& s = fuzz::Classes();
  switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: {
      worker::v1::InstanceNew req;
      req.set_class_index(in.ConsumeIntegralInRange<uint32_t>(0, s.classes.classes().size()));
      const TypeRef klass = req.class_index() < s.classes.classes().size()
                                ? s.classes.classes()[req.class_index()]
                                : nullptr;
      std::string init = in.ConsumeBytesAsString(klass ? klass->size : 8);
      MaybeResize(in, &init);
      req.set_init(init);
      absl::StatusOr<worker::v1::InstanceResult> r = engine.NewInstance(req);
      if (r.ok()) ids.push_back(r->instance_id());
      break;
    }
    case 1: {
      worker::v1::InstanceRead req;
      req.set_instance_id(PickId(in, ids));
      req.set_offset(in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 64)
                                      : in.ConsumeIntegral<uint64_t>());
      req.set_size(in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 64)
                                    : in.ConsumeIntegral<uint64_t>());
      absl::StatusOr<worker::v1::InstanceResult> r = engine.ReadInstance(req);
      if (r.ok()) FUZZ_CHECK(r->data().size() == req.size(), req.DebugString());
      break;
    }
    case 2: {
      worker::v1::InstanceWrite req;
      req.set_instance_id(PickId(in, ids));
      req.set_offset(in.ConsumeBool() ? in.ConsumeIntegralInRange<uint64_t>(0, 64)
                                      : in.ConsumeIntegral<uint64_t>());
      req.set_data(in.ConsumeRandomLengthString(72));
      (void)engine.WriteInstance(req);
      break;
    }
    case 3: {
      worker::v1::InstanceFree req;
      req.set_instance_id(PickId(in, ids));
      (void)engine.FreeInstance(req);
      break;
    }
    default: {
      worker::v1::StaticAccess req;
      req.set_index(in.ConsumeIntegralInRange<uint32_t>(0, s.statics.size()));
      // Only statics declared `mut` are written: the worker is not told
      // which are (the daemon refuses the rest), and writing a const one
      // faults in the library's read-only data, which only ends the worker.
      req.set_write(in.ConsumeBool() && req.index() < s.statics.size() && s.statics_mutable[req.index()]);
      req.set_probe(in.ConsumeIntegralInRange<int>(0, 7) == 0);
      req.set_probe_symbol(in.ConsumeIntegralInRange<int>(0, 7) == 0);
      size_t size = req.index() < s.statics.size() ? s.statics[req.index()]->size : 4;
      std::string data = in.ConsumeBytesAsString(size);
      MaybeResize(in, &data);
      req.set_data(data);
      absl::StatusOr<worker::v1::InstanceResult> r = engine.AccessStatic(req);
      if (r.ok() && !req.write() && !req.probe() && !req.probe_symbol()) {
        FUZZ_CHECK(r->data().size() == size, req.DebugString());
      }
      break;
    }
  }
}

}  // namespace
}  // namespace ffibroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ffibroker;
  static CallEngine* engine = [] {
    absl::StatusOr<std::unique_ptr<CallEngine>> opened = CallEngine::Open(fuzz::Classes().open);
    FUZZ_CHECK(opened.ok(), opened.status().ToString());
    return opened->release();
  }();
  FuzzedDataProvider in(data, size);
  std::vector<uint64_t> ids;
  while (in.remaining_bytes() > 0) {
    if (in.ConsumeBool()) {
      FuzzCall(in, *engine, ids);
    } else {
      FuzzInstance(in, *engine, ids);
    }
  }
  // The worker's instances live as long as the worker: free this input's.
  for (uint64_t id : ids) {
    worker::v1::InstanceFree req;
    req.set_instance_id(id);
    (void)engine->FreeInstance(req);
  }
  return 0;
}
