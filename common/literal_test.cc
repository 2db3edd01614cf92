#include "common/literal.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

#include "common/types.h"
#include "ffibroker/v1/types.pb.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

v1::Type T(v1::Scalar s) { return MakeScalarType(s); }

uint64_t Bits(double d) {
  uint64_t b;
  std::memcpy(&b, &d, sizeof b);
  return b;
}
uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

v1::Value Parsed(v1::Scalar s, absl::string_view text) {
  absl::StatusOr<v1::Value> v = ParseLiteral(T(s), text);
  EXPECT_TRUE(v.ok()) << text << ": " << v.status();
  return v.ok() ? *v : v1::Value();
}

void ExpectRejected(v1::Scalar s, absl::string_view text,
                    std::initializer_list<const char*> needles = {}) {
  SCOPED_TRACE(std::string(text));
  absl::StatusOr<v1::Value> v = ParseLiteral(T(s), text);
  ASSERT_FALSE(v.ok()) << v->DebugString();
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* needle : needles) {
    EXPECT_NE(v.status().message().find(needle), absl::string_view::npos)
        << "'" << v.status().message() << "' lacks '" << needle << "'";
  }
}

TEST(ParseLiteralTest, DecimalIntegers) {
  v1::Value v = Parsed(v1::SCALAR_I32, "42");
  ASSERT_TRUE(v.value_case() == v1::Value::kUintValue ||
              v.value_case() == v1::Value::kIntValue);
  EXPECT_EQ(v.value_case() == v1::Value::kUintValue ? v.uint_value()
                                                    : static_cast<uint64_t>(v.int_value()),
            42u);
  v = Parsed(v1::SCALAR_I32, "-17");
  ASSERT_EQ(v.value_case(), v1::Value::kIntValue);
  EXPECT_EQ(v.int_value(), -17);
  v = Parsed(v1::SCALAR_U8, "255");
  ASSERT_EQ(v.value_case(), v1::Value::kUintValue);
  EXPECT_EQ(v.uint_value(), 255u);
  v = Parsed(v1::SCALAR_U8, "+7");
  EXPECT_EQ(v.uint_value(), 7u);
  v = Parsed(v1::SCALAR_I8, "-128");
  EXPECT_EQ(v.int_value(), -128);
}

TEST(ParseLiteralTest, SixtyFourBitExtremes) {
  v1::Value v = Parsed(v1::SCALAR_U64, "18446744073709551615");
  ASSERT_EQ(v.value_case(), v1::Value::kUintValue);
  EXPECT_EQ(v.uint_value(), UINT64_MAX);
  v = Parsed(v1::SCALAR_I64, "-9223372036854775808");
  ASSERT_EQ(v.value_case(), v1::Value::kIntValue);
  EXPECT_EQ(v.int_value(), INT64_MIN);
  EXPECT_EQ(FormatValue(Parsed(v1::SCALAR_I64, "9223372036854775807")),
            "9223372036854775807");
  ExpectRejected(v1::SCALAR_U64, "18446744073709551616");
  ExpectRejected(v1::SCALAR_I64, "-9223372036854775809");
  ExpectRejected(v1::SCALAR_I64, "9223372036854775808", {"i64"});
}

TEST(ParseLiteralTest, HexIntegers) {
  EXPECT_EQ(Parsed(v1::SCALAR_U8, "0xff").uint_value(), 255u);
  EXPECT_EQ(Parsed(v1::SCALAR_U32, "0XDEADbeef").uint_value(), 0xdeadbeefu);
  EXPECT_EQ(Parsed(v1::SCALAR_U64, "0xffffffffffffffff").uint_value(), UINT64_MAX);
  v1::Value v = Parsed(v1::SCALAR_I8, "-0x80");
  ASSERT_EQ(v.value_case(), v1::Value::kIntValue);
  EXPECT_EQ(v.int_value(), -128);
  ExpectRejected(v1::SCALAR_U8, "0x100", {"u8"});
  ExpectRejected(v1::SCALAR_U8, "0x");
  ExpectRejected(v1::SCALAR_U8, "0xg1");
}

TEST(ParseLiteralTest, IntegerRejections) {
  ExpectRejected(v1::SCALAR_U8, "300", {"300", "u8"});
  ExpectRejected(v1::SCALAR_U32, "-1", {"-1", "u32"});
  ExpectRejected(v1::SCALAR_I32, "1.5", {"1.5", "i32"});
  ExpectRejected(v1::SCALAR_I32, "abc", {"abc", "i32"});
  ExpectRejected(v1::SCALAR_I32, "");
  ExpectRejected(v1::SCALAR_I32, "-");
  ExpectRejected(v1::SCALAR_I32, " 1");
  ExpectRejected(v1::SCALAR_I32, "1 ");
  ExpectRejected(v1::SCALAR_I32, "--1");
  ExpectRejected(v1::SCALAR_I8, "-129", {"i8"});
  ExpectRejected(v1::SCALAR_I32, "true");
}

TEST(ParseLiteralTest, Floats) {
  v1::Value v = Parsed(v1::SCALAR_F64, "0.5");
  ASSERT_EQ(v.value_case(), v1::Value::kF64Value);
  EXPECT_EQ(v.f64_value(), 0.5);
  v = Parsed(v1::SCALAR_F64, "-2.25e3");
  EXPECT_EQ(v.f64_value(), -2250.0);
  v = Parsed(v1::SCALAR_F32, "0.1");
  ASSERT_EQ(v.value_case(), v1::Value::kF32Value);
  EXPECT_EQ(Bits(v.f32_value()), Bits(0.1f));
  v = Parsed(v1::SCALAR_F64, "42");
  EXPECT_EQ(v.f64_value(), 42.0);
}

TEST(ParseLiteralTest, FloatSpecialValues) {
  v1::Value v = Parsed(v1::SCALAR_F64, "-0");
  ASSERT_EQ(v.value_case(), v1::Value::kF64Value);
  EXPECT_EQ(v.f64_value(), 0.0);
  EXPECT_TRUE(std::signbit(v.f64_value()));
  EXPECT_FALSE(std::signbit(Parsed(v1::SCALAR_F64, "0").f64_value()));
  EXPECT_TRUE(std::isnan(Parsed(v1::SCALAR_F64, "nan").f64_value()));
  EXPECT_TRUE(std::isnan(Parsed(v1::SCALAR_F32, "nan").f32_value()));
  EXPECT_EQ(Parsed(v1::SCALAR_F64, "inf").f64_value(),
            std::numeric_limits<double>::infinity());
  EXPECT_EQ(Parsed(v1::SCALAR_F64, "-inf").f64_value(),
            -std::numeric_limits<double>::infinity());
  EXPECT_EQ(Parsed(v1::SCALAR_F32, "-inf").f32_value(),
            -std::numeric_limits<float>::infinity());
  v = Parsed(v1::SCALAR_F64, "0x1p-1074");
  EXPECT_EQ(Bits(v.f64_value()), 1u);
  EXPECT_EQ(v.f64_value(), std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(Parsed(v1::SCALAR_F64, "0x1.8p1").f64_value(), 3.0);
}

TEST(ParseLiteralTest, FloatRejections) {
  ExpectRejected(v1::SCALAR_F64, "1e400", {"1e400", "f64"});
  ExpectRejected(v1::SCALAR_F64, "-1e400");
  ExpectRejected(v1::SCALAR_F32, "1e39", {"f32"});
  ExpectRejected(v1::SCALAR_F64, "");
  ExpectRejected(v1::SCALAR_F64, "abc");
  ExpectRejected(v1::SCALAR_F64, "1.0x");
  ExpectRejected(v1::SCALAR_F64, " 1.0");
  ExpectRejected(v1::SCALAR_F64, "1.0 ");
  ExpectRejected(v1::SCALAR_F64, "true");
}

TEST(ParseLiteralTest, Bools) {
  v1::Value v = Parsed(v1::SCALAR_BOOL, "true");
  ASSERT_EQ(v.value_case(), v1::Value::kBoolValue);
  EXPECT_TRUE(v.bool_value());
  v = Parsed(v1::SCALAR_BOOL, "false");
  ASSERT_EQ(v.value_case(), v1::Value::kBoolValue);
  EXPECT_FALSE(v.bool_value());
  ExpectRejected(v1::SCALAR_BOOL, "tru", {"tru", "bool"});
  ExpectRejected(v1::SCALAR_BOOL, "");
  ExpectRejected(v1::SCALAR_BOOL, "1");
  ExpectRejected(v1::SCALAR_BOOL, "TRUE");
  ExpectRejected(v1::SCALAR_BOOL, "true ");
}

TEST(ParseLiteralTest, InvalidTypes) {
  ExpectRejected(v1::SCALAR_VOID, "0");
  ExpectRejected(v1::SCALAR_UNSPECIFIED, "0");
  EXPECT_FALSE(ParseLiteral(v1::Type(), "0").ok());
}

v1::Value F64(double d) {
  v1::Value v;
  v.set_f64_value(d);
  return v;
}
v1::Value F32(float f) {
  v1::Value v;
  v.set_f32_value(f);
  return v;
}

TEST(FormatValueTest, Integers) {
  v1::Value v;
  v.set_uint_value(UINT64_MAX);
  EXPECT_EQ(FormatValue(v), "18446744073709551615");
  v.set_int_value(INT64_MIN);
  EXPECT_EQ(FormatValue(v), "-9223372036854775808");
  v.set_int_value(-5);
  EXPECT_EQ(FormatValue(v), "-5");
  v.set_uint_value(0);
  EXPECT_EQ(FormatValue(v), "0");
}

TEST(FormatValueTest, Bools) {
  v1::Value v;
  v.set_bool_value(true);
  EXPECT_EQ(FormatValue(v), "true");
  v.set_bool_value(false);
  EXPECT_EQ(FormatValue(v), "false");
}

TEST(FormatValueTest, ShortestFloats) {
  EXPECT_EQ(FormatValue(F64(0.8775825618903728)), "0.8775825618903728");
  EXPECT_EQ(FormatValue(F64(0.1)), "0.1");
  EXPECT_EQ(FormatValue(F64(-0.0)), "-0");
  EXPECT_EQ(FormatValue(F64(0.0)), "0");
  EXPECT_EQ(FormatValue(F64(2.5)), "2.5");
  EXPECT_EQ(FormatValue(F32(0.1f)), "0.1");
  EXPECT_EQ(FormatValue(F32(-0.0f)), "-0");
  EXPECT_EQ(FormatValue(F64(std::numeric_limits<double>::infinity())), "inf");
  EXPECT_EQ(FormatValue(F64(-std::numeric_limits<double>::infinity())), "-inf");
  EXPECT_EQ(FormatValue(F64(std::numeric_limits<double>::quiet_NaN())), "nan");
}

TEST(FormatValueTest, DoublesRoundTripBitExactly) {
  const double values[] = {
      0.1,
      1.0 / 3.0,
      0.8775825618903728,
      -0.0,
      std::numeric_limits<double>::denorm_min(),
      -std::numeric_limits<double>::denorm_min(),
      3 * std::numeric_limits<double>::denorm_min(),
      1e-310,
      std::nextafter(std::numeric_limits<double>::min(), 0.0),  // largest denormal
      std::numeric_limits<double>::min(),
      std::numeric_limits<double>::max(),
      std::nextafter(1.0, 2.0),
      123456789012345678.0,
      -2.718281828459045,
      std::numeric_limits<double>::infinity(),
      -std::numeric_limits<double>::infinity(),
  };
  for (double d : values) {
    std::string text = FormatValue(F64(d));
    SCOPED_TRACE(text);
    absl::StatusOr<v1::Value> back = ParseLiteral(T(v1::SCALAR_F64), text);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->value_case(), v1::Value::kF64Value);
    EXPECT_EQ(Bits(back->f64_value()), Bits(d));
  }
}

double DoubleFromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

TEST(FormatValueTest, NanSignRoundTrips) {
  for (uint64_t bits : {0x7ff8000000000000ull, 0xfff8000000000000ull}) {
    SCOPED_TRACE(bits);
    std::string text = FormatValue(F64(DoubleFromBits(bits)));
    absl::StatusOr<v1::Value> back = ParseLiteral(T(v1::SCALAR_F64), text);
    ASSERT_TRUE(back.ok()) << text << ": " << back.status();
    EXPECT_EQ(Bits(back->f64_value()), bits) << text;
  }
  EXPECT_EQ(FormatValue(F64(DoubleFromBits(0xfff8000000000000ull))), "-nan");
}

// literal.h promises "parsing them back gives the same bits"; a NaN's
// payload is part of its bits (and the codec preserves it end to end).
TEST(FormatValueTest, NanPayloadRoundTrips) {
  const uint64_t bits = 0x7ff8000000000123ull;
  std::string text = FormatValue(F64(DoubleFromBits(bits)));
  absl::StatusOr<v1::Value> back = ParseLiteral(T(v1::SCALAR_F64), text);
  ASSERT_TRUE(back.ok()) << text << ": " << back.status();
  EXPECT_EQ(Bits(back->f64_value()), bits) << "formatted as '" << text << "'";
}

TEST(FormatValueTest, FloatsRoundTripBitExactly) {
  const float values[] = {
      0.1f,
      1.0f / 3.0f,
      -0.0f,
      std::numeric_limits<float>::denorm_min(),
      std::numeric_limits<float>::min(),
      std::numeric_limits<float>::max(),
      16777215.0f,
  };
  for (float f : values) {
    std::string text = FormatValue(F32(f));
    SCOPED_TRACE(text);
    absl::StatusOr<v1::Value> back = ParseLiteral(T(v1::SCALAR_F32), text);
    ASSERT_TRUE(back.ok()) << back.status();
    ASSERT_EQ(back->value_case(), v1::Value::kF32Value);
    EXPECT_EQ(Bits(back->f32_value()), Bits(f));
  }
}

TEST(FormatValueTest, IntegersRoundTrip) {
  struct Case {
    v1::Scalar scalar;
    const char* text;
  };
  for (const Case& c : {Case{v1::SCALAR_I64, "-9223372036854775808"},
                        Case{v1::SCALAR_U64, "18446744073709551615"},
                        Case{v1::SCALAR_I8, "-1"},
                        Case{v1::SCALAR_U16, "65535"}}) {
    SCOPED_TRACE(c.text);
    EXPECT_EQ(FormatValue(Parsed(c.scalar, c.text)), c.text);
  }
}

}  // namespace
}  // namespace ffibroker
