// Callbacks in the real worker (issue 12, worker side): the worker binary
// over its channel, with this test playing the daemon and the client
// (tests/callbacks/fake_daemon.h), on tests/native/callbacks.c under the
// real `strict` and `threads` profiles.
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/arg_kinds.h"
#include "common/signature.h"
#include "common/type_table.h"
#include "gtest/gtest.h"
#include "tests/callbacks/fake_daemon.h"

namespace ffibroker {
namespace {

const std::vector<std::string> kDeclarations = {
    "void cb_sort4(inout u8[len] base, usize len, fn(in u8[4] a, in u8[4] b) -> i32 cmp)",  // 0
    "i32 cb_apply(fn(i32 x) -> i32 f, i32 x)",                                              // 1
    "f64 cb_apply_f64(fn(f64 x, i32 k) -> f64 f, f64 x)",                                   // 2
    "i32 cb_maybe(fn(i32 x)? -> i32 f, i32 x)",                                             // 3
    "i32 cb_repeat(fn(i32 i) -> i32 f, i32 n)",                                             // 4
    "i32 cb_twice(fn(i32 x) -> i32 f, fn(i32 x) -> i32 g, i32 x)",                          // 5
    "f64 cb_kinds(fn(Point*? p, Point q, cstr? s, in u8[n] data, usize n, u8 tag) -> f64 f)",
    "f64 cb_kinds_null(fn(Point*? p, Point q, cstr? s, in u8[n] data, usize n, u8 tag) -> f64 f)",
    "f64 cb_kinds_lying(fn(Point*? p, Point q, cstr? s, in u8[n] data, usize n, u8 tag) -> f64 f)",
    "Point cb_make_point(fn(f64 x) -> Point f)",                                            // 9
    "void cb_store(fn(i32 x) -> i32 f)",                                                    // 10
    "i32 cb_call_stored(i32 x)",                                                            // 11
    "i32 cb_on_threads(fn(i32 x) -> i32 f, i32 n)",                                         // 12
    "i32 cb_recurse(fn(i32 depth) -> i32 f, i32 depth)",                                    // 13
    "void cb_ticker(fn(i32 x) -> i32 f, i32 n)",                                            // 14
    "i32 cb_ticker_sum()",                                                                  // 15
    "i32 cb_errno_kept(fn(i32 x) -> i32 f)",                                                // 16
};
enum Symbol : uint32_t {
  kSort4, kApply, kApplyF64, kMaybe, kRepeat, kTwice, kKinds, kKindsNull, kKindsLying,
  kMakePoint, kStore, kCallStored, kOnThreads, kRecurse, kTicker, kTickerSum, kErrnoKept,
};

std::unique_ptr<FakeDaemon> Opened(const std::string& profile = "strict",
                                   uint32_t closures = 4) {
  absl::StatusOr<std::unique_ptr<FakeDaemon>> daemon = FakeDaemon::Start();
  EXPECT_TRUE(daemon.ok()) << daemon.status();
  if (!daemon.ok()) return nullptr;
  absl::StatusOr<worker::v1::WorkerToDaemon> opened =
      (*daemon)->Open(FFIBROKER_CALLBACKS_LIB, kDeclarations, profile, closures);
  EXPECT_TRUE(opened.ok()) << opened.status();
  if (!opened.ok()) return nullptr;
  EXPECT_TRUE(opened->has_opened()) << opened->ShortDebugString();
  return opened->has_opened() ? std::move(*daemon) : nullptr;
}

// The callback type of parameter `param` of declaration `index`.
const ResolvedSignature& CallbackSig(uint32_t index, int param) {
  static std::vector<ResolvedSignature>* sigs = [] {
    auto* out = new std::vector<ResolvedSignature>();
    ClassTable classes;
    v1::ClassDefinition point;
    point.set_name("Point");
    for (const char* f : {"x", "y"}) {
      v1::FieldDefinition* field = point.add_fields();
      field->set_name(f);
      field->mutable_type()->set_scalar(v1::SCALAR_F64);
    }
    EXPECT_TRUE(classes.Register(point).ok());
    for (const std::string& text : kDeclarations) {
      absl::StatusOr<Declaration> decl = ParseDeclaration(text, {"Point"});
      EXPECT_TRUE(decl.ok()) << decl.status();
      out->push_back(*ResolveSignature(decl->signature, classes));
    }
    return out;
  }();
  return (*sigs)[index].params[static_cast<size_t>(param)]->callback->sig;
}

worker::v1::DaemonToWorker Within(worker::v1::DaemonToWorker request, uint64_t invocation) {
  request.set_within_invocation(invocation);
  return request;
}

// Every mapping of process `pid` that is writable and executable at once.
std::vector<std::string> WritableExecutableMappings(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::vector<std::string> found;
  std::string line;
  while (std::getline(maps, line)) {
    std::string perms = line.substr(line.find(' ') + 1, 4);
    if (perms[1] == 'w' && perms[2] == 'x') found.push_back(line);
  }
  return found;
}

TEST(WorkerCallbacksTest, QsortCallsAComparatorThatRunsInTheClient) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  std::mt19937 random(7);
  std::vector<int32_t> values(64);
  for (int32_t& v : values) v = static_cast<int32_t>(random() % 1000) - 500;
  std::string base(reinterpret_cast<const char*>(values.data()), values.size() * 4);
  int comparisons = 0;
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = d->Run(
      d->Call(kSort4, {base, U64(base.size()), U64(42)}),
      [&](const worker::v1::CallbackInvoke& invoke) {
        ++comparisons;
        EXPECT_EQ(invoke.callback_id(), 42u);
        EXPECT_EQ(invoke.within_invocation(), 0u);
        EXPECT_TRUE(CheckCallbackArgs(CallbackSig(kSort4, 2), invoke.args(), invoke.arg_null()).ok());
        int32_t a = AsI32(invoke.args(0));
        int32_t b = AsI32(invoke.args(1));
        return I32(a < b ? -1 : a > b ? 1 : 0);
      });
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->has_result()) << reply->ShortDebugString();
  std::sort(values.begin(), values.end());
  ASSERT_EQ(reply->result().outputs_size(), 1);
  EXPECT_EQ(reply->result().outputs(0),
            std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
  EXPECT_GT(comparisons, 63);
  // Under `strict`, with its closures made before lockdown: no memory is
  // writable and executable at once.
  EXPECT_TRUE(WritableExecutableMappings(d->pid()).empty())
      << WritableExecutableMappings(d->pid())[0];
}

TEST(WorkerCallbacksTest, EveryArgumentKindIsEncodedAndHandlesAreBorrowed) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  uint64_t point_id = 0;
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      d->Run(d->Call(kKinds, {U64(5)}), [&](const worker::v1::CallbackInvoke& invoke) {
        EXPECT_TRUE(
            CheckCallbackArgs(CallbackSig(kKinds, 0), invoke.args(), invoke.arg_null()).ok());
        point_id = *ReadInstanceId(invoke.args(0));
        EXPECT_NE(point_id, 0u);
        // The handle is usable while the invocation runs: read it nested.
        worker::v1::DaemonToWorker read;
        read.mutable_instance_read()->set_instance_id(point_id);
        read.mutable_instance_read()->set_size(16);
        absl::StatusOr<worker::v1::WorkerToDaemon> fields =
            d->Run(Within(read, invoke.invocation_id()), nullptr);
        EXPECT_TRUE(fields.ok() && fields->has_instance_result()) << fields->ShortDebugString();
        EXPECT_EQ(fields->instance_result().data(), F64(1.5) + F64(-2.0));
        EXPECT_EQ(invoke.args(1), F64(3.0) + F64(4.0));
        EXPECT_EQ(invoke.args(2), "hello");
        EXPECT_EQ(invoke.args(3), "bytes");
        EXPECT_EQ(invoke.args(4), U64(5));
        EXPECT_EQ(invoke.args(5), std::string(1, '\7'));
        EXPECT_TRUE(invoke.arg_null().empty());
        return F64(2.5);
      });
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsF64(reply->result().value()), 2.5);
  // The borrowed handle ended with the invocation.
  worker::v1::DaemonToWorker read;
  read.mutable_instance_read()->set_instance_id(point_id);
  read.mutable_instance_read()->set_size(16);
  absl::StatusOr<worker::v1::WorkerToDaemon> stale = d->Run(read, nullptr);
  ASSERT_TRUE(stale.ok());
  EXPECT_TRUE(stale->has_error()) << stale->ShortDebugString();

  // NULL pointer, string and (empty) buffer.
  reply = d->Run(d->Call(kKindsNull, {U64(5)}), [&](const worker::v1::CallbackInvoke& invoke) {
    EXPECT_TRUE(
        CheckCallbackArgs(CallbackSig(kKindsNull, 0), invoke.args(), invoke.arg_null()).ok());
    EXPECT_EQ(invoke.args(0), U64(0));
    EXPECT_EQ(std::vector<uint32_t>(invoke.arg_null().begin(), invoke.arg_null().end()),
              (std::vector<uint32_t>{2, 3}));
    return F64(1.0);
  });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();

  // A buffer length the library lies about is not read: sent empty, which
  // CheckCallbackArgs reports.
  reply = d->Run(d->Call(kKindsLying, {U64(5)}), [&](const worker::v1::CallbackInvoke& invoke) {
    EXPECT_EQ(invoke.args(3), "");
    absl::Status check =
        CheckCallbackArgs(CallbackSig(kKindsLying, 0), invoke.args(), invoke.arg_null());
    EXPECT_TRUE(absl::StrContains(check.message(), "more than the buffer limit")) << check;
    EXPECT_TRUE(absl::StrContains(check.message(), "callback argument 4 (data: in u8[n])"))
        << check;
    return F64(0);
  });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
}

TEST(WorkerCallbacksTest, ResultsOfEveryKindReachTheLibrary) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  // A negative i32 (libffi widens closure results: sign extension matters).
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      d->Run(d->Call(kApply, {U64(1), I32(4)}), [](const worker::v1::CallbackInvoke& invoke) {
        return I32(-AsI32(invoke.args(0)) - 1);
      });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsI32(reply->result().value()), -5);
  // Floating-point arguments and result (libffi's SSE closure entry).
  reply = d->Run(d->Call(kApplyF64, {U64(1), F64(1.25)}),
                 [](const worker::v1::CallbackInvoke& invoke) {
                   return F64(AsF64(invoke.args(0)) * AsI32(invoke.args(1)));
                 });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsF64(reply->result().value()), 1.25 * 3 + 0.5);
  // A class by value.
  reply = d->Run(d->Call(kMakePoint, {U64(1)}), [](const worker::v1::CallbackInvoke& invoke) {
    return F64(AsF64(invoke.args(0))) + F64(-7.0);
  });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(reply->result().value(), F64(2.0) + F64(-7.0));
}

TEST(WorkerCallbacksTest, ErrnoSurvivesTheRelay) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = d->Run(
      d->Call(kErrnoKept, {U64(1)}), [](const worker::v1::CallbackInvoke&) { return I32(0); });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsI32(reply->result().value()), 1234);
}

TEST(WorkerCallbacksTest, NullOnlyWhereNullableAndTwoCallbacksInOneCall) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      d->Run(d->Call(kMaybe, {U64(0), I32(3)}), nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsI32(reply->result().value()), -1);
  reply = d->Run(d->Call(kApply, {U64(0), I32(3)}), nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_error()) << reply->ShortDebugString();
  EXPECT_TRUE(absl::StrContains(reply->error().message(), "NULL callback but not declared nullable"))
      << reply->error().message();
  reply = d->Run(d->Call(kTwice, {U64(11), U64(22), I32(1)}),
                 [](const worker::v1::CallbackInvoke& invoke) {
                   int32_t x = AsI32(invoke.args(0));
                   return I32(invoke.callback_id() == 11 ? x + 10 : x * 100);
                 });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsI32(reply->result().value()), 1100);
}

TEST(WorkerCallbacksTest, ALoopOfInvocationsInOneCall) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  std::set<uint64_t> invocation_ids;
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      d->Run(d->Call(kRepeat, {U64(3), I32(1000)}), [&](const worker::v1::CallbackInvoke& invoke) {
        invocation_ids.insert(invoke.invocation_id());
        return I32(AsI32(invoke.args(0)) * 2);
      });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsI32(reply->result().value()), 999 * 1000);
  EXPECT_EQ(invocation_ids.size(), 1000u);
  EXPECT_EQ(invocation_ids.count(0), 0u);
}

// The handler of cb_recurse's callback calls cb_recurse again, nested in
// its invocation, until depth 0; the worker allows 8 levels of nesting.
TEST(WorkerCallbacksTest, NestedCallsRecurseOnTheInvokingThreadUpToTheLimit) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  std::vector<uint64_t> chain;  // within_invocation of each invocation, outermost first
  std::string refused;
  std::function<std::string(const worker::v1::CallbackInvoke&)> handler =
      [&](const worker::v1::CallbackInvoke& invoke) -> std::string {
    chain.push_back(invoke.within_invocation());
    int32_t depth = AsI32(invoke.args(0));
    if (depth == 0) return I32(0);
    absl::StatusOr<worker::v1::WorkerToDaemon> nested = d->Run(
        Within(d->Call(kRecurse, {U64(1), I32(depth - 1)}), invoke.invocation_id()), handler);
    EXPECT_TRUE(nested.ok()) << nested.status();
    if (nested->has_error()) {
      refused = nested->error().message();
      return I32(-100);
    }
    return nested->result().value();
  };
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      d->Run(d->Call(kRecurse, {U64(1), I32(5)}), handler);
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsI32(reply->result().value()), 6);
  ASSERT_EQ(chain.size(), 6u);
  EXPECT_EQ(chain[0], 0u);
  for (size_t i = 1; i < chain.size(); ++i) EXPECT_NE(chain[i], 0u);
  EXPECT_TRUE(refused.empty()) << refused;

  chain.clear();
  reply = d->Run(d->Call(kRecurse, {U64(1), I32(20)}), handler);
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  // 8 nested calls ran (9 invocations); the 9th nested call was refused.
  EXPECT_EQ(chain.size(), 9u);
  EXPECT_TRUE(absl::StrContains(refused, "nest at most 8 deep")) << refused;
  EXPECT_EQ(AsI32(reply->result().value()), -100 + 9);
}

TEST(WorkerCallbacksTest, AStrayNestedRequestIsAnErrorReply) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      d->Run(Within(d->Call(kApply, {U64(1), I32(1)}), 12345), nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_error()) << reply->ShortDebugString();
  EXPECT_TRUE(absl::StrContains(reply->error().message(), "invocation 12345"))
      << reply->error().message();
}

TEST(WorkerCallbacksTest, APerCallCallbackInvokedInALaterCallEndsTheWorkerWithItsId) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  absl::StatusOr<worker::v1::WorkerToDaemon> reply = d->Run(d->Call(kStore, {U64(77)}), nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  reply = d->Run(d->Call(kCallStored, {I32(1)}), nullptr);
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_TRUE(reply->has_fatal()) << reply->ShortDebugString();
  EXPECT_EQ(reply->fatal().callback_released(), 77u);
  EXPECT_EQ(reply->fatal().signal(), 0);
  int status = d->Wait();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 128);
}

TEST(WorkerCallbacksTest, APersistentCallbackLivesUntilReleased) {
  std::unique_ptr<FakeDaemon> d = Opened();
  ASSERT_NE(d, nullptr);
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      d->Run(d->Call(kStore, {U64(77)}, {77}), nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  for (int32_t x : {1, 2}) {
    reply = d->Run(d->Call(kCallStored, {I32(x)}), [&](const worker::v1::CallbackInvoke& invoke) {
      EXPECT_EQ(invoke.callback_id(), 77u);
      return I32(AsI32(invoke.args(0)) + 100);
    });
    ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
    EXPECT_EQ(AsI32(reply->result().value()), x + 100);
  }
  worker::v1::DaemonToWorker release;
  release.mutable_callback_release()->set_callback_id(77);
  reply = d->Run(release, nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_callback_released()) << reply->ShortDebugString();
  EXPECT_TRUE(reply->callback_released().was_bound());
  reply = d->Run(release, nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_callback_released()) << reply->ShortDebugString();
  EXPECT_FALSE(reply->callback_released().was_bound());
  reply = d->Run(d->Call(kCallStored, {I32(3)}), nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_fatal()) << reply->ShortDebugString();
  EXPECT_EQ(reply->fatal().callback_released(), 77u);
}

TEST(WorkerCallbacksTest, ClosuresRunOutWithAPreciseErrorAndComeBack) {
  std::unique_ptr<FakeDaemon> d = Opened("strict", 1);
  ASSERT_NE(d, nullptr);
  absl::StatusOr<worker::v1::WorkerToDaemon> reply =
      d->Run(d->Call(kTwice, {U64(1), U64(2), I32(1)}), nullptr);
  ASSERT_TRUE(reply.ok() && reply->has_error()) << reply->ShortDebugString();
  EXPECT_TRUE(absl::StrContains(reply->error().message(),
                                "every one of the worker's 1 callback closures is bound"))
      << reply->error().message();
  reply = d->Run(d->Call(kApply, {U64(2), I32(1)}),
                 [](const worker::v1::CallbackInvoke&) { return I32(9); });
  ASSERT_TRUE(reply.ok() && reply->has_result()) << reply->ShortDebugString();
  EXPECT_EQ(AsI32(reply->result().value()), 9);
}

// Under `threads`: four library threads invoke at once while the main
// thread waits in pthread_join; the answers go back in reverse order, and
// one invocation runs a nested call (on its library thread) first.
TEST(WorkerCallbacksTest, LibraryThreadsInvokeAndAreAnsweredInAnyOrder) {
  std::unique_ptr<FakeDaemon> d = Opened("threads", 8);
  ASSERT_NE(d, nullptr);
  worker::v1::DaemonToWorker call = d->Call(kOnThreads, {U64(5), I32(4)});
  ASSERT_TRUE(d->Send(call).ok());
  std::vector<worker::v1::CallbackInvoke> pending;
  while (pending.size() < 4) {
    worker::v1::WorkerToDaemon message;
    ASSERT_TRUE(d->Receive(&message).ok());
    ASSERT_TRUE(message.has_callback_invoke()) << message.ShortDebugString();
    pending.push_back(message.callback_invoke());
  }
  std::set<int32_t> indexes;
  for (const auto& invoke : pending) indexes.insert(AsI32(invoke.args(0)));
  EXPECT_EQ(indexes, (std::set<int32_t>{0, 1, 2, 3}));
  // A nested call inside the last invocation (runs on its library thread).
  absl::StatusOr<worker::v1::WorkerToDaemon> nested =
      d->Run(Within(d->Call(kApply, {U64(6), I32(20)}), pending.back().invocation_id()),
             [](const worker::v1::CallbackInvoke& invoke) {
               EXPECT_EQ(invoke.callback_id(), 6u);
               EXPECT_NE(invoke.within_invocation(), 0u);
               return I32(AsI32(invoke.args(0)) + 1);
             });
  ASSERT_TRUE(nested.ok() && nested->has_result()) << nested->ShortDebugString();
  EXPECT_EQ(AsI32(nested->result().value()), 21);
  for (auto it = pending.rbegin(); it != pending.rend(); ++it) {
    ASSERT_TRUE(d->Answer(it->invocation_id(), I32(AsI32(it->args(0)) * 10 + 1)).ok());
  }
  worker::v1::WorkerToDaemon reply;
  ASSERT_TRUE(d->Receive(&reply).ok());
  ASSERT_EQ(reply.request_id(), call.request_id()) << reply.ShortDebugString();
  ASSERT_TRUE(reply.has_result()) << reply.ShortDebugString();
  EXPECT_EQ(AsI32(reply.result().value()), (0 + 10 + 20 + 30) + 4);
}

// Under `threads`: a library thread calls a persistent callback between
// calls, while the worker's main loop waits for requests (it reads the
// channel and hands the answers over); calls keep working meanwhile.
TEST(WorkerCallbacksTest, ALibraryThreadCallsAPersistentCallbackBetweenCalls) {
  std::unique_ptr<FakeDaemon> d = Opened("threads", 4);
  ASSERT_NE(d, nullptr);
  worker::v1::DaemonToWorker start = d->Call(kTicker, {U64(9), I32(5)}, {9});
  ASSERT_TRUE(d->Send(start).ok());
  // The ticker may call back before the reply comes: take both as they come.
  bool replied = false;
  int answered = 0;
  while (!replied || answered < 5) {
    worker::v1::WorkerToDaemon message;
    ASSERT_TRUE(d->Receive(&message).ok());
    if (message.request_id() == start.request_id()) {
      ASSERT_TRUE(message.has_result()) << message.ShortDebugString();
      replied = true;
      continue;
    }
    ASSERT_TRUE(message.has_callback_invoke()) << message.ShortDebugString();
    EXPECT_EQ(message.callback_invoke().callback_id(), 9u);
    EXPECT_EQ(message.callback_invoke().within_invocation(), 0u);
    // A call while the ticker waits for this answer is served at once (the
    // ticker added the results of the invocations before this one).
    if (answered == 2 && replied) {
      absl::StatusOr<worker::v1::WorkerToDaemon> sum = d->Run(d->Call(kTickerSum, {}), nullptr);
      ASSERT_TRUE(sum.ok() && sum->has_result()) << sum->ShortDebugString();
      EXPECT_EQ(AsI32(sum->result().value()), 1000 + 1001);
    }
    ASSERT_TRUE(d->Answer(message.callback_invoke().invocation_id(),
                          I32(1000 + AsI32(message.callback_invoke().args(0))))
                    .ok());
    ++answered;
  }
  // The last result is added after its answer: poll the sum until it is in.
  int32_t sum = 0;
  for (int i = 0; i < 1000 && sum != 5 * 1000 + 10; ++i) {
    absl::StatusOr<worker::v1::WorkerToDaemon> r = d->Run(d->Call(kTickerSum, {}), nullptr);
    ASSERT_TRUE(r.ok() && r->has_result()) << r->ShortDebugString();
    sum = AsI32(r->result().value());
  }
  EXPECT_EQ(sum, 5 * 1000 + 10);
}

}  // namespace
}  // namespace ffibroker
