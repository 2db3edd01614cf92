// Callbacks end to end (issue 12): a real daemon, real workers, the
// in-tree callbacks library, handlers running in this process through the
// C++ client's CallStream.
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "ffibroker/call_stream.h"
#include "ffibroker/error.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/callbacks/callbacks_fixture.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {

// A struct of the client's own, matching a registered class `Point`.
struct Point {
  double x = 0, y = 0;
};

}  // namespace ffibroker::testing

namespace ffibroker {
template <>
struct ValueConverter<testing::Point> {
  static absl::StatusOr<testing::Point> From(const v1::Value& v) {
    const v1::Value* x = FieldOf(v, "x");
    const v1::Value* y = FieldOf(v, "y");
    if (x == nullptr || y == nullptr) return absl::InvalidArgumentError("not a Point");
    return testing::Point{x->f64_value(), y->f64_value()};
  }
  static v1::Value To(const testing::Point& p) {
    return StructOf({{"x", ToValue(p.x)}, {"y", ToValue(p.y)}});
  }
};
}  // namespace ffibroker

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kSort[] = "void cb_sort4(inout u8[len] base, usize len, "
                         "fn(in u8[4] a, in u8[4] b) -> i32 cmp)";
constexpr char kRecurse[] = "i32 cb_recurse(fn(i32 depth) -> i32 f, i32 depth)";
constexpr char kStore[] = "void cb_store(fn(i32 x) -> i32 f)";
constexpr char kCallStored[] = "i32 cb_call_stored(i32 x)";
constexpr char kThreads[] = "i32 cb_on_threads(fn(i32 x) -> i32 f, i32 n)";
constexpr char kRepeat[] = "i32 cb_repeat(fn(i32 i) -> i32 f, i32 n)";

std::string U32s(std::vector<uint32_t> values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// Typed handlers: the Callback<int(const Point&, double)>, with a
// converter for the client's own struct; a value that does not convert is
// refused naming the argument.
TEST(CallbackTypesTest, TypedHandlersConvertArgumentsAndResults) {
  Callback<int(const Point&, double)> scaled(
      "i32 f(Point p, f64 k)", [](const Point& p, double k) {
        return static_cast<int>((p.x + p.y) * k);
      });
  CallbackHandler handler = scaled.Handler();
  auto r = handler({StructOf({{"x", ToValue(1.5)}, {"y", ToValue(2.5)}}), ToValue(10.0)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->int_value(), 40);
  r = handler({ToValue(1.0), ToValue(10.0)});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("argument 1"));
  r = handler({ToValue(1.0)});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();

  Callback<Point(double)> make("Point f(f64 x)", [](double x) { return Point{x, -x}; });
  auto p = make.Handler()({ToValue(2.0)});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(FieldOf(*p, "y")->f64_value(), -2.0);
  Callback<void(std::string)> log("void f(cstr line)", [](std::string) {});
  auto none = log.Handler()({StringValue("hello")});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->value_case(), v1::Value::VALUE_NOT_SET);
}

TEST(CallbacksTest, QsortComparatorRunsInTheClient) {
  auto f = Open({kSort});
  ASSERT_TRUE(f.ok()) << f.status();
  int compared = 0;
  Callback<int32_t(std::string, std::string)> cmp(
      "i32 cmp(in u8[4] a, in u8[4] b)", [&](std::string a, std::string b) {
        ++compared;
        uint32_t x, y;
        std::memcpy(&x, a.data(), 4);
        std::memcpy(&y, b.data(), 4);
        return x < y ? -1 : x > y ? 1 : 0;
      });
  auto id = f->stream->RegisterCallback(cmp);
  ASSERT_TRUE(id.ok()) << id.status();
  const std::string data = U32s({40, 7, 300, 1, 99, 7});
  auto sorted = f->stream->Call(*f->lib, "cb_sort4",
                                {BytesValue(data), ToValue(uint64_t{data.size()}),
                                 CallbackValue(*id)});
  ASSERT_TRUE(sorted.ok()) << sorted.status();
  ASSERT_EQ(sorted->outputs_size(), 1);
  EXPECT_EQ(sorted->outputs(0).value().bytes_value(), U32s({1, 7, 7, 40, 99, 300}));
  EXPECT_GE(compared, 5);
}

// The README's example: libc's own qsort, its comparator run in the client.
TEST(CallbacksTest, ReadmeExampleQsortOfIntegers) {
  auto daemon = TestDaemon::StartWithPolicy(absl::StrCat(
      "libraries { name: \"libc.so.6\" path: \"/lib/x86_64-linux-gnu/libc.so.6\" }\n",
      "principals { name: \"test-user\" uids: ", ::getuid(),
      " permission { libraries { library: \"libc.so.6\" allow_symbols: \"qsort\" }"
      " operations: [OPEN_LIBRARY, CALLBACKS] } }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto libc = (*session)->OpenLibrary(
      "libc.so.6", {"void qsort(inout u8[16] base, usize n, usize size, "
                    "fn(in u8[4] a, in u8[4] b) -> i32 cmp)"});
  ASSERT_TRUE(libc.ok()) << libc.status();
  auto stream = (*session)->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  Callback<int32_t(std::string, std::string)> by_value(
      "i32 cmp(in u8[4] a, in u8[4] b)", [](std::string a, std::string b) {
        int32_t x, y;
        std::memcpy(&x, a.data(), 4);
        std::memcpy(&y, b.data(), 4);
        return (x > y) - (x < y);  // runs here, in the client
      });
  auto cmp = (*stream)->RegisterCallback(by_value);
  ASSERT_TRUE(cmp.ok()) << cmp.status();
  int32_t numbers[4] = {42, -7, 1000, 3};
  std::string bytes(reinterpret_cast<char*>(numbers), sizeof numbers);
  auto r = (*stream)->Call(**libc, "qsort", {BytesValue(bytes), ToValue(uint64_t{4}),
                                             ToValue(uint64_t{4}), CallbackValue(*cmp)});
  ASSERT_TRUE(r.ok()) << r.status();
  int32_t sorted[4];
  ASSERT_EQ(r->outputs(0).value().bytes_value().size(), sizeof sorted);
  std::memcpy(sorted, r->outputs(0).value().bytes_value().data(), sizeof sorted);
  EXPECT_EQ(std::vector<int32_t>(sorted, sorted + 4), (std::vector<int32_t>{-7, 3, 42, 1000}));
}

TEST(CallbacksTest, EveryArgumentKindReachesTheHandlerValidated) {
  auto f = Open({kKinds});
  ASSERT_TRUE(f.ok()) << f.status();
  std::vector<v1::Value> seen;
  auto id = f->stream->RegisterCallback(
      "f64 f(Point* p, Point q, cstr? s, in u8[n] data, usize n, u8 tag)",
      [&](const std::vector<v1::Value>& args) -> absl::StatusOr<v1::Value> {
        seen = args;
        return ToValue(6.25);
      });
  ASSERT_TRUE(id.ok()) << id.status();
  auto r = f->stream->Call(*f->lib, "cb_kinds", {CallbackValue(*id)});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result().f64_value(), 6.25);
  ASSERT_EQ(seen.size(), 6u);
  EXPECT_NE(seen[0].handle_value(), 0u);  // a borrowed handle for Point*
  EXPECT_EQ(FieldOf(seen[1], "x")->f64_value(), 3.0);
  EXPECT_EQ(seen[2].string_value(), "hello");
  EXPECT_EQ(seen[3].bytes_value(), "bytes");
  EXPECT_EQ(seen[4].uint_value(), 5u);
  EXPECT_EQ(seen[5].uint_value(), 7u);
}

TEST(CallbacksTest, HandlersCallBackIntoTheLibraryNestedUpToTheDepthLimit) {
  auto f = Open({kRecurse});
  ASSERT_TRUE(f.ok()) << f.status();
  CallStream* stream = f->stream.get();
  Library* lib = f->lib.get();
  uint64_t self = 0;
  absl::Status deepest;
  auto id = stream->RegisterCallback(
      "i32 f(i32 depth)", [&](const std::vector<v1::Value>& args) -> absl::StatusOr<v1::Value> {
        const int64_t depth = args[0].int_value();
        if (depth == 0) return ToValue(int32_t{0});
        // Re-enter the library from inside the callback: runs nested in the
        // worker that waits for this handler.
        auto inner = stream->Call(*lib, "cb_recurse", {CallbackValue(self), ToValue(depth - 1)});
        if (!inner.ok()) {
          deepest = inner.status();
          return ToValue(int32_t{-1000});
        }
        return ToValue(static_cast<int32_t>(inner->result().int_value()));
      });
  ASSERT_TRUE(id.ok()) << id.status();
  self = *id;
  // Depth 5: cb_recurse adds one per level.
  auto r = stream->Call(*lib, "cb_recurse", {CallbackValue(self), ToValue(int32_t{5})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result().int_value(), 6);
  EXPECT_TRUE(deepest.ok()) << deepest;
  // Deeper than 8 levels: the nested call past the limit is refused.
  r = stream->Call(*lib, "cb_recurse", {CallbackValue(self), ToValue(int32_t{12})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(absl::IsResourceExhausted(deepest)) << deepest;
  EXPECT_THAT(std::string(deepest.message()), HasSubstr("nest at most 8"));
}

TEST(CallbacksTest, PersistentCallbackServesLaterCallsUntilReleased) {
  auto f = Open({kStore, kCallStored, kApply});
  ASSERT_TRUE(f.ok()) << f.status();
  CallStream::CallbackOptions persistent;
  persistent.persistent = true;
  auto id = f->stream->RegisterCallback(Doubler(), persistent);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(f->stream->Call(*f->lib, "cb_store", {CallbackValue(*id)}).ok());
  for (int32_t x : {3, 21}) {
    auto r = f->stream->Call(*f->lib, "cb_call_stored", {ToValue(x)});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->result().int_value(), 2 * x);
  }
  ASSERT_TRUE(f->stream->ReleaseCallback(*id).ok());
  // The library still holds the pointer: calling it ends the worker, never
  // a jump into unmapped or rebound code.
  auto r = f->stream->Call(*f->lib, "cb_call_stored", {ToValue(int32_t{1})});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("after it was released"));
  EXPECT_EQ(ErrorReason(r.status()), "CALLBACK_RELEASED");
  // The next call gets a fresh worker.
  auto fresh = f->stream->RegisterCallback(Doubler());
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  auto again = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*fresh), ToValue(int32_t{4})});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->result().int_value(), 8);
}

// The release reaches the worker after the call it is running: an
// invocation in between is the library's legitimate use, not a protocol
// violation (the call gets zeros and says why; the worker lives).
TEST(CallbacksTest, ReleasingWhileTheLibraryStillCallsItDoesNotKillTheWorker) {
  auto f = Open({kStore, kCallStored});
  ASSERT_TRUE(f.ok()) << f.status();
  CallStream::CallbackOptions persistent;
  persistent.persistent = true;
  auto id = f->stream->RegisterCallback(Doubler(), persistent);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(f->stream->Call(*f->lib, "cb_store", {CallbackValue(*id)}).ok());
  auto pending = f->stream->Send(*f->lib, "cb_call_stored", {ToValue(int32_t{3})});
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE(f->stream->ReleaseCallback(*id).ok());
  auto r = f->stream->Receive();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->id(), *pending);
  if (r->status().code() == 0) {
    EXPECT_EQ(r->call().result().int_value(), 6);  // it ran before the release
  } else {
    EXPECT_EQ(r->status().code(), static_cast<int>(absl::StatusCode::kFailedPrecondition))
        << r->status().message();
    EXPECT_THAT(r->status().message(), HasSubstr("released while the call ran"));
  }
}

TEST(CallbacksTest, PerCallCallbackKeptByTheLibraryEndsTheWorkerWhenCalledLater) {
  auto f = Open({kStore, kCallStored});
  ASSERT_TRUE(f.ok()) << f.status();
  auto id = f->stream->RegisterCallback(Doubler());
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(f->stream->Call(*f->lib, "cb_store", {CallbackValue(*id)}).ok());
  auto r = f->stream->Call(*f->lib, "cb_call_stored", {ToValue(int32_t{1})});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("after it was released"));
}

TEST(CallbacksTest, LibraryThreadsInvokeCallbacksAnsweredInAnyOrder) {
  auto f = Open({kThreads}, "OPEN_LIBRARY, CALLBACKS", "threads");
  ASSERT_TRUE(f.ok()) << f.status();
  auto id = f->stream->RegisterCallback(
      Callback<int32_t(int32_t)>(kIntFn, [](int32_t i) { return 10 * (i + 1); }));
  ASSERT_TRUE(id.ok()) << id.status();
  auto r = f->stream->Call(*f->lib, "cb_on_threads", {CallbackValue(*id), ToValue(int32_t{4})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result().int_value(), 10 + 20 + 30 + 40);
}

// The seed scenario: a callback created under a token keeps the CALLBACKS
// permission the token snapshotted after the session's own is revoked.
TEST(CallbacksTest, TokenKeepsCallbackPermissionAfterTheSessionsIsRevoked) {
  auto f = Open({kApply});
  ASSERT_TRUE(f.ok()) << f.status();
  auto token = f->session->GrantToken();
  ASSERT_TRUE(token.ok()) << token.status();
  auto before = f->stream->RegisterCallback(Doubler());
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(f->session->RevokePermissions().ok());

  CallStream::CallbackOptions under_token;
  under_token.token = token->token();
  auto with_token = f->stream->RegisterCallback(Doubler(), under_token);
  ASSERT_TRUE(with_token.ok()) << with_token.status();
  auto r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*with_token), ToValue(int32_t{7})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result().int_value(), 14);

  // Without the token: neither a new registration nor passing one made
  // under the session's (now revoked) permission.
  auto without = f->stream->RegisterCallback(Doubler());
  EXPECT_TRUE(absl::IsPermissionDenied(without.status())) << without.status();
  r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*before), ToValue(int32_t{7})});
  EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_EQ(ErrorReason(r.status()), "PERMISSION_REVOKED");

  ASSERT_TRUE(f->session->RevokeToken(token->claims().token_id()).ok());
  r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*with_token), ToValue(int32_t{7})});
  EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("token"));
}

TEST(CallbacksTest, WithoutTheCallbacksOperationRegistrationIsDenied) {
  auto f = Open({kApply}, "OPEN_LIBRARY");
  ASSERT_TRUE(f.ok()) << f.status();
  auto id = f->stream->RegisterCallback(Doubler());
  EXPECT_TRUE(absl::IsPermissionDenied(id.status())) << id.status();
  EXPECT_THAT(std::string(id.status().message()), HasSubstr("CALLBACKS"));
}

TEST(CallbacksTest, HandlerErrorsAndBadAnswersFailTheCallNotTheWorker) {
  auto f = Open({kApply});
  ASSERT_TRUE(f.ok()) << f.status();
  auto failing = f->stream->RegisterCallback(
      kIntFn, [](const std::vector<v1::Value>&) -> absl::StatusOr<v1::Value> {
        return absl::NotFoundError("no such entry");
      });
  auto wrong_type = f->stream->RegisterCallback(
      kIntFn, [](const std::vector<v1::Value>&) -> absl::StatusOr<v1::Value> {
        return StringValue("seven");
      });
  auto out_of_range = f->stream->RegisterCallback(
      kIntFn, [](const std::vector<v1::Value>&) -> absl::StatusOr<v1::Value> {
        return ToValue(int64_t{1} << 40);
      });
  ASSERT_TRUE(failing.ok() && wrong_type.ok() && out_of_range.ok());

  auto r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*failing), ToValue(int32_t{1})});
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("callback 'f' (invocation 1) failed in the client: no such entry"));
  r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*wrong_type), ToValue(int32_t{1})});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("invalid result (i32)"));
  r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*out_of_range), ToValue(int32_t{1})});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();

  // The worker unwound each time (it got a zero result): still answering.
  auto ok = f->stream->RegisterCallback(Doubler());
  ASSERT_TRUE(ok.ok());
  r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*ok), ToValue(int32_t{5})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result().int_value(), 10);
  EXPECT_TRUE(r->worker_notice().empty()) << r->worker_notice();
}

TEST(CallbacksTest, AnAnswerPastTheDeadlineNamesTheCallbackItWaitedFor) {
  auto f = Open({kApply});
  ASSERT_TRUE(f.ok()) << f.status();
  auto slow = f->stream->RegisterCallback(
      kIntFn, [](const std::vector<v1::Value>& args) -> absl::StatusOr<v1::Value> {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        return args[0];
      });
  ASSERT_TRUE(slow.ok());
  auto r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(*slow), ToValue(int32_t{1})},
                           absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()),
              HasSubstr("waited for the client's answer"));
}

TEST(CallbacksTest, ACallbackLoopIsBoundedByTheCallsDeadline) {
  auto f = Open({kRepeat});
  ASSERT_TRUE(f.ok()) << f.status();
  auto id = f->stream->RegisterCallback(Doubler());
  ASSERT_TRUE(id.ok());
  int32_t calls = 0;
  auto counted = f->stream->RegisterCallback(
      Callback<int32_t(int32_t)>(kIntFn, [&](int32_t) { return ++calls, 1; }));
  ASSERT_TRUE(counted.ok());
  // 100 round trips complete; two billion do not, and the deadline ends it.
  auto r = f->stream->Call(*f->lib, "cb_repeat", {CallbackValue(*counted), ToValue(int32_t{100})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result().int_value(), 100);
  r = f->stream->Call(*f->lib, "cb_repeat", {CallbackValue(*id), ToValue(int32_t{2000000000})},
                      absl::Seconds(1));
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status())) << r.status();
}

TEST(CallbacksTest, MisusedCallbacksAreRefusedBeforeTheWorker) {
  auto f = Open({kApply, kSort});
  ASSERT_TRUE(f.ok()) << f.status();
  auto doubler = f->stream->RegisterCallback(Doubler());
  ASSERT_TRUE(doubler.ok());
  // Not registered.
  auto r = f->stream->Call(*f->lib, "cb_apply", {CallbackValue(99), ToValue(int32_t{1})});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not registered"));
  // Registered with another signature than the parameter's.
  const std::string data = U32s({2, 1});
  r = f->stream->Call(*f->lib, "cb_sort4",
                      {BytesValue(data), ToValue(uint64_t{8}), CallbackValue(*doubler)});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  // On a unary call, where nobody could answer.
  v1::Value arg = CallbackValue(*doubler);
  auto unary = f->lib->CallValues("cb_apply", {arg, ToValue(int32_t{1})});
  EXPECT_TRUE(absl::IsInvalidArgument(unary.status())) << unary.status();
  EXPECT_THAT(std::string(unary.status().message()), HasSubstr("CallStream"));
  // Registering id 0, twice, or a signature a callback cannot have.
  v1::StreamRequest reg;
  reg.set_id(1000);
  reg.mutable_register_callback()->set_callback_id(*doubler);
  reg.mutable_register_callback()->mutable_signature()->mutable_result()->set_scalar(
      v1::SCALAR_I32);
  ASSERT_TRUE(f->stream->SendRaw(reg).ok());
  auto answer = f->stream->Receive();
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->status().code(), 3) << answer->status().message();
  EXPECT_THAT(answer->status().message(), HasSubstr("already registered"));
  auto bad = f->stream->RegisterCallback("cstr f(i32 x)", Doubler().Handler());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status())) << bad.status();
}

}  // namespace
}  // namespace ffibroker::testing
