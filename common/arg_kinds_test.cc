#include "common/arg_kinds.h"

#include <cstdint>
#include <string>

#include "common/signature.h"
#include "common/type_table.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

// The resolved signature of `text`, with class Point registered.
ResolvedSignature Resolve(ClassTable& classes, const std::string& text) {
  if (classes.FindClass("Point") == nullptr) {
    absl::StatusOr<v1::ClassDefinition> def = ParseClass("Point { f64 x; f64 y; }");
    EXPECT_TRUE(def.ok()) << def.status();
    EXPECT_TRUE(classes.Register(*def).ok());
  }
  absl::StatusOr<Declaration> decl = ParseDeclaration(text, {"Point"});
  EXPECT_TRUE(decl.ok()) << text << ": " << decl.status();
  absl::StatusOr<ResolvedSignature> sig = ResolveSignature(decl->signature, classes);
  EXPECT_TRUE(sig.ok()) << text << ": " << sig.status();
  return *sig;
}

std::string U64(uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

google::protobuf::RepeatedPtrField<std::string> Args(std::initializer_list<std::string> args) {
  google::protobuf::RepeatedPtrField<std::string> out;
  for (const std::string& arg : args) *out.Add() = arg;
  return out;
}

TEST(ArgKindsTest, EveryKindIsClassified) {
  ClassTable classes;
  ResolvedSignature sig = Resolve(
      classes,
      "void f(i32 a, Point p, u8 e, Point* h, cstr s, in u8[4] i, out u8[n] o, "
      "inout u8[3] io, u32 n)");
  const ArgKind want[] = {ArgKind::kInline,    ArgKind::kInline,    ArgKind::kInline,
                          ArgKind::kHandle,    ArgKind::kString,    ArgKind::kBufferIn,
                          ArgKind::kBufferOut, ArgKind::kBufferInOut, ArgKind::kInline};
  ASSERT_EQ(sig.params.size(), 9u);
  for (size_t i = 0; i < sig.params.size(); ++i) {
    SCOPED_TRACE(sig.params[i]->name);
    EXPECT_EQ(ArgKindOf(*sig.params[i]), want[i]);
    EXPECT_EQ(IsBuffer(want[i]), i >= 5 && i <= 7);
    EXPECT_EQ(IsOutput(want[i]), i == 6 || i == 7);
  }
  EXPECT_EQ(ArgKindOf(*sig.result), ArgKind::kInline);
  EXPECT_EQ(ArgKindOf(*Resolve(classes, "cstr g()").result), ArgKind::kString);
  EXPECT_EQ(ArgKindOf(*Resolve(classes, "borrowed Point* g()").result), ArgKind::kHandle);
}

TEST(ArgKindsTest, InstanceIdsAreEightBytes) {
  EXPECT_EQ(InstanceIdBytes(0x0102030405060708), U64(0x0102030405060708));
  absl::StatusOr<uint64_t> id = ReadInstanceId(U64(42));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, 42u);
  EXPECT_EQ(ReadInstanceId("1234567").status().message(), "has 7 bytes, expected 8");
  EXPECT_EQ(ReadInstanceId(std::string(9, '\0')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ArgKindsTest, TheOutBufferLengthRule) {
  ClassTable classes;
  ResolvedSignature sig = Resolve(classes, "void f(out u8[n] o, inout u8[n] io, in u8[n] i, u32 n)");
  // An out buffer travels as its length; in and inout buffers as their bytes.
  EXPECT_EQ(OutBufferArg(5), U64(5));
  absl::StatusOr<uint64_t> out = BufferSize(*sig.params[0], OutBufferArg(5));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, 5u);
  EXPECT_EQ(*BufferSize(*sig.params[1], "abc"), 3u);
  EXPECT_EQ(*BufferSize(*sig.params[2], "abcdefghij"), 10u);
  // Eight bytes of data in an in buffer are data, not a length.
  EXPECT_EQ(*BufferSize(*sig.params[2], U64(1000)), 8u);
  EXPECT_EQ(BufferSize(*sig.params[0], "abc").status().message(), "has 3 bytes, expected 8");
}

TEST(ArgKindsTest, ReplyBytesCountTheResultAndEveryOutput) {
  ClassTable classes;
  ResolvedSignature sig =
      Resolve(classes, "f64 f(out u8[n] o, inout u8[3] io, in u8[4] i, u32 n)");
  absl::StatusOr<uint64_t> bytes =
      ReplyBytes(sig, Args({OutBufferArg(100), "abc", "wxyz", U64(100).substr(0, 4)}));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(*bytes, 8u + 100u + 3u);  // the f64, the out and the inout buffer; not the in one

  // A string result may come back one byte longer than declared (so "too
  // long" can be seen).
  EXPECT_EQ(*ReplyBytes(Resolve(classes, "cstr[10] g()"), Args({})), 11u);
  EXPECT_EQ(*ReplyBytes(Resolve(classes, "borrowed Point* g()"), Args({})), 8u);

  // Past the buffer cap, or wrapping around: saturated, so one comparison
  // with kMaxCallPayloadBytes refuses it.
  ResolvedSignature two = Resolve(classes, "void h(out u8[n] a, out u8[m] b, u64 n, u64 m)");
  EXPECT_EQ(*ReplyBytes(two, Args({OutBufferArg(kMaxBufferLength + 1), OutBufferArg(0), "", ""})),
            UINT64_MAX);
  EXPECT_EQ(*ReplyBytes(two, Args({OutBufferArg(UINT64_MAX), OutBufferArg(2), "", ""})),
            UINT64_MAX);

  // A malformed out-buffer argument names the argument.
  absl::StatusOr<uint64_t> bad = ReplyBytes(two, Args({OutBufferArg(1), "short", "", ""}));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "argument 2 has 5 bytes, expected 8");
  EXPECT_EQ(ReplyBytes(two, Args({OutBufferArg(1)})).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ArgKindsTest, ToldBufferLengthReadsTheLengthArgument) {
  ClassTable classes;
  ResolvedSignature sig = Resolve(classes, "void f(in u8[n] a, out u8[16] b, i16 n)");
  bool negative = true;
  int16_t seven = 7;
  std::string n(reinterpret_cast<const char*>(&seven), 2);
  EXPECT_EQ(ToldBufferLength(sig, 0, Args({"1234567", OutBufferArg(16), n}), &negative), 7u);
  EXPECT_FALSE(negative);
  EXPECT_EQ(ToldBufferLength(sig, 1, Args({"1234567", OutBufferArg(16), n}), &negative), 16u);
  EXPECT_FALSE(negative);
  int16_t minus = -1;
  std::string m(reinterpret_cast<const char*>(&minus), 2);
  ToldBufferLength(sig, 0, Args({"", OutBufferArg(16), m}), &negative);
  EXPECT_TRUE(negative);
  // An unsigned length is never negative, whatever its top bit.
  ResolvedSignature u = Resolve(classes, "void g(in u8[n] a, u8 n)");
  EXPECT_EQ(ToldBufferLength(u, 0, Args({"", "\xff"}), &negative), 255u);
  EXPECT_FALSE(negative);
}

}  // namespace
}  // namespace ffibroker
