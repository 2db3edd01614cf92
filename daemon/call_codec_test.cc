#include "daemon/call_codec.h"

#include <cstdint>
#include <string>
#include <vector>

#include "common/arg_kinds.h"
#include "common/signature.h"
#include "common/type_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

v1::Value Int(int64_t v) { v1::Value x; x.set_int_value(v); return x; }
v1::Value Uint(uint64_t v) { v1::Value x; x.set_uint_value(v); return x; }
v1::Value F64(double v) { v1::Value x; x.set_f64_value(v); return x; }
v1::Value Bool(bool v) { v1::Value x; x.set_bool_value(v); return x; }
v1::Value Bytes(const std::string& v) { v1::Value x; x.set_bytes_value(v); return x; }
v1::Value Handle(uint64_t v) { v1::Value x; x.set_handle_value(v); return x; }
v1::Value Null() { v1::Value x; x.set_null_value(true); return x; }

google::protobuf::RepeatedPtrField<v1::Value> Values(std::vector<v1::Value> values) {
  google::protobuf::RepeatedPtrField<v1::Value> out;
  for (v1::Value& v : values) *out.Add() = std::move(v);
  return out;
}

// A session with class Point whose instance handle H lives at worker id
// 100 + H in worker generation H / 10 (so handles 11 and 12 share a worker,
// 21 does not); every generation is live.
class CallCodecTest : public ::testing::Test {
 protected:
  CallCodecTest() {
    absl::StatusOr<v1::ClassDefinition> def = ParseClass("Point { f64 x; f64 y; }");
    EXPECT_TRUE(def.ok()) << def.status();
    EXPECT_TRUE(classes_.Register(*def).ok());
    hooks_.map = [](const TypeDesc& klass, uint64_t handle,
                    const std::function<bool(uint64_t)>& live) -> absl::StatusOr<InstanceRef> {
      if (klass.name != "Point") return absl::InternalError("not a Point");
      if (!live(handle / 10)) return absl::FailedPreconditionError("stale");
      return InstanceRef{100 + handle, handle / 10};
    };
    hooks_.adopt = [this](const TypeDesc&, const InstanceRef& where) {
      adopted_.push_back(where);
      return uint64_t{7};
    };
  }

  ResolvedSignature Resolve(const std::string& text) {
    absl::StatusOr<Declaration> decl = ParseDeclaration(text, {"Point"});
    EXPECT_TRUE(decl.ok()) << text << ": " << decl.status();
    absl::StatusOr<ResolvedSignature> sig = ResolveSignature(decl->signature, classes_);
    EXPECT_TRUE(sig.ok()) << text << ": " << sig.status();
    return *sig;
  }

  absl::Status Encode(const ResolvedSignature& sig, std::vector<v1::Value> args,
                      worker::v1::Call* out, uint64_t* generation = nullptr) {
    uint64_t any = 0;
    return EncodeCall(sig, Values(std::move(args)), hooks_, live_, out,
                      generation != nullptr ? generation : &any);
  }

  ClassTable classes_;
  InstanceHooks hooks_;
  std::function<bool(uint64_t)> live_ = [](uint64_t) { return true; };
  std::vector<InstanceRef> adopted_;
};

TEST_F(CallCodecTest, CountMismatch) {
  worker::v1::Call call;
  absl::Status s = Encode(Resolve("void f(u8 a)"), {Uint(1), Uint(2)}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "expected 1 argument, got 2");
  s = Encode(Resolve("void f(u8 a, u8 b)"), {}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "expected 2 arguments, got 0");
}

TEST_F(CallCodecTest, ErrorsNameTheArgument) {
  worker::v1::Call call;
  absl::Status s = Encode(Resolve("void f(i32 a, u8 count)"), {Int(1), Uint(300)}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "argument 2 (count: u8): 300 is out of range for u8 (0..255)");
  s = Encode(Resolve("void f(u8)"), {F64(1.0)}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("argument 1 (u8): ", 0), 0u) << s.message();
}

TEST_F(CallCodecTest, EncodesEachInlineArgument) {
  worker::v1::Call call;
  ASSERT_TRUE(Encode(Resolve("f64 f(i8 a, f64 b, bool c)"), {Int(-1), F64(2.5), Bool(true)}, &call)
                  .ok());
  ASSERT_EQ(call.args_size(), 3);
  EXPECT_EQ(call.args(0), "\xff");
  double d = 2.5;
  EXPECT_EQ(call.args(1), std::string(reinterpret_cast<const char*>(&d), 8));
  EXPECT_EQ(call.args(2), "\x01");
  EXPECT_EQ(call.arg_null_size(), 0);
}

TEST_F(CallCodecTest, HandlesBecomeWorkerIdsOfOneWorker) {
  ResolvedSignature sig = Resolve("void f(Point* a, Point*? b)");
  worker::v1::Call call;
  uint64_t generation = 0;
  ASSERT_TRUE(Encode(sig, {Handle(11), Handle(12)}, &call, &generation).ok());
  EXPECT_EQ(call.args(0), InstanceIdBytes(111));
  EXPECT_EQ(call.args(1), InstanceIdBytes(112));
  EXPECT_EQ(generation, 1u);

  call.Clear();
  ASSERT_TRUE(Encode(sig, {Handle(11), Null()}, &call).ok());
  EXPECT_EQ(call.args(1), InstanceIdBytes(0));

  call.Clear();
  absl::Status s = Encode(sig, {Handle(11), Handle(21)}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "argument 2 (b: Point*?): instance handle 21 lives in another worker of the pool "
            "than the call's other instances (one call runs on one worker)");

  call.Clear();
  s = Encode(sig, {Null(), Null()}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("null is not allowed (declare 'Point*?'"), absl::string_view::npos)
      << s.message();

  // The library's liveness reaches the session's hook.
  live_ = [](uint64_t generation) { return generation != 1; };
  call.Clear();
  EXPECT_EQ(Encode(sig, {Handle(11), Null()}, &call).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(CallCodecTest, StringsAndNulls) {
  ResolvedSignature sig = Resolve("void f(cstr a, cstr? b)");
  worker::v1::Call call;
  v1::Value text;
  text.set_string_value("héllo");
  ASSERT_TRUE(Encode(sig, {text, Null()}, &call).ok());
  EXPECT_EQ(call.args(0), "héllo");
  EXPECT_EQ(call.args(1), "");
  ASSERT_EQ(call.arg_null_size(), 1);
  EXPECT_EQ(call.arg_null(0), 1u);

  hooks_.max_string_bytes = 3;
  call.Clear();
  absl::Status s = Encode(sig, {text, Null()}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("limits.max_string_bytes 3"), absl::string_view::npos) << s.message();
}

TEST_F(CallCodecTest, BuffersFollowTheOutBufferLengthRule) {
  ResolvedSignature sig = Resolve("void f(in u8[n] i, out u8[n] o, inout u8[2] io, u32 n)");
  worker::v1::Call call;
  ASSERT_TRUE(Encode(sig, {Bytes("abc"), v1::Value(), Bytes("xy"), Uint(3)}, &call).ok());
  EXPECT_EQ(call.args(0), "abc");
  EXPECT_EQ(call.args(1), OutBufferArg(3));
  EXPECT_EQ(call.args(2), "xy");

  call.Clear();
  absl::Status s = Encode(sig, {Bytes("abcd"), v1::Value(), Bytes("xy"), Uint(3)}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "argument 1 (i: in u8[n]): 4 bytes given but the buffer's length is 3 "
            "(parameter 'n')");

  hooks_.max_buffer_bytes = 2;
  call.Clear();
  s = Encode(sig, {Bytes("abc"), v1::Value(), Bytes("xy"), Uint(3)}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("limits.max_buffer_bytes 2"), absl::string_view::npos)
      << s.message();
}

TEST_F(CallCodecTest, TheReplyMustFitTheCallPayload) {
  ResolvedSignature sig = Resolve("void f(out u8[n] a, out u8[n] b, u32 n)");
  worker::v1::Call call;
  absl::Status s = Encode(sig, {v1::Value(), v1::Value(), Uint(kMaxBufferLength)}, &call);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("the call's results would exceed the call payload limit"),
            absl::string_view::npos)
      << s.message();
}

TEST_F(CallCodecTest, DecodeChecksOutputSizesAndAdoptsInstances) {
  ResolvedSignature sig = Resolve("borrowed Point* f(out u8[4] o, inout u8[2] io)");
  worker::v1::Call sent;
  ASSERT_TRUE(Encode(sig, {v1::Value(), Bytes("xy")}, &sent).ok());

  worker::v1::Result result;
  result.set_value(InstanceIdBytes(55));
  result.add_outputs("abcd");
  result.add_outputs("zz");
  bool violation = true;
  absl::StatusOr<v1::CallResponse> response =
      DecodeCallResult("f", sig, sent, result, hooks_, /*generation=*/3, &violation);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_FALSE(violation);
  EXPECT_EQ(response->result().handle_value(), 7u);
  ASSERT_EQ(adopted_.size(), 1u);
  EXPECT_EQ(adopted_[0].worker_id, 55u);
  EXPECT_EQ(adopted_[0].generation, 3u);
  ASSERT_EQ(response->outputs_size(), 2);
  EXPECT_EQ(response->outputs(0).param_index(), 0u);
  EXPECT_EQ(response->outputs(0).value().bytes_value(), "abcd");
  EXPECT_EQ(response->outputs(1).param_index(), 1u);

  // An out buffer of another size than its length is a lie, and the
  // instance of a lying reply never becomes a handle (it would hold an
  // instance slot until the session ended).
  result.set_outputs(0, "abc");
  response = DecodeCallResult("f", sig, sent, result, hooks_, 3, &violation);
  EXPECT_TRUE(violation);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(response.status().message(), "sent an output buffer of the wrong size");
  EXPECT_EQ(adopted_.size(), 1u);
  result.add_outputs("extra");
  result.set_outputs(0, "abcd");
  response = DecodeCallResult("f", sig, sent, result, hooks_, 3, &violation);
  EXPECT_EQ(response.status().message(), "sent too many output buffers");
  EXPECT_EQ(adopted_.size(), 1u);
  result.mutable_outputs()->RemoveLast();

  // So is a handle that is not 8 bytes.
  result.set_outputs(0, "abcd");
  result.set_value("1234");
  response = DecodeCallResult("f", sig, sent, result, hooks_, 3, &violation);
  EXPECT_TRUE(violation);
  EXPECT_EQ(response.status().message(), "sent 4 bytes for a handle");

  // NULL is null, and adopts nothing.
  result.set_value(InstanceIdBytes(0));
  const size_t adopted = adopted_.size();
  response = DecodeCallResult("f", sig, sent, result, hooks_, 3, &violation);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->result().null_value());
  EXPECT_EQ(adopted_.size(), adopted);
}

// A callback invocation's arguments are decoded by kind; its class
// pointers are listed for the caller to adopt, never made handles here, so
// an invocation with a bad later argument leaves no handle behind.
TEST_F(CallCodecTest, CallbackArgumentsListInstancesAndNameTheBadArgument) {
  absl::StatusOr<Declaration> decl =
      ParseDeclaration("void cb(borrowed Point*? p, cstr? s, i32 n)", {"Point"});
  ASSERT_TRUE(decl.ok()) << decl.status();
  absl::StatusOr<ResolvedSignature> sig = ResolveSignatureAs(
      decl->signature, classes_, TypeUse::kCallbackParam, TypeUse::kCallbackResult);
  ASSERT_TRUE(sig.ok()) << sig.status();
  worker::v1::CallbackInvoke invoke;
  invoke.add_args(InstanceIdBytes(55));
  invoke.add_args("hi");
  int32_t n = -3;
  invoke.add_args(std::string(reinterpret_cast<const char*>(&n), sizeof n));
  absl::StatusOr<DecodedInvocation> decoded = DecodeCallbackArgs("cb", *sig, invoke);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->values.size(), 3u);
  EXPECT_EQ(decoded->values[1].string_value(), "hi");
  EXPECT_EQ(decoded->values[2].int_value(), -3);
  ASSERT_EQ(decoded->instances.size(), 1u);
  EXPECT_EQ(decoded->instances[0], (std::pair<size_t, uint64_t>{0, 55}));
  EXPECT_TRUE(adopted_.empty());

  invoke.set_args(1, "\xff\xfe");
  decoded = DecodeCallbackArgs("cb", *sig, invoke);
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(decoded.status().message()),
              ::testing::AllOf(::testing::HasSubstr("the library called cb with"),
                               ::testing::HasSubstr("not valid UTF-8")));

  invoke.set_args(1, "ok");
  invoke.set_args(0, InstanceIdBytes(0));  // NULL is null, and lists nothing
  decoded = DecodeCallbackArgs("cb", *sig, invoke);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->values[0].null_value());
  EXPECT_TRUE(decoded->instances.empty());
}

}  // namespace
}  // namespace ffibroker
