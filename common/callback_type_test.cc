// Callback types (issue 12): the `fn(...) -> T` declaration syntax, where a
// callback type is valid, its descriptor, and CallbackSignatureMatches.
#include "common/callback_type.h"

#include <ffi.h>

#include <initializer_list>
#include <set>
#include <string>

#include "common/arg_kinds.h"
#include "common/signature.h"
#include "common/type_table.h"
#include "common/types.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

bool Contains(absl::string_view haystack, absl::string_view needle) {
  return haystack.find(needle) != absl::string_view::npos;
}

// A session's classes: Point { f64 x; f64 y; } and opaque Counter.
ClassTable Classes() {
  ClassTable classes;
  v1::ClassDefinition point;
  point.set_name("Point");
  for (const char* f : {"x", "y"}) {
    v1::FieldDefinition* field = point.add_fields();
    field->set_name(f);
    field->mutable_type()->set_scalar(v1::SCALAR_F64);
  }
  EXPECT_TRUE(classes.Register(point).ok());
  v1::ClassDefinition counter;
  counter.set_name("Counter");
  counter.set_opaque(true);
  EXPECT_TRUE(classes.Register(counter).ok());
  return classes;
}

const std::set<std::string> kClassNames = {"Point", "Counter"};

// Parses and resolves `text` against Classes().
absl::StatusOr<ResolvedSignature> Resolve(absl::string_view text) {
  absl::StatusOr<Declaration> decl = ParseDeclaration(text, kClassNames);
  if (!decl.ok()) return decl.status();
  return ResolveSignature(decl->signature, Classes());
}

void ExpectRefused(absl::string_view text, std::initializer_list<const char*> needles) {
  SCOPED_TRACE(text);
  absl::StatusOr<ResolvedSignature> sig = Resolve(text);
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.status().code(), absl::StatusCode::kInvalidArgument);
  for (const char* needle : needles) {
    EXPECT_TRUE(Contains(sig.status().message(), needle))
        << "'" << sig.status().message() << "' lacks '" << needle << "'";
  }
}

TEST(CallbackDeclarationTest, ParsesResultParametersNamesAndNullability) {
  absl::StatusOr<Declaration> decl =
      ParseDeclaration("void qsort(inout u8[n] base, usize n, usize size, "
                       "fn(usize a, usize b) -> i32 cmp, fn(cstr line)? log)");
  ASSERT_TRUE(decl.ok()) << decl.status();
  ASSERT_EQ(decl->signature.params_size(), 5);
  const v1::Parameter& cmp = decl->signature.params(3);
  EXPECT_EQ(cmp.name(), "cmp");
  ASSERT_TRUE(cmp.type().has_callback());
  EXPECT_FALSE(cmp.type().callback().nullable());
  const v1::Signature& cs = cmp.type().callback().signature();
  EXPECT_EQ(cs.result().scalar(), v1::SCALAR_I32);
  ASSERT_EQ(cs.params_size(), 2);
  EXPECT_EQ(cs.params(0).name(), "a");
  EXPECT_EQ(cs.params(1).type().scalar(), v1::SCALAR_USIZE);
  const v1::Parameter& log = decl->signature.params(4);
  EXPECT_TRUE(log.type().callback().nullable());
  EXPECT_EQ(log.type().callback().signature().result().scalar(), v1::SCALAR_VOID);
}

TEST(CallbackDeclarationTest, FormatRoundTrips) {
  for (const char* text : {
           "i32 sort(fn(usize a, usize b) -> i32 cmp)",
           "void subscribe(fn(cstr line) log)",
           "void hook(fn(in u8[n] data, usize n)? cb)",
           "void every(fn() -> f64 tick, fn(Point p, Point* q, enum i32{0,1} e) -> Point f)",
           "i32 take(fn(i32, i32) -> i32)",
       }) {
    SCOPED_TRACE(text);
    absl::StatusOr<Declaration> decl = ParseDeclaration(text, kClassNames);
    ASSERT_TRUE(decl.ok()) << decl.status();
    EXPECT_EQ(FormatDeclaration(decl->name, decl->signature), text);
    EXPECT_TRUE(Resolve(text).ok()) << Resolve(text).status();
  }
}

TEST(CallbackDeclarationTest, SyntaxErrorsSayWhatWasExpected) {
  absl::StatusOr<Declaration> decl = ParseDeclaration("void f(fn cb)");
  ASSERT_FALSE(decl.ok());
  EXPECT_TRUE(Contains(decl.status().message(), "'(' and the callback's parameters"))
      << decl.status();
  decl = ParseDeclaration("void f(fn(i32 a) - i32 cb)");
  ASSERT_FALSE(decl.ok());
  EXPECT_TRUE(Contains(decl.status().message(), "'->' and the callback's result type"))
      << decl.status();
  decl = ParseDeclaration("void f(fn(i32 a) -> i32? cb)");
  ASSERT_FALSE(decl.ok());
  EXPECT_TRUE(Contains(decl.status().message(), "the '?' follows the parameter list"))
      << decl.status();
}

TEST(CallbackDeclarationTest, OnlyAParameterOfADeclaredFunction) {
  ExpectRefused("fn(i32 a) f()", {"result", "only valid as a parameter of a declared function"});
  absl::StatusOr<v1::StaticDeclaration> st = ParseStatic("fn(i32 a) hook");
  ASSERT_TRUE(st.ok()) << st.status();
  absl::StatusOr<TypeRef> as_static = Classes().Resolve(st->type(), TypeUse::kStatic);
  ASSERT_FALSE(as_static.ok());
  EXPECT_TRUE(Contains(as_static.status().message(), "not as a static"));
  absl::StatusOr<v1::ClassDefinition> def = ParseClass("Hooks { fn(i32 a) on; }");
  ASSERT_TRUE(def.ok()) << def.status();
  ClassTable classes;
  absl::StatusOr<v1::ClassLayout> layout = classes.Register(*def);
  ASSERT_FALSE(layout.ok());
  EXPECT_TRUE(Contains(layout.status().message(), "field 'on'")) << layout.status();
  EXPECT_TRUE(Contains(layout.status().message(), "not as a class field")) << layout.status();
}

TEST(CallbackDeclarationTest, ParametersAndResultsAreChecked) {
  ExpectRefused("void f(fn(fn(i32 x) inner) cb)",
                {"argument 1 (cb:", "callback types do not nest"});
  ExpectRefused("void f(fn(out u8[4] b) cb)", {"only 'in' buffers"});
  ExpectRefused("void f(fn(inout u8[n] b, usize n) cb)", {"only 'in' buffers"});
  ExpectRefused("void f(fn() -> cstr cb)", {"a string is not valid as a callback's result"});
  ExpectRefused("void f(fn() -> Point* cb)",
                {"a class pointer is not valid as a callback's result"});
  ExpectRefused("void f(fn(void x) cb)", {"void is only valid as a result type"});
  ExpectRefused("void f(fn(in u8[len] b) cb)",
                {"length parameter 'len' must be another, integer parameter"});
  ExpectRefused("void f(fn(Counter c) cb)", {"opaque class 'Counter'"});
  // The buffer's length names a parameter of the callback, not of f.
  ExpectRefused("void f(usize n, fn(in u8[n] b) cb)", {"length parameter 'n'"});
  v1::Signature sig;
  sig.mutable_result()->set_scalar(v1::SCALAR_VOID);
  v1::Parameter* p = sig.add_params();
  p->set_name("cb");
  v1::CallbackType* cb = p->mutable_type()->mutable_callback();
  cb->mutable_signature()->set_convention(v1::Signature::CONVENTION_FFI_RETURN);
  cb->mutable_signature()->mutable_result()->set_scalar(v1::SCALAR_I32);
  absl::Status status = ValidateSignature(sig);
  EXPECT_TRUE(Contains(status.message(), "plain calling convention")) << status;
  for (int i = 0; i <= kMaxParams; ++i) {
    cb->mutable_signature()->add_params()->mutable_type()->set_scalar(v1::SCALAR_I32);
  }
  cb->mutable_signature()->set_convention(v1::Signature::CONVENTION_PLAIN);
  status = ValidateSignature(sig);
  EXPECT_TRUE(Contains(status.message(), "too many parameters")) << status;
}

TEST(CallbackDeclarationTest, FnIsAReservedWord) {
  v1::ClassDefinition def;
  def.set_name("fn");
  def.add_fields()->mutable_type()->set_scalar(v1::SCALAR_I32);
  def.mutable_fields(0)->set_name("x");
  ClassTable classes;
  EXPECT_FALSE(classes.Register(def).ok());
}

TEST(CallbackTypeDescTest, IsAPointerWithAPreparedCif) {
  absl::StatusOr<ResolvedSignature> sig = Resolve(
      "void f(fn(Point p, f64 scale, Point* q, cstr s, in u8[n] b, usize n)? -> Point cb)");
  ASSERT_TRUE(sig.ok()) << sig.status();
  const TypeDesc& cb = *sig->params[0];
  EXPECT_EQ(cb.kind, TypeKind::kCallback);
  EXPECT_EQ(cb.size, sizeof(void*));
  EXPECT_EQ(cb.ffi, &ffi_type_pointer);
  EXPECT_TRUE(cb.nullable);
  ASSERT_NE(cb.callback, nullptr);
  const ResolvedSignature& inner = cb.callback->sig;
  ASSERT_EQ(inner.params.size(), 6u);
  EXPECT_EQ(inner.params[0]->kind, TypeKind::kClass);
  EXPECT_EQ(inner.params[2]->kind, TypeKind::kHandle);
  EXPECT_EQ(inner.params[2]->ownership, v1::HandleType::OWNERSHIP_BORROWED);
  EXPECT_EQ(inner.params[3]->kind, TypeKind::kString);
  EXPECT_EQ(inner.length_param[4], 5);
  EXPECT_EQ(inner.result->kind, TypeKind::kClass);
  EXPECT_EQ(cb.callback->cif.nargs, 6u);
  EXPECT_EQ(cb.callback->cif.rtype, inner.result->ffi);
  EXPECT_EQ(cb.callback->cif.arg_types[1], &ffi_type_double);
}

TEST(CallbackSignatureMatchesTest, EqualTypesMatchWhateverTheNames) {
  absl::StatusOr<ResolvedSignature> sig =
      Resolve("void f(fn(in u8[n] data, usize n, Point p) -> i32 cb)");
  ASSERT_TRUE(sig.ok()) << sig.status();
  absl::StatusOr<Declaration> other =
      ParseDeclaration("i32 g(in u8[len] bytes, usize len, Point where)", kClassNames);
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_TRUE(CallbackSignatureMatches(*sig->params[0], other->signature).ok());
}

TEST(CallbackSignatureMatchesTest, TheFirstDifferenceIsNamed) {
  absl::StatusOr<ResolvedSignature> sig = Resolve("void f(fn(i32 a, i32 b) -> i32 cb)");
  ASSERT_TRUE(sig.ok()) << sig.status();
  const TypeDesc& declared = *sig->params[0];
  struct Case {
    const char* registered;
    const char* message;
  } cases[] = {
      {"i32 g(i32 a, i64 b)",
       "callback parameter 2 ('b') is i64, the declared type fn(i32 a, i32 b) -> i32 has i32"},
      {"void g(i32 a, i32 b)", "the callback returns void, the declared type"},
      {"i32 g(i32 a)", "the callback has 1 parameters, the declared type"},
      {"ffireturn i32 g(i32 a, i32 b)", "plain calling convention"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.registered);
    absl::StatusOr<Declaration> reg = ParseDeclaration(c.registered);
    ASSERT_TRUE(reg.ok()) << reg.status();
    absl::Status status = CallbackSignatureMatches(declared, reg->signature);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(status.message(), c.message)) << status;
  }
  // A buffer's length parameter counts by position.
  sig = Resolve("void f(fn(in u8[n] b, usize n, usize m) cb)");
  ASSERT_TRUE(sig.ok()) << sig.status();
  absl::StatusOr<Declaration> reg = ParseDeclaration("void g(in u8[m] b, usize n, usize m)");
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_FALSE(CallbackSignatureMatches(*sig->params[0], reg->signature).ok());
  // Not a callback at all.
  EXPECT_FALSE(CallbackSignatureMatches(*ScalarDesc(*FindScalar(v1::SCALAR_I32)),
                                        reg->signature)
                   .ok());
}

std::string I32Bytes(int32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string I64Bytes(int64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

TEST(CallbackArgsTest, KindsAndIdsOfCallbackParameters) {
  absl::StatusOr<ResolvedSignature> sig = Resolve("void f(fn(i32 a)? -> i32 cb, fn() g)");
  ASSERT_TRUE(sig.ok()) << sig.status();
  EXPECT_EQ(ArgKindOf(*sig->params[0]), ArgKind::kCallback);
  EXPECT_EQ(CallbackIdArg(7), std::string("\x07\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(*ReadCallbackId(CallbackIdArg(7)), 7u);
  EXPECT_FALSE(ReadCallbackId("1234").ok());
  EXPECT_EQ(CallbackResultBytes(sig->params[0]->callback->sig), 4u);
  EXPECT_EQ(CallbackResultBytes(sig->params[1]->callback->sig), 0u);
}

TEST(CallbackArgsTest, InvocationArgumentsAreCheckedAgainstTheSignature) {
  absl::StatusOr<ResolvedSignature> outer = Resolve(
      "void f(fn(i32 a, cstr[4] s, cstr? t, in u8[n] data, i64 n, Point*? p, Point* q) cb)");
  ASSERT_TRUE(outer.ok()) << outer.status();
  const ResolvedSignature& sig = outer->params[0]->callback->sig;
  google::protobuf::RepeatedPtrField<std::string> args;
  for (const std::string& a : {I32Bytes(1), std::string("abc"), std::string(), std::string("xy"),
                               I64Bytes(2), I64Bytes(0), I64Bytes(9)}) {
    *args.Add() = a;
  }
  google::protobuf::RepeatedField<uint32_t> nulls;
  nulls.Add(2);
  EXPECT_TRUE(CheckCallbackArgs(sig, args, nulls).ok()) << CheckCallbackArgs(sig, args, nulls);
  struct Case {
    int index;
    std::string bytes;
    const char* message;
  } cases[] = {
      {0, "123", "callback argument 1 (a: i32) has 3 bytes, expected 4"},
      {1, "abcde", "longer than 4 bytes"},
      {3, "x", "has 1 bytes but the library told length 2"},
      {4, I64Bytes(-1), "negative length"},
      {4, I64Bytes(int64_t{1} << 40), "more than the buffer limit"},
      {6, I64Bytes(0), "argument 7 (q: Point*): the library passed NULL"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    google::protobuf::RepeatedPtrField<std::string> bad = args;
    *bad.Mutable(c.index) = c.bytes;
    absl::Status status = CheckCallbackArgs(sig, bad, nulls);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(status.message(), c.message)) << status;
  }
  google::protobuf::RepeatedField<uint32_t> null_s;
  null_s.Add(1);
  EXPECT_TRUE(Contains(CheckCallbackArgs(sig, args, null_s).message(), "passed NULL"));
  args.RemoveLast();
  EXPECT_TRUE(Contains(CheckCallbackArgs(sig, args, nulls).message(), "takes 7 arguments"));
}

}  // namespace
}  // namespace ffibroker
