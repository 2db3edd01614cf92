#include "common/signature.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/types.h"
#include "ffibroker/v1/types.pb.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

bool Contains(absl::string_view haystack, absl::string_view needle) {
  return haystack.find(needle) != absl::string_view::npos;
}

// Expects ParseDeclaration(text) to fail with INVALID_ARGUMENT mentioning
// every string in `needles`.
void ExpectParseError(absl::string_view text,
                      std::initializer_list<const char*> needles) {
  SCOPED_TRACE(text);
  absl::StatusOr<Declaration> decl = ParseDeclaration(text);
  ASSERT_FALSE(decl.ok()) << FormatDeclaration(decl->name, decl->signature);
  EXPECT_EQ(decl.status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* needle : needles) {
    EXPECT_TRUE(Contains(decl.status().message(), needle))
        << "'" << decl.status().message() << "' lacks '" << needle << "'";
  }
}

TEST(ParseDeclarationTest, SingleUnnamedParameter) {
  absl::StatusOr<Declaration> decl = ParseDeclaration("f64 cos(f64)");
  ASSERT_TRUE(decl.ok()) << decl.status();
  EXPECT_EQ(decl->name, "cos");
  EXPECT_EQ(decl->signature.result().scalar(), v1::SCALAR_F64);
  ASSERT_EQ(decl->signature.params_size(), 1);
  EXPECT_EQ(decl->signature.params(0).type().scalar(), v1::SCALAR_F64);
  EXPECT_EQ(decl->signature.params(0).name(), "");
}

TEST(ParseDeclarationTest, NamedParameters) {
  absl::StatusOr<Declaration> decl = ParseDeclaration("i32 add(i32 a, u8 b)");
  ASSERT_TRUE(decl.ok()) << decl.status();
  EXPECT_EQ(decl->name, "add");
  EXPECT_EQ(decl->signature.result().scalar(), v1::SCALAR_I32);
  ASSERT_EQ(decl->signature.params_size(), 2);
  EXPECT_EQ(decl->signature.params(0).name(), "a");
  EXPECT_EQ(decl->signature.params(0).type().scalar(), v1::SCALAR_I32);
  EXPECT_EQ(decl->signature.params(1).name(), "b");
  EXPECT_EQ(decl->signature.params(1).type().scalar(), v1::SCALAR_U8);
}

TEST(ParseDeclarationTest, NoParameters) {
  for (const char* text : {"void f()", "void f(void)", "void f( void )",
                           "void f ( )"}) {
    SCOPED_TRACE(text);
    absl::StatusOr<Declaration> decl = ParseDeclaration(text);
    ASSERT_TRUE(decl.ok()) << decl.status();
    EXPECT_EQ(decl->name, "f");
    EXPECT_EQ(decl->signature.result().scalar(), v1::SCALAR_VOID);
    EXPECT_EQ(decl->signature.params_size(), 0);
  }
}

TEST(ParseDeclarationTest, WhitespaceVariants) {
  const char* variants[] = {
      "i32 add(i32 a, i32 b)",      "  i32   add ( i32  a ,i32 b )  ",
      "i32\tadd(i32 a,i32 b)",      "i32\nadd(\n  i32 a,\n  i32 b\n)\n",
      "i32 add(i32 a , i32 b)",
  };
  for (const char* text : variants) {
    SCOPED_TRACE(text);
    absl::StatusOr<Declaration> decl = ParseDeclaration(text);
    ASSERT_TRUE(decl.ok()) << decl.status();
    EXPECT_EQ(FormatDeclaration(decl->name, decl->signature),
              "i32 add(i32 a, i32 b)");
  }
}

TEST(ParseDeclarationTest, EveryScalarNameParses) {
  for (const char* name : {"bool", "i8", "u8", "i16", "u16", "i32", "u32", "i64",
                           "u64", "isize", "usize", "f32", "f64"}) {
    SCOPED_TRACE(name);
    absl::StatusOr<Declaration> decl =
        ParseDeclaration(absl::StrCat(name, " g(", name, " x)"));
    ASSERT_TRUE(decl.ok()) << decl.status();
    const ScalarInfo* info = FindScalarByName(name);
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(decl->signature.result().scalar(), info->scalar);
    EXPECT_EQ(decl->signature.params(0).type().scalar(), info->scalar);
  }
}

TEST(FormatDeclarationTest, RoundTrips) {
  const char* canonical[] = {
      "f64 cos(f64)",
      "i32 add(i32 a, i32 b)",
      "void tick()",
      "bool is_ok(u8 _flag, f32, usize n2)",
      "isize mix(i8 a, u16 b, i32 c, u64 d, f32 e, f64 f, bool g)",
  };
  for (const char* text : canonical) {
    SCOPED_TRACE(text);
    absl::StatusOr<Declaration> decl = ParseDeclaration(text);
    ASSERT_TRUE(decl.ok()) << decl.status();
    std::string formatted = FormatDeclaration(decl->name, decl->signature);
    EXPECT_EQ(formatted, text);
    absl::StatusOr<Declaration> again = ParseDeclaration(formatted);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->name, decl->name);
    EXPECT_EQ(again->signature.SerializeAsString(),
              decl->signature.SerializeAsString());
  }
  absl::StatusOr<Declaration> v = ParseDeclaration("void f(void)");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(FormatDeclaration(v->name, v->signature), "void f()");
}

TEST(ParseDeclarationTest, UnknownTypeReportsColumn) {
  ExpectParseError("f65 cos(f64)", {"column 1", "a type", "'f'"});
  ExpectParseError("f64 cos(double)", {"column 9", "a type"});
  ExpectParseError("f64 cos(f64, f65)", {"column 14"});
  ExpectParseError("  f65 cos(f64)", {"column 3"});
  ExpectParseError("", {"column 1", "the end"});
}

TEST(ParseDeclarationTest, MissingParenthesis) {
  ExpectParseError("f64 cos f64)", {"'('", "column 9"});
  ExpectParseError("f64 cos", {"'('", "column 8", "the end"});
  ExpectParseError("f64 cos(f64", {"',' or ')'", "column 12"});
  ExpectParseError("f64 cos(f64 x y)", {"',' or ')'", "column 15"});
}

TEST(ParseDeclarationTest, BadFunctionName) {
  ExpectParseError("f64 (f64)", {"function name", "column 5"});
  ExpectParseError("f64 1cos(f64)", {"function name", "column 5"});
  ExpectParseError("f64", {"function name", "column 4"});
}

// A buffer's length names its parameter, so two parameters may not share
// a name (which one would `n` be?).
TEST(ParseDeclarationTest, ParameterNamesAreUnique) {
  auto decl = ParseDeclaration("f64 cos(f64 x, f64 x)", {});
  ASSERT_FALSE(decl.ok());
  EXPECT_EQ(decl.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(decl.status().message(), "parameter 2: name 'x' is already the name of parameter 1");
  EXPECT_EQ(ErrorReason(decl.status()), "INVALID_DECLARATION");
  EXPECT_TRUE(ParseDeclaration("void f(f64, f64)", {}).ok());  // unnamed: fine
}

TEST(ParseDeclarationTest, TrailingGarbage) {
  ExpectParseError("f64 cos(f64) x", {"end of the declaration", "column 14"});
  ExpectParseError("f64 cos(f64);", {"column 13", "';'"});
  ExpectParseError("void f(void) void", {"column 14"});
}

TEST(ParseDeclarationTest, VoidParameterRejected) {
  ExpectParseError("void f(void x)", {"void"});
  ExpectParseError("void f(i32, void)", {"argument 2", "void"});
  ExpectParseError("void f(void, i32)", {"void"});
}

TEST(ParseDeclarationTest, BadParameterName) {
  ExpectParseError("f64 cos(f64 1x)", {"parameter name", "column 13"});
  ExpectParseError("f64 cos(f64 x-y)", {"column 14"});
}

TEST(ParseDeclarationTest, ParameterLimit) {
  auto with_params = [](int n) {
    std::string text = "void f(";
    for (int i = 0; i < n; ++i) absl::StrAppend(&text, i ? ", " : "", "i32");
    return text + ")";
  };
  absl::StatusOr<Declaration> at_limit = ParseDeclaration(with_params(kMaxParams));
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->signature.params_size(), kMaxParams);
  ExpectParseError(with_params(kMaxParams + 1),
                   {"too many parameters", "33", "32"});
}

TEST(IsIdentifierTest, Cases) {
  EXPECT_TRUE(IsIdentifier("x"));
  EXPECT_TRUE(IsIdentifier("_a1"));
  EXPECT_TRUE(IsIdentifier("Cos_2"));
  EXPECT_FALSE(IsIdentifier(""));
  EXPECT_FALSE(IsIdentifier("1a"));
  EXPECT_FALSE(IsIdentifier("a-b"));
  EXPECT_FALSE(IsIdentifier("a b"));
  EXPECT_FALSE(IsIdentifier("a.b"));
}

v1::Signature ValidSig() {
  v1::Signature sig;
  sig.mutable_result()->set_scalar(v1::SCALAR_F64);
  v1::Parameter* p = sig.add_params();
  p->mutable_type()->set_scalar(v1::SCALAR_I32);
  p->set_name("n");
  return sig;
}

TEST(ValidateSignatureTest, AcceptsValid) {
  EXPECT_TRUE(ValidateSignature(ValidSig()).ok());
  v1::Signature void_result = ValidSig();
  void_result.mutable_result()->set_scalar(v1::SCALAR_VOID);
  EXPECT_TRUE(ValidateSignature(void_result).ok());
}

TEST(ValidateSignatureTest, RejectsBadResult) {
  v1::Signature unset = ValidSig();
  unset.clear_result();
  absl::Status s = ValidateSignature(unset);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "result")) << s;

  v1::Signature unknown = ValidSig();
  unknown.mutable_result()->set_scalar(static_cast<v1::Scalar>(99));
  s = ValidateSignature(unknown);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "99")) << s;
  EXPECT_TRUE(Contains(s.message(), "result")) << s;

  v1::Signature unspecified = ValidSig();
  unspecified.mutable_result()->set_scalar(v1::SCALAR_UNSPECIFIED);
  EXPECT_EQ(ValidateSignature(unspecified).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateSignatureTest, RejectsBadParameters) {
  v1::Signature unknown = ValidSig();
  unknown.mutable_params(0)->mutable_type()->set_scalar(static_cast<v1::Scalar>(99));
  absl::Status s = ValidateSignature(unknown);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "argument 1")) << s;
  EXPECT_TRUE(Contains(s.message(), "99")) << s;

  v1::Signature unset = ValidSig();
  unset.mutable_params(0)->clear_type();
  EXPECT_EQ(ValidateSignature(unset).code(), absl::StatusCode::kInvalidArgument);

  v1::Signature void_param = ValidSig();
  void_param.mutable_params(0)->mutable_type()->set_scalar(v1::SCALAR_VOID);
  EXPECT_EQ(ValidateSignature(void_param).code(),
            absl::StatusCode::kInvalidArgument);

  v1::Signature bad_name = ValidSig();
  bad_name.mutable_params(0)->set_name("not an identifier");
  s = ValidateSignature(bad_name);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "not an identifier")) << s;

  v1::Signature too_many = ValidSig();
  for (int i = 1; i <= kMaxParams; ++i) {
    too_many.add_params()->mutable_type()->set_scalar(v1::SCALAR_U8);
  }
  s = ValidateSignature(too_many);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(s.message(), "too many")) << s;
}

// Found by tests/fuzz/declaration_fuzz: nested arrays were named innermost
// length first, so a formatted declaration read back as another type.
TEST(FormatDeclarationTest, NestedArraysKeepTheirOrder) {
  absl::StatusOr<v1::StaticDeclaration> grid = ParseStatic("u8[2][4] grid");
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_EQ(grid->type().array().length(), 2u);
  EXPECT_EQ(TypeName(grid->type()), "u8[2][4]");
}

}  // namespace
}  // namespace ffibroker
