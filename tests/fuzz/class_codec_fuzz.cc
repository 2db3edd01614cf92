// Fuzz target: RegisterClass's layout (ClassTable::Register, common/
// type_table.h) and the value codec in both directions (common/
// value_codec.h, daemon/call_codec.h) for random classes and values.
//
// Input: drives FuzzedDataProvider: a few random classes, then values.
// Invariants: every failure is a Status; an accepted layout has every field
// inside the class, in order, aligned, and the class size a multiple of its
// alignment; a client Value the codec accepts encodes to exactly the type's
// size and decodes back to a Value that encodes to the same bytes; native
// bytes the codec accepts decode to a Value that encodes and decodes to
// the same Value; EncodeCall fills one argument per parameter, scalars and
// classes at their native size.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/type_table.h"
#include "common/value_codec.h"
#include "daemon/call_codec.h"
#include "tests/fuzz/fuzz_values.h"

namespace ffibroker {
namespace {

void CheckLayout(const v1::ClassDefinition& def, const v1::ClassLayout& layout,
                 const TypeDesc& klass) {
  const std::string what = def.DebugString();
  FUZZ_CHECK(layout.size() == klass.size, what);
  if (klass.opaque) return;
  FUZZ_CHECK(klass.size > 0 && klass.align > 0 && klass.size % klass.align == 0, what);
  FUZZ_CHECK(klass.size <= kMaxClassBytes, what);
  FUZZ_CHECK(layout.fields_size() == def.fields_size(), what);
  uint64_t end = 0;
  for (const FieldDesc& field : klass.fields) {
    FUZZ_CHECK(field.offset >= end, what);
    FUZZ_CHECK(field.type->align > 0 && field.offset % field.type->align == 0, what);
    FUZZ_CHECK(field.offset <= klass.size && field.type->size <= klass.size - field.offset, what);
    end = field.offset + field.type->size;
    FUZZ_CHECK(end + field.padding_after <= klass.size, what);
  }
}

// Client Value -> native bytes -> Value -> the same bytes.
void CheckEncodeRoundTrip(FuzzedDataProvider& in, const TypeDesc& type) {
  v1::Value value = fuzz::RandomValue(in, type);
  std::string bytes;
  absl::Status encoded = EncodeInline(type, value, &bytes);
  if (!encoded.ok()) {
    FUZZ_CHECK(encoded.code() == absl::StatusCode::kInvalidArgument, encoded.ToString());
    FUZZ_CHECK(bytes.empty(), "a failed encode left bytes behind");
    return;
  }
  FUZZ_CHECK(bytes.size() == type.size, type.name);
  absl::StatusOr<v1::Value> decoded = DecodeInline(type, bytes);
  FUZZ_CHECK(decoded.ok(), type.name + ": " + decoded.status().ToString());
  std::string again;
  absl::Status reencoded = EncodeInline(type, *decoded, &again);
  FUZZ_CHECK(reencoded.ok(), type.name + ": " + reencoded.ToString());
  FUZZ_CHECK(again == bytes, type.name + ": " + value.DebugString());

  // A partial write of the fields (WriteInstance) keeps the other bytes.
  if (type.kind == TypeKind::kClass && !type.opaque) {
    v1::Value patch = fuzz::RandomValue(in, type);
    if (patch.has_struct_value()) {
      std::string target = bytes;
      absl::Status written = EncodeFields(type, patch.struct_value(), false, &target);
      FUZZ_CHECK(target.size() == type.size, type.name);
      if (written.ok()) FUZZ_CHECK(DecodeInline(type, target).ok(), type.name);
    }
  }
}

// Native bytes (what a worker reports) -> Value -> bytes -> the same Value.
void CheckDecodeRoundTrip(FuzzedDataProvider& in, const TypeDesc& type) {
  std::string bytes = in.ConsumeBytesAsString(type.size);
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) bytes.resize(in.ConsumeIntegralInRange<size_t>(0, type.size + 2));
  absl::StatusOr<v1::Value> decoded = DecodeInline(type, bytes);
  if (!decoded.ok()) {
    FUZZ_CHECK(decoded.status().code() == absl::StatusCode::kInvalidArgument,
               decoded.status().ToString());
    return;
  }
  FUZZ_CHECK(bytes.size() == type.size, type.name);
  std::string encoded;
  absl::Status status = EncodeInline(type, *decoded, &encoded);
  FUZZ_CHECK(status.ok(), type.name + ": " + status.ToString());
  absl::StatusOr<v1::Value> again = DecodeInline(type, encoded);
  FUZZ_CHECK(again.ok() && again->SerializeAsString() == decoded->SerializeAsString(), type.name);
}

// A random signature over the session's classes, arguments for it, and the
// daemon's EncodeCall with hooks standing in for the session's handles.
void CheckCall(FuzzedDataProvider& in, const ClassTable& table,
               const std::vector<std::string>& names) {
  v1::Signature proto;
  *proto.mutable_result() = fuzz::RandomType(in, names);
  int n = in.ConsumeIntegralInRange<int>(0, 5);
  for (int i = 0; i < n; ++i) {
    v1::Parameter* p = proto.add_params();
    p->set_name(in.ConsumeBool() ? "n" : "p" + std::to_string(i));
    *p->mutable_type() = fuzz::RandomType(in, names);
  }
  if (in.ConsumeIntegralInRange<int>(0, 7) == 0) {
    proto.set_convention(v1::Signature::CONVENTION_FFI_RETURN);
  }
  absl::StatusOr<ResolvedSignature> sig = ResolveSignature(proto, table);
  if (!sig.ok()) {
    FUZZ_CHECK(sig.status().code() == absl::StatusCode::kInvalidArgument, sig.status().ToString());
    return;
  }
  google::protobuf::RepeatedPtrField<v1::Value> args;
  for (const TypeRef& param : sig->params) *args.Add() = fuzz::RandomValue(in, *param);
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) args.Add();
  InstanceHooks hooks;
  hooks.map = [&](const TypeDesc&, uint64_t handle,
                  const std::function<bool(uint64_t)>&) -> absl::StatusOr<InstanceRef> {
    if (handle % 3 == 0) return absl::NotFoundError("no such handle");
    return InstanceRef{handle, 1};
  };
  hooks.adopt = [](const TypeDesc&, const InstanceRef& where) { return where.worker_id + 1; };
  hooks.max_buffer_bytes = 64;
  hooks.max_string_bytes = 32;
  const std::function<bool(uint64_t)> live = [](uint64_t) { return true; };
  uint64_t generation = 0;
  worker::v1::Call call;
  absl::Status encoded = EncodeCall(*sig, args, hooks, live, &call, &generation);
  if (!encoded.ok()) return;
  FUZZ_CHECK(call.args_size() == static_cast<int>(sig->params.size()), proto.DebugString());
  for (size_t i = 0; i < sig->params.size(); ++i) {
    const TypeDesc& param = *sig->params[i];
    if (param.is_inline()) {
      FUZZ_CHECK(call.args(i).size() == param.size, proto.DebugString());
    }
  }
}

}  // namespace
}  // namespace ffibroker

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ffibroker;
  FuzzedDataProvider in(data, size);
  ClassTable table;
  std::vector<std::string> names;
  int classes = in.ConsumeIntegralInRange<int>(1, 4);
  for (int i = 0; i < classes; ++i) {
    std::string name = in.ConsumeIntegralInRange<int>(0, 31) == 0 ? in.ConsumeRandomLengthString(8)
                                                                   : "C" + std::to_string(i);
    v1::ClassDefinition def = fuzz::RandomClass(in, name, names);
    absl::StatusOr<v1::ClassLayout> layout = table.Register(def);
    if (!layout.ok()) continue;
    names.push_back(def.name());
    TypeRef klass = table.FindClass(def.name());
    FUZZ_CHECK(klass != nullptr, def.name());
    CheckLayout(def, *layout, *klass);
  }
  while (in.remaining_bytes() > 0) {
    v1::Type type = fuzz::RandomType(in, names);
    absl::StatusOr<TypeRef> resolved = table.Resolve(type, TypeUse::kField);
    int what = in.ConsumeIntegralInRange<int>(0, 2);
    if (what == 2) {
      CheckCall(in, table, names);
    } else if (resolved.ok() && (*resolved)->is_inline() && !(*resolved)->opaque) {
      if (what == 0) {
        CheckEncodeRoundTrip(in, **resolved);
      } else {
        CheckDecodeRoundTrip(in, **resolved);
      }
    }
  }
  return 0;
}
