#include "daemon/worker/call_engine.h"

#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/signature.h"
#include "common/types.h"
#include "common/value_codec.h"
#include "ffibroker/v1/types.pb.h"
#include "ffibroker/worker/v1/worker.pb.h"
#include "absl/base/casts.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

v1::Value Int(int64_t v) {
  v1::Value value;
  value.set_int_value(v);
  return value;
}
v1::Value Uint(uint64_t v) {
  v1::Value value;
  value.set_uint_value(v);
  return value;
}
v1::Value F32(float v) {
  v1::Value value;
  value.set_f32_value(v);
  return value;
}
v1::Value F64(double v) {
  v1::Value value;
  value.set_f64_value(v);
  return value;
}
v1::Value Bool(bool v) {
  v1::Value value;
  value.set_bool_value(v);
  return value;
}
// The bit pattern of a float, for bit-exact comparisons.
inline uint64_t Bits(double d) { return absl::bit_cast<uint64_t>(d); }
inline uint32_t Bits(float f) { return absl::bit_cast<uint32_t>(f); }

// An Open of `path` declaring `decls` in order.
worker::v1::Open MakeOpen(const std::vector<std::string>& decls,
                          const std::string& path = FFIBROKER_SCALARS_LIB) {
  worker::v1::Open open;
  open.set_path(path);
  for (const std::string& text : decls) {
    absl::StatusOr<Declaration> decl = ParseDeclaration(text);
    EXPECT_TRUE(decl.ok()) << text << ": " << decl.status();
    if (!decl.ok()) continue;
    worker::v1::Symbol* symbol = open.add_symbols();
    symbol->set_name(decl->name);
    *symbol->mutable_signature() = decl->signature;
  }
  return open;
}

// Opens a single declaration, calls it with `args` (encoded by the codec)
// and decodes the result with the codec.
class Engine {
 public:
  explicit Engine(const std::vector<std::string>& decls) : open_(MakeOpen(decls)) {
    absl::StatusOr<std::unique_ptr<CallEngine>> engine = CallEngine::Open(open_);
    EXPECT_TRUE(engine.ok()) << engine.status();
    if (engine.ok()) engine_ = std::move(*engine);
  }

  absl::StatusOr<v1::Value> Call(uint32_t index, const std::vector<v1::Value>& args) {
    if (engine_ == nullptr) return absl::InternalError("engine did not open");
    absl::StatusOr<ResolvedSignature> sig =
        ResolveSignature(open_.symbols(index).signature(), ClassTable());
    if (!sig.ok()) return sig.status();
    worker::v1::Call call;
    call.set_symbol_index(index);
    for (size_t i = 0; i < args.size() && i < sig->params.size(); ++i) {
      absl::Status s = EncodeInline(*sig->params[i], args[i], call.add_args());
      if (!s.ok()) return s;
    }
    absl::StatusOr<worker::v1::Result> result = engine_->Call(call);
    if (!result.ok()) return result.status();
    last_errno_ = result->errno_value();
    return DecodeInline(*sig->result, result->value());
  }

  CallEngine* get() { return engine_.get(); }
  int last_errno() const { return last_errno_; }

 private:
  worker::v1::Open open_;
  std::unique_ptr<CallEngine> engine_;
  int last_errno_ = -1;
};

// Calls the one-argument function declared by `decl` with `arg`; returns
// the decoded result.
v1::Value CallOne(const std::string& decl, const v1::Value& arg) {
  Engine engine({decl});
  absl::StatusOr<v1::Value> r = engine.Call(0, {arg});
  EXPECT_TRUE(r.ok()) << decl << ": " << r.status();
  return r.ok() ? *r : v1::Value();
}

TEST(CallEngineTest, IntegerIdentities) {
  EXPECT_EQ(CallOne("i8 id_i8(i8)", Int(INT8_MIN)).int_value(), INT8_MIN);
  EXPECT_EQ(CallOne("i8 id_i8(i8)", Int(-1)).int_value(), -1);
  EXPECT_EQ(CallOne("u8 id_u8(u8)", Uint(UINT8_MAX)).uint_value(), UINT8_MAX);
  EXPECT_EQ(CallOne("i16 id_i16(i16)", Int(INT16_MIN)).int_value(), INT16_MIN);
  EXPECT_EQ(CallOne("u16 id_u16(u16)", Uint(UINT16_MAX)).uint_value(), UINT16_MAX);
  EXPECT_EQ(CallOne("i32 id_i32(i32)", Int(INT32_MIN)).int_value(), INT32_MIN);
  EXPECT_EQ(CallOne("u32 id_u32(u32)", Uint(UINT32_MAX)).uint_value(), UINT32_MAX);
  EXPECT_EQ(CallOne("i64 id_i64(i64)", Int(INT64_MIN)).int_value(), INT64_MIN);
  EXPECT_EQ(CallOne("u64 id_u64(u64)", Uint(UINT64_MAX)).uint_value(), UINT64_MAX);
  EXPECT_EQ(CallOne("isize id_isize(isize)", Int(INT64_MIN)).int_value(), INT64_MIN);
  EXPECT_EQ(CallOne("usize id_usize(usize)", Uint(UINT64_MAX)).uint_value(),
            UINT64_MAX);
}

TEST(CallEngineTest, BoolIdentityAndNegation) {
  v1::Value t = CallOne("bool id_bool(bool)", Bool(true));
  ASSERT_EQ(t.value_case(), v1::Value::kBoolValue);
  EXPECT_TRUE(t.bool_value());
  v1::Value f = CallOne("bool id_bool(bool)", Bool(false));
  ASSERT_EQ(f.value_case(), v1::Value::kBoolValue);
  EXPECT_FALSE(f.bool_value());
  EXPECT_FALSE(CallOne("bool not_bool(bool)", Bool(true)).bool_value());
  EXPECT_TRUE(CallOne("bool not_bool(bool)", Bool(false)).bool_value());
}

TEST(CallEngineTest, FloatIdentitiesAreBitExact) {
  const uint64_t doubles[] = {0x0000000000000001ull, 0x8000000000000000ull,
                              0x7ff8000000000123ull, 0x7fefffffffffffffull};
  for (uint64_t bits : doubles) {
    SCOPED_TRACE(bits);
    double d;
    std::memcpy(&d, &bits, sizeof d);
    v1::Value r = CallOne("f64 id_f64(f64)", F64(d));
    ASSERT_EQ(r.value_case(), v1::Value::kF64Value);
    EXPECT_EQ(Bits(r.f64_value()), bits);
  }
  const uint32_t floats[] = {0x00000001u, 0x80000000u, 0x7fc00123u, 0x3dcccccdu};
  for (uint32_t bits : floats) {
    SCOPED_TRACE(bits);
    float f;
    std::memcpy(&f, &bits, sizeof f);
    v1::Value r = CallOne("f32 id_f32(f32)", F32(f));
    ASSERT_EQ(r.value_case(), v1::Value::kF32Value);
    EXPECT_EQ(Bits(r.f32_value()), bits);
  }
}

TEST(CallEngineTest, ArithmeticProvesValuesArrive) {
  EXPECT_EQ(CallOne("i8 neg_i8(i8)", Int(5)).int_value(), -5);
  EXPECT_EQ(CallOne("u64 u64_minus_one(u64)", Uint(0)).uint_value(), UINT64_MAX);
  EXPECT_EQ(CallOne("i64 i64_plus_one(i64)", Int(-1)).int_value(), 0);
  EXPECT_EQ(CallOne("f32 half_f32(f32)", F32(3.0f)).f32_value(), 1.5f);
  EXPECT_EQ(CallOne("f64 f64_next_up(f64)", F64(1.0)).f64_value(),
            std::nextafter(1.0, 2.0));
  EXPECT_TRUE(CallOne("bool f64_is_negative_zero(f64)", F64(-0.0)).bool_value());
  EXPECT_FALSE(CallOne("bool f64_is_negative_zero(f64)", F64(0.0)).bool_value());
  EXPECT_TRUE(CallOne("bool f64_is_nan(f64)",
                      F64(std::numeric_limits<double>::quiet_NaN()))
                  .bool_value());
}

TEST(CallEngineTest, MixedRegisterClasses) {
  Engine engine({"f64 mix(i8 a, u16 b, i32 c, u64 d, f32 e, f64 f, bool g)"});
  absl::StatusOr<v1::Value> r =
      engine.Call(0, {Int(-5), Uint(65535), Int(-100000), Uint(uint64_t{1} << 40),
                      F32(0.5f), F64(0.25), Bool(true)});
  ASSERT_TRUE(r.ok()) << r.status();
  const double expected = -5.0 + 65535.0 + -100000.0 +
                          static_cast<double>(uint64_t{1} << 40) + 0.5 + 0.25 + 1000.0;
  EXPECT_EQ(r->f64_value(), expected);
  r = engine.Call(0, {Int(1), Uint(2), Int(3), Uint(4), F32(5.0f), F64(6.0), Bool(false)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->f64_value(), 21.0);
}

TEST(CallEngineTest, StackArguments) {
  Engine engine({"i64 sum10(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64)"});
  // Argument i contributes a distinct digit at decimal position i, so a
  // dropped, duplicated or swapped argument changes the result.
  std::vector<v1::Value> args;
  int64_t scale = 1;
  for (int i = 0; i < 10; ++i, scale *= 10) args.push_back(Int(scale * (i % 9 + 1)));
  absl::StatusOr<v1::Value> r = engine.Call(0, args);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->int_value(), 1987654321);
  r = engine.Call(0, std::vector<v1::Value>(10, Int(-1)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->int_value(), -10);
}

TEST(CallEngineTest, ResultsNativeCodeProduces) {
  Engine engine({"f64 make_neg_zero()", "f64 make_denormal()", "f64 make_nan()",
                 "u64 make_u64_max()", "i64 make_i64_min()", "f32 make_f32_denormal()"});
  absl::StatusOr<v1::Value> r = engine.Call(0, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Bits(r->f64_value()), Bits(-0.0));
  r = engine.Call(1, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Bits(r->f64_value()), 1u);
  r = engine.Call(2, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::isnan(r->f64_value()));
  r = engine.Call(3, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->uint_value(), UINT64_MAX);
  r = engine.Call(4, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->int_value(), INT64_MIN);
  r = engine.Call(5, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Bits(r->f32_value()), 1u);
}

TEST(CallEngineTest, StateAndVoidResults) {
  Engine engine({"void counter_reset()", "i32 counter_next()"});
  ASSERT_NE(engine.get(), nullptr);
  worker::v1::Call reset;
  reset.set_symbol_index(0);
  absl::StatusOr<worker::v1::Result> raw = engine.get()->Call(reset);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->value(), "");  // void: no bytes
  EXPECT_EQ(raw->errno_value(), 0);
  EXPECT_EQ(engine.Call(1, {}).value_or(v1::Value()).int_value(), 1);
  EXPECT_EQ(engine.Call(1, {}).value_or(v1::Value()).int_value(), 2);
  EXPECT_EQ(engine.last_errno(), 0);
}

TEST(CallEngineTest, ResultBytesHaveTheDeclaredSize) {
  Engine engine({"u8 id_u8(u8)", "i16 id_i16(i16)", "f32 id_f32(f32)"});
  ASSERT_NE(engine.get(), nullptr);
  worker::v1::Call call;
  call.add_args(std::string("\xfe", 1));
  absl::StatusOr<worker::v1::Result> r = engine.get()->Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->value(), "\xfe");
  call.set_symbol_index(1);
  call.set_args(0, std::string("\x34\x92", 2));
  r = engine.get()->Call(call);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->value(), std::string("\x34\x92", 2));
}

TEST(CallEngineTest, BadBoolResultIsCaughtByTheCodec) {
  Engine engine({"bool bad_bool()"});
  ASSERT_NE(engine.get(), nullptr);
  absl::StatusOr<worker::v1::Result> raw = engine.get()->Call(worker::v1::Call());
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->value(), "\x07");
  EXPECT_EQ(engine.Call(0, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CallEngineTest, MissingSymbolIsNotFound) {
  absl::StatusOr<std::unique_ptr<CallEngine>> engine =
      CallEngine::Open(MakeOpen({"i32 id_i32(i32)", "i32 no_such_function(i32)"}));
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kNotFound) << engine.status();
  EXPECT_TRUE(absl::StrContains(engine.status().message(), "no_such_function"))
      << engine.status();
}

TEST(CallEngineTest, MissingLibraryIsFailedPrecondition) {
  std::string tmpl = ::testing::TempDir() + "call_engine_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  absl::StatusOr<std::unique_ptr<CallEngine>> engine =
      CallEngine::Open(MakeOpen({"i32 id_i32(i32)"}, tmpl + "/libnothere.so"));
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition)
      << engine.status();
  ::rmdir(tmpl.c_str());
}

TEST(CallEngineTest, UnpreparableSignatureIsInvalidArgument) {
  worker::v1::Open open = MakeOpen({"i32 id_i32(i32)"});
  open.mutable_symbols(0)->mutable_signature()->clear_result();
  EXPECT_EQ(CallEngine::Open(open).status().code(), absl::StatusCode::kInvalidArgument);
  open = MakeOpen({"i32 id_i32(i32)"});
  open.mutable_symbols(0)->mutable_signature()->mutable_params(0)->mutable_type()
      ->set_scalar(static_cast<v1::Scalar>(99));
  EXPECT_EQ(CallEngine::Open(open).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CallEngineTest, EmptySymbolListOpens) {
  absl::StatusOr<std::unique_ptr<CallEngine>> engine = CallEngine::Open(MakeOpen({}));
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->Call(worker::v1::Call()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CallEngineTest, MalformedCallsAreInvalidArgument) {
  Engine engine({"u64 id_u64(u64)", "u8 id_u8(u8)"});
  ASSERT_NE(engine.get(), nullptr);
  auto call = [](uint32_t index, std::vector<std::string> args) {
    worker::v1::Call c;
    c.set_symbol_index(index);
    for (std::string& a : args) c.add_args(std::move(a));
    return c;
  };
  const std::string u64(8, '\x01'), u8(1, '\x01');
  ASSERT_TRUE(engine.get()->Call(call(0, {u64})).ok());
  ASSERT_TRUE(engine.get()->Call(call(1, {u8})).ok());
  for (const worker::v1::Call& bad : {
           call(2, {u8}),            // index == symbol count
           call(1000000, {u8}),      // far out
           call(0, {}),              // too few
           call(0, {u64, u64}),      // too many
           call(0, {std::string(4, '\x01')}),  // short
           call(1, {u64}),           // long
           call(1, {""}),            // empty
       }) {
    SCOPED_TRACE(bad.ShortDebugString());
    EXPECT_EQ(engine.get()->Call(bad).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

// dlsym(handle) also searches the library's dependencies; only the
// library's own definitions count unless the open allows dependencies.
TEST(CallEngineTest, SymbolsOfDependenciesAreNotFound) {
  worker::v1::Open open = MakeOpen({"i32 getpid()", "i32 id_i32(i32)"});
  absl::StatusOr<std::unique_ptr<CallEngine>> engine = CallEngine::Open(open);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kNotFound) << engine.status();
  EXPECT_TRUE(absl::StrContains(engine.status().message(), "defined in a dependency"))
      << engine.status();
  open.set_allow_dependency_symbols(true);
  EXPECT_TRUE(CallEngine::Open(open).ok());
}

}  // namespace
}  // namespace ffibroker
