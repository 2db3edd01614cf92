// End-to-end typed calls through the C++ client: every scalar type with its
// edge values, and every way a request can be rejected before it reaches a
// worker.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

class CallTest : public DaemonSessionTest {
 protected:
  std::unique_ptr<Library> Open(const std::string& name,
                                const std::vector<std::string>& decls) {
    auto lib = session_->OpenLibrary(name, decls);
    EXPECT_TRUE(lib.ok()) << lib.status();
    return lib.ok() ? std::move(*lib) : nullptr;
  }

};

TEST_F(CallTest, CosInLibmRunsInAWorker) {
  auto libm = Open("libm.so.6", {"f64 cos(f64 x)"});
  ASSERT_NE(libm, nullptr);
  EXPECT_GT(libm->worker_pid(), 0);
  EXPECT_NE(libm->worker_pid(), daemon_->pid());
  absl::StatusOr<double> c = libm->Call<double>("cos", 0.5);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(*c, 0.8775825618903728);
}

template <typename T>
void ExpectIdentity(Library& lib, const std::string& symbol, T value) {
  absl::StatusOr<T> got = lib.Call<T>(symbol, value);
  ASSERT_TRUE(got.ok()) << symbol << ": " << got.status();
  EXPECT_EQ(*got, value) << symbol;
}

TEST_F(CallTest, IntegerEdgeValuesRoundTripExactly) {
  auto lib = Open("scalars", {"i8 id_i8(i8)", "u8 id_u8(u8)", "i16 id_i16(i16)",
                              "u16 id_u16(u16)", "i32 id_i32(i32)", "u32 id_u32(u32)",
                              "i64 id_i64(i64)", "u64 id_u64(u64)",
                              "isize id_isize(isize)", "usize id_usize(usize)"});
  ASSERT_NE(lib, nullptr);
  for (int8_t v : {int8_t{INT8_MIN}, int8_t{-1}, int8_t{0}, int8_t{INT8_MAX}}) ExpectIdentity(*lib, "id_i8", v);
  for (uint8_t v : {uint8_t{0}, uint8_t{UINT8_MAX}}) ExpectIdentity(*lib, "id_u8", v);
  for (int16_t v : {int16_t{INT16_MIN}, int16_t{INT16_MAX}}) ExpectIdentity(*lib, "id_i16", v);
  for (uint16_t v : {uint16_t{0}, uint16_t{UINT16_MAX}}) ExpectIdentity(*lib, "id_u16", v);
  for (int32_t v : {INT32_MIN, INT32_MAX}) ExpectIdentity(*lib, "id_i32", v);
  for (uint32_t v : {0u, UINT32_MAX}) ExpectIdentity(*lib, "id_u32", v);
  for (int64_t v : {INT64_MIN, int64_t{-1}, INT64_MAX}) ExpectIdentity(*lib, "id_i64", v);
  for (uint64_t v : {uint64_t{0}, uint64_t{1} << 53 | 1, UINT64_MAX}) {
    ExpectIdentity(*lib, "id_u64", v);
  }
  for (int64_t v : {INT64_MIN, INT64_MAX}) ExpectIdentity(*lib, "id_isize", v);
  for (uint64_t v : {uint64_t{0}, UINT64_MAX}) ExpectIdentity(*lib, "id_usize", v);
}

TEST_F(CallTest, SixtyFourBitArithmeticIsExact) {
  auto lib = Open("scalars", {"u64 u64_minus_one(u64)", "i64 i64_plus_one(i64)",
                              "u64 make_u64_max()", "i64 make_i64_min()"});
  ASSERT_NE(lib, nullptr);
  // 2^64-2 and -2^63+1 are not representable as doubles.
  EXPECT_EQ(*lib->Call<uint64_t>("u64_minus_one", UINT64_MAX), UINT64_MAX - 1);
  EXPECT_EQ(*lib->Call<int64_t>("i64_plus_one", INT64_MIN), INT64_MIN + 1);
  EXPECT_EQ(*lib->Call<uint64_t>("make_u64_max"), UINT64_MAX);
  EXPECT_EQ(*lib->Call<int64_t>("make_i64_min"), INT64_MIN);
}

TEST_F(CallTest, FloatEdgeValuesRoundTripBitExactly) {
  auto lib = Open("scalars", {"f64 id_f64(f64)", "f32 id_f32(f32)",
                              "bool f64_is_negative_zero(f64)", "bool f64_is_nan(f64)",
                              "f64 make_neg_zero()", "f64 make_nan()", "f64 make_inf()",
                              "f64 make_denormal()", "f32 make_f32_denormal()",
                              "f64 f64_next_up(f64)", "f32 half_f32(f32)"});
  ASSERT_NE(lib, nullptr);
  for (double v : {0.0, DBL_MIN, DBL_MAX, -DBL_MAX, DBL_TRUE_MIN, -DBL_TRUE_MIN,
                   std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(), 0.1}) {
    ExpectIdentity(*lib, "id_f64", v);
  }
  for (float v : {0.0f, FLT_MIN, FLT_MAX, FLT_TRUE_MIN, -FLT_TRUE_MIN,
                  std::numeric_limits<float>::infinity(), 0.1f}) {
    ExpectIdentity(*lib, "id_f32", v);
  }
  absl::StatusOr<double> neg_zero = lib->Call<double>("id_f64", -0.0);
  ASSERT_TRUE(neg_zero.ok());
  EXPECT_TRUE(std::signbit(*neg_zero));
  EXPECT_TRUE(*lib->Call<bool>("f64_is_negative_zero", -0.0));
  EXPECT_FALSE(*lib->Call<bool>("f64_is_negative_zero", 0.0));
  EXPECT_TRUE(*lib->Call<bool>("f64_is_nan", std::nan("")));
  EXPECT_TRUE(std::isnan(*lib->Call<double>("id_f64", std::nan(""))));
  EXPECT_TRUE(std::isnan(*lib->Call<float>("id_f32", std::nanf(""))));
  EXPECT_TRUE(std::signbit(*lib->Call<double>("make_neg_zero")));
  EXPECT_TRUE(std::isnan(*lib->Call<double>("make_nan")));
  EXPECT_TRUE(std::isinf(*lib->Call<double>("make_inf")));
  EXPECT_EQ(*lib->Call<double>("make_denormal"), DBL_TRUE_MIN);
  EXPECT_EQ(*lib->Call<float>("make_f32_denormal"), FLT_TRUE_MIN);
  EXPECT_EQ(*lib->Call<double>("f64_next_up", 1.0), std::nextafter(1.0, 2.0));
  EXPECT_EQ(*lib->Call<float>("half_f32", 3.0f), 1.5f);
}

TEST_F(CallTest, BoolsAndMixedArgumentsReachNativeCodeIntact) {
  auto lib = Open("scalars", {"bool id_bool(bool)", "bool not_bool(bool)", "i8 neg_i8(i8)",
                         "f64 mix(i8 a, u16 b, i32 c, u64 d, f32 e, f64 f, bool g)",
                         "i64 sum10(i64, i64, i64, i64, i64, i64, i64, i64, i64, i64)"});
  ASSERT_NE(lib, nullptr);
  EXPECT_TRUE(*lib->Call<bool>("id_bool", true));
  EXPECT_FALSE(*lib->Call<bool>("id_bool", false));
  EXPECT_FALSE(*lib->Call<bool>("not_bool", true));
  EXPECT_EQ(*lib->Call<int8_t>("neg_i8", int8_t{-127}), 127);
  absl::StatusOr<double> mixed = lib->Call<double>(
      "mix", int8_t{-5}, uint16_t{65535}, int32_t{-100000}, uint64_t{1} << 40, 0.5f, 0.25, true);
  ASSERT_TRUE(mixed.ok()) << mixed.status();
  EXPECT_EQ(*mixed, -5.0 + 65535.0 - 100000.0 + 1099511627776.0 + 0.5 + 0.25 + 1000.0);
  absl::StatusOr<int64_t> sum = lib->Call<int64_t>(
      "sum10", int64_t{1}, int64_t{2}, int64_t{3}, int64_t{4}, int64_t{5}, int64_t{6},
      int64_t{7}, int64_t{8}, int64_t{9}, int64_t{INT64_MAX - 45});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, INT64_MAX);
}

TEST_F(CallTest, WorkerKeepsLibraryStateBetweenCalls) {
  auto lib = Open("scalars", {"i32 counter_next()", "void counter_reset()"});
  ASSERT_NE(lib, nullptr);
  EXPECT_EQ(*lib->Call<int32_t>("counter_next"), 1);
  EXPECT_EQ(*lib->Call<int32_t>("counter_next"), 2);
  EXPECT_TRUE(lib->Call<void>("counter_reset").ok());
  EXPECT_EQ(*lib->Call<int32_t>("counter_next"), 1);
}

// --- Rejections: each names what was wrong, and nothing reaches the worker.

void ExpectError(const absl::Status& status, absl::StatusCode code,
                 const std::vector<std::string>& fragments) {
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& f : fragments) {
    EXPECT_THAT(std::string(status.message()), HasSubstr(f));
  }
}

TEST_F(CallTest, ArgumentsAreValidatedBeforeTheWorkerSeesThem) {
  auto lib = Open("scalars", {"u8 id_u8(u8 byte)", "i32 id_i32(i32)", "bool id_bool(bool)",
                              "f32 id_f32(f32)", "i32 counter_next()"});
  ASSERT_NE(lib, nullptr);
  ExpectError(lib->Call<uint8_t>("id_u8", 300).status(), absl::StatusCode::kInvalidArgument,
              {"argument 1 (byte: u8)", "300", "0..255"});
  ExpectError(lib->Call<uint8_t>("id_u8", -1).status(), absl::StatusCode::kInvalidArgument,
              {"argument 1 (byte: u8)", "-1"});
  ExpectError(lib->Call<int32_t>("id_i32", int64_t{1} << 31).status(),
              absl::StatusCode::kInvalidArgument, {"argument 1 (i32)", "2147483648"});
  ExpectError(lib->Call<int32_t>("id_i32", 1.5).status(), absl::StatusCode::kInvalidArgument,
              {"argument 1 (i32)", "f64_value"});
  ExpectError(lib->Call<bool>("id_bool", 1).status(), absl::StatusCode::kInvalidArgument,
              {"argument 1 (bool)", "bool_value"});
  ExpectError(lib->Call<float>("id_f32", 0.1).status(), absl::StatusCode::kInvalidArgument,
              {"argument 1 (f32)", "not exactly representable"});
  ExpectError(lib->Call<uint8_t>("id_u8", 1, 2).status(), absl::StatusCode::kInvalidArgument,
              {"id_u8", "expected 1 argument, got 2"});
  ExpectError(lib->Call<uint8_t>("id_u8").status(), absl::StatusCode::kInvalidArgument,
              {"expected 1 argument, got 0"});
  ExpectError(lib->CallValues("id_u8", {v1::Value()}).status(),
              absl::StatusCode::kInvalidArgument, {"no value"});
  ExpectError(lib->Call<int32_t>("abs", 1).status(), absl::StatusCode::kNotFound,
              {"'abs' was not declared", "id_u8"});
  // The worker served none of the rejected calls: its state is untouched.
  EXPECT_EQ(*lib->Call<int32_t>("counter_next"), 1);
}

TEST_F(CallTest, OpenRejectsUnknownLibrariesSymbolsAndDeclarations) {
  ExpectError(session_->OpenLibrary("nonexistent.so", {"void f()"}).status(),
              absl::StatusCode::kNotFound, {"no library named 'nonexistent.so'"});
  // Whether a path exists is nobody's business (tests/security/authorization_test.cc).
  ExpectError(session_->OpenLibrary("/nonexistent/libx.so", {"void f()"}).status(),
              absl::StatusCode::kPermissionDenied, {"not allowed"});
  ExpectError(session_->OpenLibrary("/etc/hostname", {"void f()"}).status(),
              absl::StatusCode::kPermissionDenied, {"not allowed"});
  ExpectError(session_->OpenLibrary("lib/x.so", {"void f()"}).status(),
              absl::StatusCode::kInvalidArgument, {"relative"});
  ExpectError(session_->OpenLibrary("scalars", {"i32 no_such_function()"}).status(),
              absl::StatusCode::kNotFound, {"no_such_function"});
  ExpectError(session_->OpenLibrary("scalars", {"i33 id_i32(i32)"}).status(),
              absl::StatusCode::kInvalidArgument, {"column 1"});
  ExpectError(session_->OpenLibrary("scalars", {}).status(),
              absl::StatusCode::kInvalidArgument, {"at least one symbol"});
  ExpectError(session_->OpenLibrary("scalars", {"i32 id_i32(i32)", "i32 id_i32(i32)"}).status(),
              absl::StatusCode::kInvalidArgument, {"declared twice"});
}

TEST_F(CallTest, RequestsNeedAValidSessionAndHandle) {
  v1::CallRequest request;
  request.set_session_id("00000000000000000000000000000000");
  request.set_library_handle(1);
  request.set_symbol("cos");
  v1::CallResponse response;
  grpc::ClientContext context;
  grpc::Status status = client_->stub()->Call(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("unknown session"));

  // A handle from one session is unknown in another.
  auto lib = Open("scalars", {"i32 counter_next()"});
  ASSERT_NE(lib, nullptr);
  auto other = client_->CreateSession();
  ASSERT_TRUE(other.ok());
  v1::CallRequest foreign;
  foreign.set_session_id((*other)->id());
  foreign.set_library_handle(lib->handle());
  foreign.set_symbol("counter_next");
  grpc::ClientContext context2;
  status = client_->stub()->Call(&context2, foreign, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("not open in this session"));
}

TEST_F(CallTest, InvalidResultFromTheLibraryIsReportedNotPassedOn) {
  auto lib = Open("scalars", {"bool bad_bool()", "i32 counter_next()"});
  ASSERT_NE(lib, nullptr);
  ExpectError(lib->Call<bool>("bad_bool").status(), absl::StatusCode::kDataLoss,
              {"bad_bool", "invalid bool representation 7"});
  EXPECT_EQ(*lib->Call<int32_t>("counter_next"), 1);
}

}  // namespace
}  // namespace ffibroker::testing
