// End-to-end tests of classes, instance handles, buffers, strings, statics
// and iroha_ffi-style opaque types, through the C++ client against the real
// daemon and workers (tests/native/classes.c).
#include <cerrno>
#include <cstdint>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "common/literal.h"
#include "ffibroker/instance.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPoint[] = "Point { mut f64 x; f64 y; } ~point_free";

void ExpectError(const absl::Status& status, absl::StatusCode code,
                 const std::vector<std::string>& fragments) {
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& f : fragments) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(f));
  }
}

class ClassesTest : public DaemonSessionTest {
 protected:
  std::unique_ptr<Library> Open(const std::vector<std::string>& decls,
                                const std::vector<std::string>& statics = {},
                                Session* session = nullptr) {
    auto lib = (session ? session : session_.get())->OpenLibrary("classes", decls, statics);
    EXPECT_TRUE(lib.ok()) << lib.status();
    return lib.ok() ? std::move(*lib) : nullptr;
  }
  v1::Value Point(double x, double y) {
    return StructOf({{"x", ToValue(x)}, {"y", ToValue(y)}});
  }
};

TEST_F(ClassesTest, RegisterClassReturnsTheLibffiLayout) {
  auto layout = session_->RegisterClass("Tagged { u8 tag; f64 value; mut u16[3] ids; bool on; }");
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->size(), 24u);
  EXPECT_EQ(layout->alignment(), 8u);
  ASSERT_EQ(layout->fields_size(), 4);
  EXPECT_EQ(layout->fields(0).offset(), 0u);
  EXPECT_EQ(layout->fields(0).padding_after(), 7u);
  EXPECT_EQ(layout->fields(1).offset(), 8u);
  EXPECT_EQ(layout->fields(2).offset(), 16u);
  EXPECT_EQ(layout->fields(2).type(), "u16[3]");
  EXPECT_TRUE(layout->fields(2).mutable_());
  EXPECT_EQ(layout->fields(3).offset(), 22u);
  EXPECT_EQ(layout->fields(3).padding_after(), 1u);
}

TEST_F(ClassesTest, InvalidClassDefinitionsArePreciseErrors) {
  ASSERT_TRUE(session_->RegisterClass(kPoint).ok());
  ExpectError(session_->RegisterClass(kPoint).status(), absl::StatusCode::kAlreadyExists,
              {"'Point' is already registered"});
  v1::ClassDefinition def;
  def.set_name("Empty");
  ExpectError(session_->RegisterClass(def).status(), absl::StatusCode::kInvalidArgument,
              {"no fields"});
  def.set_name("Self");
  v1::FieldDefinition* f = def.add_fields();
  f->set_name("next");
  f->mutable_type()->set_class_name("Self");
  ExpectError(session_->RegisterClass(def).status(), absl::StatusCode::kInvalidArgument,
              {"field 'next'", "cannot contain itself"});
  f->mutable_type()->set_class_name("Nowhere");
  ExpectError(session_->RegisterClass(def).status(), absl::StatusCode::kInvalidArgument,
              {"unknown class 'Nowhere'"});
  f->mutable_type()->set_scalar(v1::SCALAR_VOID);
  ExpectError(session_->RegisterClass(def).status(), absl::StatusCode::kInvalidArgument,
              {"void"});
  ExpectError(session_->RegisterClass("Dup { i32 a; i32 a; }").status(),
              absl::StatusCode::kInvalidArgument, {"'a': declared twice"});
  ExpectError(session_->RegisterClass("u8 { i32 a; }").status(),
              absl::StatusCode::kInvalidArgument, {"class name"});
}

TEST_F(ClassesTest, StructsByValueNestedArraysAndEnums) {
  ASSERT_TRUE(session_->RegisterClass(kPoint).ok());
  ASSERT_TRUE(session_->RegisterClass(
      "Rect { Point min; Point max; u8[4] tags; enum i32{0,1,2} kind; bool visible; }").ok());
  auto lib = Open({"Point make_point(f64, f64)", "f64 point_norm2(Point p)",
                   "Rect make_rect(Point a, Point b, enum i32{0,1,2} kind)",
                   "f64 rect_area(Rect r)"});
  ASSERT_NE(lib, nullptr);
  auto made = lib->CallValues("make_point", {ToValue(3.0), ToValue(4.0)});
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(FormatValue(made->result()), "{x=3, y=4}");
  EXPECT_EQ(*lib->Call<double>("point_norm2", Point(3, 4)), 25.0);
  auto rect = lib->CallValues("make_rect", {Point(1, 1), Point(3, 4), ToValue(2)});
  ASSERT_TRUE(rect.ok()) << rect.status();
  EXPECT_EQ(FormatValue(rect->result()),
            "{min={x=1, y=1}, max={x=3, y=4}, tags=[1, 2, 3, 4], kind=2, visible=true}");
  EXPECT_EQ(*lib->Call<double>("rect_area", rect->result()), 10.0);
  // Rejections name the argument and the field.
  ExpectError(lib->Call<double>("point_norm2", StructOf({{"x", ToValue(1.0)}})).status(),
              absl::StatusCode::kInvalidArgument, {"argument 1 (p: Point)", "field 'y'", "missing"});
  ExpectError(lib->Call<double>("point_norm2", StructOf({{"x", ToValue(1.0)}, {"y", ToValue(true)}}))
                  .status(),
              absl::StatusCode::kInvalidArgument, {"field 'y'", "bool_value"});
  ExpectError(lib->Call<double>("point_norm2",
                                StructOf({{"x", ToValue(1.0)}, {"y", ToValue(1.0)}, {"z", ToValue(1.0)}}))
                  .status(),
              absl::StatusCode::kInvalidArgument, {"no field 'z'"});
  ExpectError(lib->CallValues("make_rect", {Point(1, 1), Point(3, 4), ToValue(3)}).status(),
              absl::StatusCode::kInvalidArgument, {"argument 3", "3 is not a value of"});
  v1::Value bad_tags = rect->result();
  bad_tags.mutable_struct_value()->mutable_fields(2)->mutable_value()->mutable_array_value()
      ->mutable_elements(1)->set_uint_value(256);
  ExpectError(lib->Call<double>("rect_area", bad_tags).status(),
              absl::StatusCode::kInvalidArgument, {"field 'tags[1]'", "out of range for u8"});
  ExpectError(lib->Call<double>("point_norm2", ToValue(1.0)).status(),
              absl::StatusCode::kInvalidArgument, {"expected struct_value"});
}

TEST_F(ClassesTest, ReadmeExampleInstanceLifecycle) {
  ASSERT_TRUE(session_->RegisterClass(kPoint).ok());
  auto lib = Open({"Point* point_new(f64 x, f64 y)", "void point_scale(Point* p, f64 k)"},
                  {"i32 points_freed"});
  ASSERT_NE(lib, nullptr);
  auto p = lib->CallInstance("point_new", 1.5, 2.0);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_NE(*p, nullptr);
  EXPECT_EQ(*(*p)->Get<double>("x"), 1.5);
  ASSERT_TRUE((*p)->Set("x", ToValue(10.0)).ok());
  ASSERT_TRUE(lib->Call<void>("point_scale", **p, 2.0).ok());
  auto fields = (*p)->Read();
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ(FormatValue(*fields), "{x=20, y=4}");
  // y is not mutable.
  ExpectError((*p)->Set("y", ToValue(1.0)), absl::StatusCode::kInvalidArgument,
              {"field 'y' of Point is not mutable"});
  ExpectError((*p)->Set("x", ToValue(true)), absl::StatusCode::kInvalidArgument,
              {"field 'x'"});
  uint64_t handle = (*p)->handle();
  auto freed = (*p)->Free();
  ASSERT_TRUE(freed.ok()) << freed.status();
  EXPECT_TRUE(*freed);  // point_free ran
  EXPECT_EQ(FormatValue(*lib->ReadStatic("points_freed")), "1");
  // Use after free and double free are errors, never memory access.
  Instance stale(lib.get(), handle);
  ExpectError(stale.Read().status(), absl::StatusCode::kFailedPrecondition,
              {"stale", "was freed"});
  ExpectError(stale.Free().status(), absl::StatusCode::kFailedPrecondition, {"was freed"});
  ExpectError(lib->Call<void>("point_scale", stale, 2.0), absl::StatusCode::kFailedPrecondition,
              {"argument 1 (p: Point*)", "was freed"});
}

TEST_F(ClassesTest, NewInstanceAndHandleChecks) {
  ASSERT_TRUE(session_->RegisterClass(kPoint).ok());
  ASSERT_TRUE(session_->RegisterClass("Flagged { mut bool flag; mut enum i32{1,2} kind; }").ok());
  auto lib = Open({"f64 point_sum(Point*? p)", "void point_scale(Point* p, f64 k)"});
  ASSERT_NE(lib, nullptr);
  auto p = lib->NewInstance("Point", StructOf({{"x", ToValue(1.0)}}));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*lib->Call<double>("point_sum", **p), 1.0);  // y defaulted to 0
  EXPECT_EQ(*lib->Call<double>("point_sum", NullValue()), -1.0);
  ExpectError(lib->Call<void>("point_scale", NullValue(), 1.0),
              absl::StatusCode::kInvalidArgument, {"null is not allowed"});
  // Forged handles.
  v1::Value forged;
  forged.set_handle_value((*p)->handle() + 1);
  ExpectError(lib->Call<double>("point_sum", forged).status(), absl::StatusCode::kNotFound,
              {"is not an instance of this session"});
  forged.set_handle_value(0xdeadbeef00000001ull);
  ExpectError(lib->Call<double>("point_sum", forged).status(), absl::StatusCode::kNotFound,
              {"is not an instance of this session"});
  // Wrong class.
  auto f = lib->NewInstance("Flagged", StructOf({{"kind", ToValue(1)}}));
  ASSERT_TRUE(f.ok()) << f.status();
  ExpectError(lib->Call<double>("point_sum", **f).status(), absl::StatusCode::kInvalidArgument,
              {"is a Flagged, not a Point"});
  // A zero default that is not a declared enum value must be given.
  ExpectError(lib->NewInstance("Flagged").status(), absl::StatusCode::kInvalidArgument,
              {"field 'kind'", "give this one a value"});
  ExpectError(lib->NewInstance("Nope").status(), absl::StatusCode::kNotFound, {"'Nope'"});
  ExpectError((*f)->Set("kind", ToValue(7)), absl::StatusCode::kInvalidArgument,
              {"7 is not a value of"});
  // Another session's handle is foreign.
  auto other = NewSession();
  ASSERT_TRUE(other->RegisterClass(kPoint).ok());
  auto other_lib = Open({"f64 point_sum(Point*? p)"}, {}, other.get());
  ASSERT_NE(other_lib, nullptr);
  ExpectError(other_lib->Call<double>("point_sum", **p).status(),
              absl::StatusCode::kNotFound, {"is not an instance of this session"});
  Instance foreign(other_lib.get(), (*p)->handle());
  ExpectError(foreign.Read().status(), absl::StatusCode::kNotFound,
              {"is not an instance of this session"});
  foreign.Release();
  // A handle of another library of the same session.
  auto lib2 = Open({"f64 point_sum(Point*? p)"});
  ExpectError(lib2->Call<double>("point_sum", **p).status(), absl::StatusCode::kInvalidArgument,
              {"lives in library"});
}

TEST_F(ClassesTest, LibraryResultsNullBorrowedAndValidatedMemory) {
  ASSERT_TRUE(session_->RegisterClass(kPoint).ok());
  ASSERT_TRUE(session_->RegisterClass("Flagged { mut bool flag; enum i32{0,1,2} kind; } ~flagged_free").ok());
  auto lib = Open({"Point* maybe_point(i32)", "borrowed Point* origin_borrowed()",
                   "Flagged bad_flag()", "Flagged bad_kind()", "Flagged* flagged_new()",
                   "void flagged_corrupt(Flagged* f)"},
                  {"i32 points_freed"});
  ASSERT_NE(lib, nullptr);
  auto none = lib->CallValues("maybe_point", {ToValue(0)});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->result().null_value());
  auto borrowed = lib->CallInstance("origin_borrowed");
  ASSERT_TRUE(borrowed.ok()) << borrowed.status();
  EXPECT_EQ(FormatValue(*(*borrowed)->Read()), "{x=0, y=0}");
  EXPECT_FALSE(*(*borrowed)->Free());  // never freed by the broker
  EXPECT_EQ(FormatValue(*lib->ReadStatic("points_freed")), "0");
  // Trap representations from the library are DATA_LOSS naming the field.
  ExpectError(lib->CallValues("bad_flag", {}).status(), absl::StatusCode::kDataLoss,
              {"field 'flag'", "invalid bool representation 7"});
  ExpectError(lib->CallValues("bad_kind", {}).status(), absl::StatusCode::kDataLoss,
              {"field 'kind'", "9 is not a declared value"});
  auto f = lib->CallInstance("flagged_new");
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_TRUE(lib->Call<void>("flagged_corrupt", **f).ok());
  ExpectError((*f)->Read().status(), absl::StatusCode::kDataLoss,
              {"Flagged", "field 'flag'", "invalid bool representation 7"});
  // Declaring an owned result of a class without a destructor is refused.
  auto refused = session_->OpenLibrary("classes", {"Point* maybe_point(i32)"});
  ASSERT_TRUE(refused.ok());
  ASSERT_TRUE(session_->RegisterClass("Bare { f64 x; }").ok());
  ExpectError(session_->OpenLibrary("classes", {"Bare* maybe_point(i32)"}).status(),
              absl::StatusCode::kInvalidArgument, {"names no destructor", "borrowed Bare*"});
}

TEST_F(ClassesTest, DestructorsRunAtSessionEndAndHandlesDie) {
  ASSERT_TRUE(session_->RegisterClass(kPoint).ok());
  auto lib = Open({"Point* point_new(f64 x, f64 y)"});
  ASSERT_NE(lib, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto p = lib->CallInstance("point_new", 1.0, 2.0);
    ASSERT_TRUE(p.ok()) << p.status();
    (*p)->Release();  // leave it to the session
  }
  ASSERT_TRUE(session_->Close().ok());
  EXPECT_THAT(daemon_->ReadLog(), HasSubstr("3 instances released, 3 destructors called"));
}

TEST_F(ClassesTest, InstancesOfACrashedWorkerAreStale) {
  ASSERT_TRUE(session_->RegisterClass(kPoint).ok());
  auto lib = Open({"f64 point_sum(Point*? p)", "void crash_now()"});
  ASSERT_NE(lib, nullptr);
  auto p = lib->NewInstance("Point", Point(1, 2));
  ASSERT_TRUE(p.ok()) << p.status();
  ExpectError(lib->Call<void>("crash_now"), absl::StatusCode::kUnavailable, {"SIGSEGV"});
  ExpectError((*p)->Read().status(), absl::StatusCode::kFailedPrecondition, {"stale"});
  // The worker is back, the handle stays dead.
  EXPECT_EQ(*lib->Call<double>("point_sum", NullValue()), -1.0);
  ExpectError(lib->Call<double>("point_sum", **p).status(), absl::StatusCode::kFailedPrecondition,
              {"stale"});
  auto fresh = lib->NewInstance("Point", Point(1, 2));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(*lib->Call<double>("point_sum", **fresh), 3.0);
  (*p)->Release();
}

TEST_F(ClassesTest, StringsAndBuffers) {
  ExpectError(session_->OpenLibrary("classes", {"void fill(out u8[len] buf, u64 n)"}).status(),
              absl::StatusCode::kInvalidArgument, {"length parameter 'len'"});
  ExpectError(session_->OpenLibrary("classes", {"cstr[3] greet()"}).status(),
              absl::StatusCode::kOk, {});
  auto short_lib = Open({"cstr[3] greet()"});
  ASSERT_NE(short_lib, nullptr);
  ExpectError(short_lib->CallValues("greet", {}).status(), absl::StatusCode::kDataLoss,
              {"longer than 3"});
  auto lib = Open({"u64 str_len(cstr? s)", "cstr greet()", "cstr bad_utf8()", "cstr null_string()",
              "void fill(out u8[n] buf, u64 n, u8 v)", "u32 sum_bytes(in u8[n] buf, u64 n)",
              "void reverse4(inout u8[4] buf)"});
  ASSERT_NE(lib, nullptr);
  EXPECT_EQ(*lib->Call<uint64_t>("str_len", StringValue("h\xc3\xa9llo")), 6u);
  EXPECT_EQ(*lib->Call<uint64_t>("str_len", NullValue()), 999u);
  ExpectError(lib->Call<uint64_t>("str_len", StringValue("\xff")).status(),
              absl::StatusCode::kInvalidArgument, {"argument 1", "UTF-8"});
  ExpectError(lib->Call<uint64_t>("str_len", StringValue(std::string("a\0b", 3))).status(),
              absl::StatusCode::kInvalidArgument, {"NUL"});
  ExpectError(lib->Call<uint64_t>("str_len", StringValue(std::string(70000, 'a'))).status(),
              absl::StatusCode::kInvalidArgument, {"longer than 65536"});
  EXPECT_EQ(lib->CallValues("greet", {})->result().string_value(), "h\xc3\xa9llo");
  ExpectError(lib->CallValues("bad_utf8", {}).status(), absl::StatusCode::kDataLoss, {"UTF-8"});
  EXPECT_TRUE(lib->CallValues("null_string", {})->result().null_value());
  auto filled = lib->CallValues("fill", {BytesValue(""), ToValue(uint64_t{3}), ToValue(uint8_t{7})});
  ASSERT_TRUE(filled.ok()) << filled.status();
  ASSERT_EQ(filled->outputs_size(), 1);
  EXPECT_EQ(filled->outputs(0).param_index(), 0u);
  EXPECT_EQ(filled->outputs(0).value().bytes_value(), "\x07\x07\x07");
  EXPECT_EQ(*lib->Call<uint32_t>("sum_bytes", BytesValue("\x01\x02\x03"), uint64_t{3}), 6u);
  ExpectError(lib->Call<uint32_t>("sum_bytes", BytesValue("\x01\x02"), uint64_t{3}).status(),
              absl::StatusCode::kInvalidArgument, {"2 bytes given", "parameter 'n'"});
  ExpectError(lib->CallValues("fill", {BytesValue(""), ToValue(uint64_t{1} << 40), ToValue(1)})
                  .status(),
              absl::StatusCode::kResourceExhausted, {"larger than the policy allows (limits.max_buffer_bytes 16777216)"});
  auto reversed = lib->CallValues("reverse4", {BytesValue("abcd")});
  ASSERT_TRUE(reversed.ok()) << reversed.status();
  EXPECT_EQ(reversed->outputs(0).value().bytes_value(), "dcba");
  ExpectError(lib->CallValues("reverse4", {BytesValue("abc")}).status(),
              absl::StatusCode::kInvalidArgument, {"3 bytes given", "length is 4"});
}

TEST_F(ClassesTest, OpaqueClassesWithFfiReturn) {
  ASSERT_TRUE(session_->RegisterClass("opaque Counter").ok());
  ExpectError(session_->OpenLibrary("classes", {"ffireturn i64 Counter__nothing(Counter* self)"})
                  .status(),
              absl::StatusCode::kNotFound, {"Counter__nothing"});
  auto lib = Open({"ffireturn Counter* Counter__new(i64 start)",
              "ffireturn i64 Counter__value(Counter*? self)",
              "ffireturn void Counter__set_value(Counter* self, i64 v)",
              "ffireturn void Counter__increment(Counter* self)"},
             {"i64 counters_dropped"});
  ASSERT_NE(lib, nullptr);
  auto c = lib->CallInstance("Counter__new", int64_t{41});
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(lib->Call<void>("Counter__increment", **c).ok());
  EXPECT_EQ(*lib->Call<int64_t>("Counter__value", **c), 42);
  ASSERT_TRUE(lib->Call<void>("Counter__set_value", **c, INT64_MAX).ok());
  ExpectError(lib->Call<void>("Counter__increment", **c), absl::StatusCode::kAborted,
              {"FfiReturn ExecutionFail (-2)"});
  ExpectError(lib->CallInstance("Counter__new", int64_t{-1}).status(),
              absl::StatusCode::kInvalidArgument, {"FfiReturn ConversionFailed (-6)"});
  ExpectError(lib->Call<int64_t>("Counter__value", NullValue()).status(),
              absl::StatusCode::kInvalidArgument, {"FfiReturn ArgIsNull (-1)"});
  ExpectError((*c)->Read().status(), absl::StatusCode::kFailedPrecondition, {"opaque"});
  ExpectError(lib->NewInstance("Counter").status(), absl::StatusCode::kInvalidArgument,
              {"opaque"});
  EXPECT_TRUE(*(*c)->Free());  // Counter__drop
  EXPECT_EQ(FormatValue(*lib->ReadStatic("counters_dropped")), "1");
  ExpectError(session_->OpenLibrary("classes", {"Counter Counter__new(i64)"}).status(),
              absl::StatusCode::kInvalidArgument, {"opaque class 'Counter'"});
}

TEST_F(ClassesTest, ErrnoStaticsAndOptionalSymbols) {
  ASSERT_TRUE(session_->RegisterClass(kPoint).ok());
  ExpectError(session_->OpenLibrary("classes", {"void not_exported()"}).status(),
              absl::StatusCode::kNotFound, {"not_exported"});
  auto lib = Open({"errno i32 fail_with(i32 e)", "optional void not_exported()"},
             {"mut i32 counter_static", "f64 pi_static", "mut Point origin_static",
              "bool bad_bool_static", "optional i32 no_such_static"});
  ASSERT_NE(lib, nullptr);
  EXPECT_EQ(lib->missing_symbols(), (std::vector<std::string>{"not_exported", "no_such_static"}));
  auto failed = lib->CallValues("fail_with", {ToValue(ERANGE)});
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->errno_value(), ERANGE);
  ExpectError(lib->Call<void>("not_exported"), absl::StatusCode::kFailedPrecondition,
              {"optional symbol 'not_exported'"});
  EXPECT_EQ(FormatValue(*lib->ReadStatic("counter_static")), "5");
  ASSERT_TRUE(lib->WriteStatic("counter_static", ToValue(9)).ok());
  EXPECT_EQ(FormatValue(*lib->ReadStatic("counter_static")), "9");
  EXPECT_EQ(FormatValue(*lib->ReadStatic("pi_static")), "3.25");
  ExpectError(lib->WriteStatic("pi_static", ToValue(1.0)), absl::StatusCode::kInvalidArgument,
              {"not declared mutable"});
  ExpectError(lib->WriteStatic("counter_static", ToValue(int64_t{1} << 40)),
              absl::StatusCode::kInvalidArgument, {"out of range"});
  ASSERT_TRUE(lib->WriteStatic("origin_static", Point(5, 6)).ok());
  EXPECT_EQ(FormatValue(*lib->ReadStatic("origin_static")), "{x=5, y=6}");
  ExpectError(lib->ReadStatic("bad_bool_static").status(), absl::StatusCode::kDataLoss,
              {"invalid bool representation 7"});
  ExpectError(lib->ReadStatic("no_such_static").status(), absl::StatusCode::kFailedPrecondition,
              {"not exported"});
  ExpectError(lib->ReadStatic("undeclared").status(), absl::StatusCode::kNotFound,
              {"not declared"});
}

TEST(ClassesPolicyTest, PolicyBoundsBuffersAndStrings) {
  auto daemon = TestDaemon::Start("limits { max_buffer_bytes: 4 max_string_bytes: 5 }");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary(
      "classes", {"u64 str_len(cstr? s)", "void fill(out u8[n] buf, u64 n, u8 v)",
                  "u32 sum_bytes(in u8[n] buf, u64 n)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  // At the bounds: accepted.
  EXPECT_EQ(*(*lib)->Call<uint64_t>("str_len", StringValue("abcde")), 5u);
  EXPECT_EQ(*(*lib)->Call<uint32_t>("sum_bytes", BytesValue("\x01\x02\x03\x04"), uint64_t{4}), 10u);
  // One past: refused before the worker sees it, naming the policy limit.
  ExpectError((*lib)->Call<uint64_t>("str_len", StringValue("abcdef")).status(),
              absl::StatusCode::kResourceExhausted, {"argument 1", "limits.max_string_bytes 5"});
  ExpectError((*lib)->Call<uint32_t>("sum_bytes", BytesValue("\x01\x02\x03\x04\x05"),
                                     uint64_t{5}).status(),
              absl::StatusCode::kResourceExhausted, {"limits.max_buffer_bytes 4"});
  ExpectError((*lib)->CallValues("fill", {BytesValue(""), ToValue(uint64_t{5}), ToValue(uint8_t{1})})
                  .status(),
              absl::StatusCode::kResourceExhausted, {"limits.max_buffer_bytes 4"});
}

}  // namespace
}  // namespace ffibroker::testing
