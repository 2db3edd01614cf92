#include "common/utf8.h"

#include <string>

#include "gtest/gtest.h"

namespace ffibroker {
namespace {

TEST(Utf8Test, LengthsOfWellFormedCharacters) {
  EXPECT_EQ(Utf8CharLength("a"), 1u);
  EXPECT_EQ(Utf8CharLength("\xC3\xA9"), 2u);          // é
  EXPECT_EQ(Utf8CharLength("\xE2\x80\xA6"), 3u);      // …
  EXPECT_EQ(Utf8CharLength("\xF4\x8F\xBF\xBF"), 4u);  // U+10FFFF, the last
  EXPECT_EQ(Utf8CharLength(""), 0u);
}

TEST(Utf8Test, WhatProtobufRefusesIsNoCharacter) {
  EXPECT_EQ(Utf8CharLength("\x80"), 0u);              // a lone continuation byte
  EXPECT_EQ(Utf8CharLength("\xC0\xAF"), 0u);          // overlong '/'
  EXPECT_EQ(Utf8CharLength("\xE0\x80\xAF"), 0u);      // overlong, three bytes
  EXPECT_EQ(Utf8CharLength("\xED\xA0\x80"), 0u);      // a surrogate
  EXPECT_EQ(Utf8CharLength("\xF4\x90\x80\x80"), 0u);  // past U+10FFFF
  EXPECT_EQ(Utf8CharLength("\xE2\x80"), 0u);          // cut short
  EXPECT_TRUE(IsValidUtf8("h\xC3\xA9llo \xE2\x80\xA6"));
  EXPECT_FALSE(IsValidUtf8("h\xC3llo"));
  EXPECT_TRUE(IsValidUtf8(std::string("a\0b", 3)));  // NUL is UTF-8
}

}  // namespace
}  // namespace ffibroker
