#include "common/type_table.h"

#include <string>
#include <vector>

#include <cstddef>
#include <cstdint>

#include "common/signature.h"
#include "common/value_codec.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

struct Inner { uint8_t tag; double value; };
struct Outer { int16_t a; Inner inner; float xs[3]; bool flag; };

v1::ClassLayout MustRegister(ClassTable& table, const std::string& text) {
  auto def = ParseClass(text, {"Inner", "Nope", "R", "P"});
  EXPECT_TRUE(def.ok()) << def.status();
  auto layout = table.Register(*def);
  EXPECT_TRUE(layout.ok()) << layout.status();
  return layout.ok() ? *layout : v1::ClassLayout();
}

TEST(ClassTableTest, LayoutMatchesTheCompiler) {
  ClassTable table;
  v1::ClassLayout inner = MustRegister(table, "Inner { u8 tag; f64 value; }");
  EXPECT_EQ(inner.size(), sizeof(Inner));
  EXPECT_EQ(inner.fields(1).offset(), offsetof(Inner, value));
  EXPECT_EQ(inner.fields(0).padding_after(), offsetof(Inner, value) - 1);
  v1::ClassLayout outer =
      MustRegister(table, "Outer { i16 a; Inner inner; mut f32[3] xs; bool flag; }");
  EXPECT_EQ(outer.size(), sizeof(Outer));
  EXPECT_EQ(outer.alignment(), alignof(Outer));
  EXPECT_EQ(outer.fields(1).offset(), offsetof(Outer, inner));
  EXPECT_EQ(outer.fields(2).offset(), offsetof(Outer, xs));
  EXPECT_EQ(outer.fields(2).type(), "f32[3]");
  EXPECT_TRUE(outer.fields(2).mutable_());
  EXPECT_EQ(outer.fields(3).offset(), offsetof(Outer, flag));
}

TEST(ClassTableTest, RejectsInvalidDefinitions) {
  ClassTable table;
  MustRegister(table, "P { f64 x; }");
  auto expect_error = [&](const std::string& text, const std::string& want) {
    auto def = ParseClass(text, {"Inner", "Nope", "R", "P"});
    ASSERT_TRUE(def.ok()) << def.status();
    auto layout = table.Register(*def);
    ASSERT_FALSE(layout.ok()) << text;
    EXPECT_NE(layout.status().message().find(want), std::string::npos)
        << layout.status().message();
  };
  expect_error("P { f64 y; }", "already registered");
  expect_error("Q { Nope n; }", "unknown class 'Nope'");
  expect_error("R { R self; }", "cannot contain itself");
  expect_error("S { f64 a; f64 a; }", "declared twice");
  expect_error("T { }", "no fields");
  expect_error("U { P* p; }", "not valid as a class field");
  expect_error("V { enum u8{1,300} e; }", "out of range");
}

TEST(ClassTableTest, CodecValidatesEveryField) {
  ClassTable table;
  MustRegister(table, "E { bool b; enum i32{1,2} e; }");
  TypeRef e = table.FindClass("E");
  std::string bytes(e->size, '\0');
  bytes[0] = 7;
  bytes[4] = 1;
  auto decoded = DecodeInline(*e, bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("field 'b'"), std::string::npos);
  bytes[0] = 1;
  bytes[4] = 3;
  decoded = DecodeInline(*e, bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("field 'e'"), std::string::npos);
}

}  // namespace
}  // namespace ffibroker

namespace ffibroker {
namespace {

v1::Type Nested(const std::vector<uint32_t>& lengths, v1::Scalar scalar = v1::SCALAR_U8) {
  v1::Type type;
  type.set_scalar(scalar);
  for (auto it = lengths.rbegin(); it != lengths.rend(); ++it) {
    v1::Type outer;
    *outer.mutable_array()->mutable_element() = type;
    outer.mutable_array()->set_length(*it);
    type = outer;
  }
  return type;
}

v1::ClassDefinition OneField(const std::string& name, const v1::Type& type) {
  v1::ClassDefinition def;
  def.set_name(name);
  v1::FieldDefinition* f = def.add_fields();
  f->set_name("a");
  *f->mutable_type() = type;
  return def;
}

// The boundaries of every layout limit (common/limits.h): at the limit it
// registers, one past it is INVALID_ARGUMENT naming the limit.
TEST(ClassTableLimitsTest, ArrayNestingBoundary) {
  ClassTable table;
  EXPECT_TRUE(table.Register(OneField("A", Nested(std::vector<uint32_t>(kMaxArrayNesting, 1)))).ok());
  auto deep = table.Register(OneField("B", Nested(std::vector<uint32_t>(kMaxArrayNesting + 1, 1))));
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(deep.status().message().find("nesting limit"), absl::string_view::npos) << deep.status();
}

TEST(ClassTableLimitsTest, ValueCountBoundary) {
  ClassTable table;
  auto at = table.Register(OneField("A", Nested({16, 4096})));
  ASSERT_TRUE(at.ok()) << at.status();
  EXPECT_EQ(at->size(), kMaxInlineValues);
  auto past = table.Register(OneField("B", Nested({16, 4096, 2})));
  EXPECT_EQ(past.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(past.status().message().find("65536 values"), absl::string_view::npos) << past.status();
  // Through classes by value: two A are 131072 values.
  v1::ClassDefinition twice;
  twice.set_name("C");
  for (const char* name : {"x", "y"}) {
    v1::FieldDefinition* f = twice.add_fields();
    f->set_name(name);
    f->mutable_type()->set_class_name("A");
  }
  EXPECT_EQ(table.Register(twice).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ClassTableLimitsTest, SizesThatOverflowAreRejectedNotWrapped) {
  ClassTable table;
  // 8 * 4096^8 = 2^99 bytes: every intermediate product is checked.
  auto wrapped = table.Register(OneField("A", Nested(std::vector<uint32_t>(8, 4096), v1::SCALAR_U64)));
  EXPECT_EQ(wrapped.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(wrapped.status().message().find("class size limit of 16777216"),
            absl::string_view::npos)
      << wrapped.status();
  EXPECT_TRUE(table.classes().empty());
}

TEST(ClassTableLimitsTest, LargeArraysKeepOneLibffiElement) {
  ClassTable table;
  auto layout = table.Register(OneField("A", Nested({4096, 4}, v1::SCALAR_F64)));
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->size(), 4096u * 4 * 8);
  const TypeDesc& array = *table.classes()[0]->fields[0].type;
  EXPECT_EQ(array.ffi_elements.size(), 2u);           // the element type, nullptr
  EXPECT_EQ(array.element->ffi_elements.size(), 5u);  // f64[4] is 32 bytes: exact
  EXPECT_EQ(array.ffi->size, 4096u * 4 * 8);
  EXPECT_LT(table.descriptor_bytes(), 8192u);
}

TEST(ClassTableLimitsTest, DescriptorMemoryPerTableIsCapped) {
  ClassTable table;
  v1::ClassDefinition def;
  for (int i = 0; i < kMaxFields; ++i) {
    v1::FieldDefinition* f = def.add_fields();
    f->set_name("f" + std::to_string(i));
    *f->mutable_type() = Nested(std::vector<uint32_t>(kMaxArrayNesting, 2));
  }
  absl::Status last;
  int n = 0;
  for (; n < kMaxClasses && last.ok(); ++n) {
    def.set_name("C" + std::to_string(n));
    last = table.Register(def).status();
  }
  EXPECT_EQ(last.code(), absl::StatusCode::kResourceExhausted) << last;
  EXPECT_NE(last.message().find("descriptor memory limit of 4194304"), absl::string_view::npos);
  EXPECT_LE(table.descriptor_bytes(), kMaxDescriptorBytesPerSession);
  EXPECT_EQ(table.classes().size(), static_cast<size_t>(n - 1));
}

TEST(ClassTableLimitsTest, EnumValuesAreCapped) {
  v1::Type e;
  e.mutable_enum_type()->set_underlying(v1::SCALAR_I32);
  for (int i = 0; i <= kMaxEnumValues; ++i) e.mutable_enum_type()->add_values(i);
  ClassTable table;
  EXPECT_EQ(table.Register(OneField("E", e)).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ffibroker
