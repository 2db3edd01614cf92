#include "common/value_codec.h"

#include <sys/types.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "common/types.h"
#include "ffibroker/v1/types.pb.h"
#include "absl/base/casts.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

v1::Type T(v1::Scalar s) { return MakeScalarType(s); }

// A scalar through the one walker (EncodeInline / DecodeInline), as every
// scalar argument, field and static goes.
absl::Status EncodeScalarValue(const v1::Type& type, const v1::Value& value, std::string* out) {
  absl::StatusOr<const ScalarInfo*> info = ScalarOf(type);
  if (!info.ok()) return info.status();
  return EncodeInline(*ScalarDesc(**info), value, out);
}
absl::StatusOr<v1::Value> DecodeScalarValue(const v1::Type& type, absl::string_view bytes) {
  absl::StatusOr<const ScalarInfo*> info = ScalarOf(type);
  if (!info.ok()) return info.status();
  return DecodeInline(*ScalarDesc(**info), bytes);
}

// One-member Values.
v1::Value Int(int64_t v) { v1::Value x; x.set_int_value(v); return x; }
v1::Value Uint(uint64_t v) { v1::Value x; x.set_uint_value(v); return x; }
v1::Value F32(float v) { v1::Value x; x.set_f32_value(v); return x; }
v1::Value F64(double v) { v1::Value x; x.set_f64_value(v); return x; }
v1::Value Bool(bool v) { v1::Value x; x.set_bool_value(v); return x; }

template <typename T>
std::string Bytes(T v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}
// Bit patterns of floats, for bit-exact comparisons.
inline uint64_t Bits(double d) { return absl::bit_cast<uint64_t>(d); }
inline uint32_t Bits(float f) { return absl::bit_cast<uint32_t>(f); }
inline double DoubleFromBits(uint64_t b) { return absl::bit_cast<double>(b); }

// Encodes `value` as `type`, expecting failure; checks the code, that the
// output was left untouched, and that the message mentions `needles`.
void ExpectRejected(const v1::Type& type, const v1::Value& value,
                    std::initializer_list<const char*> needles = {}) {
  std::string out = "keep";
  absl::Status status = EncodeScalarValue(type, value, &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(out, "keep") << "output changed on failure";
  for (const char* needle : needles) {
    EXPECT_NE(status.message().find(needle), absl::string_view::npos)
        << "'" << status.message() << "' lacks '" << needle << "'";
  }
}

// Encodes then decodes; returns the decoded value.
v1::Value RoundTrip(const v1::Type& type, const v1::Value& value) {
  std::string out;
  absl::Status status = EncodeScalarValue(type, value, &out);
  EXPECT_TRUE(status.ok()) << status;
  absl::StatusOr<const ScalarInfo*> info = ScalarOf(type);
  EXPECT_TRUE(info.ok());
  if (info.ok()) {
    EXPECT_EQ(out.size(), (*info)->size);
  }
  absl::StatusOr<v1::Value> decoded = DecodeScalarValue(type, out);
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  return decoded.ok() ? *decoded : v1::Value();
}

struct IntCase {
  v1::Scalar scalar;
  const char* name;
  int64_t min;
  uint64_t max;
};

constexpr IntCase kIntCases[] = {
    {v1::SCALAR_I8, "i8", INT8_MIN, INT8_MAX},
    {v1::SCALAR_U8, "u8", 0, UINT8_MAX},
    {v1::SCALAR_I16, "i16", INT16_MIN, INT16_MAX},
    {v1::SCALAR_U16, "u16", 0, UINT16_MAX},
    {v1::SCALAR_I32, "i32", INT32_MIN, INT32_MAX},
    {v1::SCALAR_U32, "u32", 0, UINT32_MAX},
    {v1::SCALAR_I64, "i64", INT64_MIN, INT64_MAX},
    {v1::SCALAR_U64, "u64", 0, UINT64_MAX},
    {v1::SCALAR_ISIZE, "isize", INT64_MIN, INT64_MAX},
    {v1::SCALAR_USIZE, "usize", 0, UINT64_MAX},
};

TEST(EncodeScalarTest, IntegerBoundsAcceptedForEveryWidth) {
  for (const IntCase& c : kIntCases) {
    SCOPED_TRACE(c.name);
    const bool is_signed = c.min < 0;
    v1::Value at_min = RoundTrip(T(c.scalar), Int(c.min));
    if (is_signed) {
      ASSERT_EQ(at_min.value_case(), v1::Value::kIntValue);
      EXPECT_EQ(at_min.int_value(), c.min);
    } else {
      ASSERT_EQ(at_min.value_case(), v1::Value::kUintValue);
      EXPECT_EQ(at_min.uint_value(), 0u);
    }
    v1::Value at_max = RoundTrip(T(c.scalar), Uint(c.max));
    if (is_signed) {
      ASSERT_EQ(at_max.value_case(), v1::Value::kIntValue);
      EXPECT_EQ(static_cast<uint64_t>(at_max.int_value()), c.max);
    } else {
      ASSERT_EQ(at_max.value_case(), v1::Value::kUintValue);
      EXPECT_EQ(at_max.uint_value(), c.max);
    }
    if (c.max <= static_cast<uint64_t>(INT64_MAX)) {
      // The maximum carried in int_value works too.
      v1::Value via_int = RoundTrip(T(c.scalar), Int(static_cast<int64_t>(c.max)));
      EXPECT_EQ(via_int.SerializeAsString(), at_max.SerializeAsString());
    }
  }
}

TEST(EncodeScalarTest, IntegerOneBeyondBoundsRejectedForEveryWidth) {
  for (const IntCase& c : kIntCases) {
    SCOPED_TRACE(c.name);
    if (c.min > INT64_MIN) {
      const int64_t below = c.min - 1;
      ExpectRejected(T(c.scalar), Int(below),
                     {std::to_string(below).c_str(), c.name});
    }
    if (c.max < UINT64_MAX) {
      const uint64_t above = c.max + 1;
      ExpectRejected(T(c.scalar), Uint(above),
                     {std::to_string(above).c_str(), c.name});
      if (above <= static_cast<uint64_t>(INT64_MAX)) {
        ExpectRejected(T(c.scalar), Int(static_cast<int64_t>(above)),
                       {std::to_string(above).c_str(), c.name});
      }
    }
  }
}

TEST(EncodeScalarTest, OutOfRangeMessageNamesValueTypeAndRange) {
  std::string out;
  absl::Status status = EncodeScalarValue(T(v1::SCALAR_U8), Uint(300), &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "300 is out of range for u8 (0..255)");
  ExpectRejected(T(v1::SCALAR_U8), Int(300), {"300", "u8"});
  ExpectRejected(T(v1::SCALAR_I8), Int(-129), {"-129", "i8", "-128..127"});
}

TEST(EncodeScalarTest, SignedTypesRejectHugeUintValue) {
  // uint_value above INT64_MAX must not wrap around into a negative number.
  ExpectRejected(T(v1::SCALAR_I64), Uint(static_cast<uint64_t>(INT64_MAX) + 1),
                 {"9223372036854775808", "i64"});
  ExpectRejected(T(v1::SCALAR_I8), Uint(UINT64_MAX), {"i8"});
  ExpectRejected(T(v1::SCALAR_ISIZE), Uint(UINT64_MAX), {"isize"});
}

TEST(EncodeScalarTest, UnsignedTypesRejectNegativeIntValue) {
  ExpectRejected(T(v1::SCALAR_U64), Int(-1), {"-1", "u64"});
  ExpectRejected(T(v1::SCALAR_U32), Int(INT64_MIN), {"u32"});
  ExpectRejected(T(v1::SCALAR_USIZE), Int(-1), {"usize"});
}

TEST(EncodeScalarTest, SixtyFourBitExtremesAreBitExact) {
  std::string out;
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_U64), Uint(UINT64_MAX), &out).ok());
  EXPECT_EQ(out, std::string(8, '\xff'));
  absl::StatusOr<v1::Value> u = DecodeScalarValue(T(v1::SCALAR_U64), out);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->uint_value(), UINT64_MAX);

  out.clear();
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_I64), Int(INT64_MIN), &out).ok());
  EXPECT_EQ(out, Bytes<int64_t>(INT64_MIN));
  absl::StatusOr<v1::Value> i = DecodeScalarValue(T(v1::SCALAR_I64), out);
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->int_value(), INT64_MIN);

  // A value that a double could not carry exactly.
  const uint64_t odd = (uint64_t{1} << 53) + 1;
  EXPECT_EQ(RoundTrip(T(v1::SCALAR_U64), Uint(odd)).uint_value(), odd);
}

TEST(EncodeScalarTest, EncodingIsLittleEndianNativeBytes) {
  std::string out = "pre";
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_I16), Int(-2), &out).ok());
  EXPECT_EQ(out, "pre" + Bytes<int16_t>(-2));  // appends, does not replace
  out.clear();
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_U32), Int(0x01020304), &out).ok());
  EXPECT_EQ(out, std::string("\x04\x03\x02\x01", 4));
}

TEST(EncodeScalarTest, WrongMemberRejected) {
  ExpectRejected(T(v1::SCALAR_I32), F64(1.0), {"f64_value", "i32"});
  ExpectRejected(T(v1::SCALAR_U8), F32(1.0f), {"f32_value"});
  ExpectRejected(T(v1::SCALAR_I64), Bool(true), {"bool_value"});
  ExpectRejected(T(v1::SCALAR_BOOL), Int(1), {"int_value", "bool"});
  ExpectRejected(T(v1::SCALAR_BOOL), Uint(0), {"uint_value"});
  ExpectRejected(T(v1::SCALAR_F64), Int(1), {"int_value", "f64"});
  ExpectRejected(T(v1::SCALAR_F32), Bool(false), {"bool_value"});
  for (v1::Scalar s : {v1::SCALAR_I32, v1::SCALAR_U64, v1::SCALAR_BOOL,
                       v1::SCALAR_F32, v1::SCALAR_F64}) {
    SCOPED_TRACE(s);
    ExpectRejected(T(s), v1::Value(), {"no value"});
  }
}

TEST(EncodeScalarTest, InvalidTypesRejected) {
  ExpectRejected(T(v1::SCALAR_VOID), Int(0));
  ExpectRejected(v1::Type(), Int(0));
  ExpectRejected(T(v1::SCALAR_UNSPECIFIED), Int(0));
  ExpectRejected(T(static_cast<v1::Scalar>(99)), Int(0));
}

TEST(EncodeScalarTest, BoolEncodesAsOneByte) {
  std::string out;
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_BOOL), Bool(true), &out).ok());
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_BOOL), Bool(false), &out).ok());
  EXPECT_EQ(out, std::string("\x01\x00", 2));
}

TEST(EncodeScalarTest, F32AcceptsOnlyExactlyRepresentableF64) {
  std::string out;
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_F32), F64(0.5), &out).ok());
  EXPECT_EQ(out, Bytes(0.5f));
  out.clear();
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_F32), F32(0.1f), &out).ok());
  EXPECT_EQ(out, Bytes(0.1f));
  ExpectRejected(T(v1::SCALAR_F32), F64(0.1), {"f32"});
  ExpectRejected(T(v1::SCALAR_F32), F64(16777217.0), {"f32"});  // 2^24 + 1
  out.clear();
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_F32),
                          F64(std::numeric_limits<double>::quiet_NaN()), &out)
                  .ok());
  float f;
  ASSERT_EQ(out.size(), sizeof f);
  std::memcpy(&f, out.data(), sizeof f);
  EXPECT_TRUE(std::isnan(f));
  out.clear();
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_F32),
                          F64(-std::numeric_limits<double>::infinity()), &out)
                  .ok());
  EXPECT_EQ(out, Bytes(-std::numeric_limits<float>::infinity()));
}

TEST(EncodeScalarTest, F64AcceptsF32Value) {
  std::string out;
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_F64), F32(0.1f), &out).ok());
  EXPECT_EQ(out, Bytes(static_cast<double>(0.1f)));
  out.clear();
  ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_F64), F64(0.1), &out).ok());
  EXPECT_EQ(out, Bytes(0.1));
}

TEST(DecodeScalarTest, WrongSizeRejected) {
  const std::pair<v1::Type, size_t> wrong[] = {
      {T(v1::SCALAR_I32), 3}, {T(v1::SCALAR_U8), 0}, {T(v1::SCALAR_F64), 9},
      {T(v1::SCALAR_BOOL), 2}, {v1::Type(), 0}};
  for (const auto& [type, size] : wrong) {
    SCOPED_TRACE(TypeName(type) + " with " + std::to_string(size) + " bytes");
    EXPECT_EQ(DecodeScalarValue(type, std::string(size, '\0')).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  absl::StatusOr<v1::Value> v = DecodeScalarValue(T(v1::SCALAR_VOID), "");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->value_case(), v1::Value::VALUE_NOT_SET);
  EXPECT_FALSE(DecodeScalarValue(T(v1::SCALAR_VOID), "x").ok());
}

TEST(DecodeScalarTest, BoolMustBeZeroOrOne) {
  absl::StatusOr<v1::Value> bad = DecodeScalarValue(T(v1::SCALAR_BOOL), "\x07");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find('7'), absl::string_view::npos);
  EXPECT_FALSE(DecodeScalarValue(T(v1::SCALAR_BOOL), "\xff").ok());
  absl::StatusOr<v1::Value> t = DecodeScalarValue(T(v1::SCALAR_BOOL), "\x01");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->value_case(), v1::Value::kBoolValue);
  EXPECT_TRUE(t->bool_value());
  absl::StatusOr<v1::Value> f = DecodeScalarValue(T(v1::SCALAR_BOOL), std::string(1, '\0'));
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->value_case(), v1::Value::kBoolValue);
  EXPECT_FALSE(f->bool_value());
}

TEST(DecodeScalarTest, SignedValuesAreSignExtended) {
  absl::StatusOr<v1::Value> v = DecodeScalarValue(T(v1::SCALAR_I8), "\xff");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->value_case(), v1::Value::kIntValue);
  EXPECT_EQ(v->int_value(), -1);
  v = DecodeScalarValue(T(v1::SCALAR_I16), std::string("\x00\x80", 2));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->int_value(), INT16_MIN);
  v = DecodeScalarValue(T(v1::SCALAR_I32), "\xfe\xff\xff\xff");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->int_value(), -2);
  v = DecodeScalarValue(T(v1::SCALAR_I32), "\xff\xff\xff\x7f");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->int_value(), INT32_MAX);
  // Unsigned values are not.
  v = DecodeScalarValue(T(v1::SCALAR_U8), "\xff");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->value_case(), v1::Value::kUintValue);
  EXPECT_EQ(v->uint_value(), 255u);
  v = DecodeScalarValue(T(v1::SCALAR_U16), std::string("\x00\x80", 2));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->uint_value(), 0x8000u);
}

TEST(DecodeScalarTest, FloatsAreBitExact) {
  const uint64_t doubles[] = {
      0x7ff8000000000123ull,  // quiet NaN with a payload
      0xfff8000000000000ull,  // negative NaN
      0x8000000000000000ull,  // -0.0
      0x0000000000000001ull,  // smallest denormal
      0x000fffffffffffffull,  // largest denormal
      0x7ff0000000000000ull,  // +inf
  };
  for (uint64_t bits : doubles) {
    SCOPED_TRACE(bits);
    absl::StatusOr<v1::Value> v =
        DecodeScalarValue(T(v1::SCALAR_F64), Bytes(DoubleFromBits(bits)));
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(v->value_case(), v1::Value::kF64Value);
    EXPECT_EQ(Bits(v->f64_value()), bits);
    // And back through the encoder.
    std::string out;
    ASSERT_TRUE(EncodeScalarValue(T(v1::SCALAR_F64), *v, &out).ok());
    EXPECT_EQ(out, Bytes(DoubleFromBits(bits)));
  }
  const uint32_t floats[] = {0x7fc00123u, 0x80000000u, 0x00000001u};
  for (uint32_t bits : floats) {
    SCOPED_TRACE(bits);
    absl::StatusOr<v1::Value> v = DecodeScalarValue(T(v1::SCALAR_F32), Bytes(bits));
    ASSERT_TRUE(v.ok());
    ASSERT_EQ(v->value_case(), v1::Value::kF32Value);
    EXPECT_EQ(Bits(v->f32_value()), bits);
  }
}

v1::Parameter Param(v1::Scalar s, const std::string& name = "") {
  v1::Parameter p;
  *p.mutable_type() = T(s);
  p.set_name(name);
  return p;
}

TEST(ValueCodecTest, DescribeArgumentAndValueCaseName) {
  EXPECT_EQ(DescribeArgument(0, Param(v1::SCALAR_F64, "x")), "argument 1 (x: f64)");
  EXPECT_EQ(DescribeArgument(4, Param(v1::SCALAR_BOOL)), "argument 5 (bool)");
  EXPECT_EQ(ValueCaseName(v1::Value()), "no value");
  EXPECT_EQ(ValueCaseName(F64(1)), "f64_value");
  EXPECT_EQ(ValueCaseName(Uint(1)), "uint_value");
}

TEST(TypesTest, TableLookups) {
  const ScalarInfo* u16 = FindScalarByName("u16");
  ASSERT_NE(u16, nullptr);
  EXPECT_EQ(u16->scalar, v1::SCALAR_U16);
  EXPECT_EQ(u16->size, 2u);
  EXPECT_EQ(FindScalar(v1::SCALAR_U16), u16);
  EXPECT_EQ(FindScalarByName("u17"), nullptr);
  EXPECT_EQ(FindScalar(v1::SCALAR_UNSPECIFIED), nullptr);
  EXPECT_EQ(FindScalarByName("isize")->size, sizeof(ssize_t));
  EXPECT_EQ(TypeName(T(v1::SCALAR_F64)), "f64");
  EXPECT_EQ(TypeName(v1::Type()), "<invalid type>");
  EXPECT_NE(ScalarNames().find("usize"), std::string::npos);
  EXPECT_EQ(ScalarOf(T(static_cast<v1::Scalar>(99))).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ffibroker

namespace ffibroker {
namespace {

// A descriptor whose layout does not fit its bytes (which Register never
// builds) is an INTERNAL error from the codec, never a write or read
// outside the buffer.
TEST(ValueCodecBoundsTest, AFieldOutsideTheClassIsAnErrorNotAWrite) {
  auto klass = std::make_shared<TypeDesc>();
  klass->kind = TypeKind::kClass;
  klass->name = "Broken";
  klass->size = 8;
  FieldDesc field;
  field.name = "x";
  field.type = ScalarDesc(*FindScalar(v1::SCALAR_U64));
  field.offset = ~uint64_t{0} - 7;  // wrapped: "8 bytes before the buffer"
  klass->fields.push_back(field);
  std::string bytes(8, '\0');
  v1::StructValue fields;
  v1::FieldValue* fv = fields.add_fields();
  fv->set_name("x");
  fv->mutable_value()->set_uint_value(1);
  absl::Status status = EncodeFields(*klass, fields, false, &bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_EQ(bytes, std::string(8, '\0'));
  EXPECT_EQ(DecodeInline(*klass, bytes).status().code(), absl::StatusCode::kInternal);
  klass->fields[0].offset = 4;  // straddles the end
  EXPECT_EQ(EncodeFields(*klass, fields, false, &bytes).code(), absl::StatusCode::kInternal);
  EXPECT_EQ(DecodeInline(*klass, bytes).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace ffibroker
