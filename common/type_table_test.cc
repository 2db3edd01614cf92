#include "common/type_table.h"

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
