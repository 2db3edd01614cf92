// End-to-end tests of the asynchronous call core (issue 11): call streams,
// pipelining, batches, worker pools, deaths seen when they happen,
// cancellation and the CLI's batches. What must not wait on a worker is in
// no_waiting_test.cc. Label `streams`.
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/error_reason.h"
#include "ffibroker/call_stream.h"
#include "ffibroker/client.h"
#include "ffibroker/instance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"
#include "tests/streams/streams_fixture.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

// Answers come as workers finish, not in the order asked: on a pool of two,
// a quick call sent after a slow one is answered first.
TEST_F(StreamsTest, AnswersCompleteOutOfOrder) {
  auto lib = Open("crashy", {"i32 sleep_ms(u32)", "i32 healthy(i32)"}, 2);
  ASSERT_NE(lib, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  auto slow = (*stream)->Send(*lib, "sleep_ms", {ToValue(uint32_t{3000})});
  ASSERT_TRUE(slow.ok()) << slow.status();
  auto quick = (*stream)->Send(*lib, "healthy", {ToValue(int32_t{21})});
  ASSERT_TRUE(quick.ok()) << quick.status();
  auto first = (*stream)->Receive();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id(), *quick);
  EXPECT_EQ(first->status().code(), 0) << first->status().message();
  EXPECT_EQ(first->call().result().int_value(), 42);
  auto second = (*stream)->Receive();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->id(), *slow);
  EXPECT_EQ(second->status().code(), 0) << second->status().message();
  EXPECT_TRUE((*stream)->Close().ok());
}

// Pipelined calls on one worker run in the order sent, each answered once.
TEST_F(StreamsTest, PipelinedCallsRunInTheOrderSent) {
  auto lib = Open("scalars", {"i32 counter_next()"});
  ASSERT_NE(lib, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  constexpr int kCalls = 300;
  std::map<uint64_t, int> order;  // id -> position sent
  for (int i = 0; i < kCalls; ++i) {
    auto id = (*stream)->Send(*lib, "counter_next", {});
    ASSERT_TRUE(id.ok()) << id.status();
    order[*id] = i;
  }
  std::map<int, int32_t> value_by_position;
  for (int i = 0; i < kCalls; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status().code(), 0) << r->status().message();
    ASSERT_EQ(order.count(r->id()), 1u) << r->id();
    EXPECT_EQ(value_by_position.count(order[r->id()]), 0u) << "answered twice";
    value_by_position[order[r->id()]] = r->call().result().int_value();
  }
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(value_by_position[i], i + 1) << i;
  EXPECT_TRUE((*stream)->Close().ok());
}

// A call queued behind one that kills its worker (here: by passing its
// deadline) never ran: it runs on a fresh worker instead of failing too.
TEST_F(StreamsTest, CallsQueuedBehindAWorkersEndRunOnAFreshWorker) {
  auto lib = Open("crashy", {"i32 sleep_ms(u32)", "i32 healthy(i32)"});
  ASSERT_NE(lib, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok());
  auto slow = (*stream)->Send(*lib, "sleep_ms", {ToValue(uint32_t{20000})}, absl::Milliseconds(500));
  ASSERT_TRUE(slow.ok());
  std::vector<uint64_t> queued;
  for (int i = 0; i < 3; ++i) {
    auto id = (*stream)->Send(*lib, "healthy", {ToValue(int32_t{i})});
    ASSERT_TRUE(id.ok());
    queued.push_back(*id);
  }
  std::map<uint64_t, v1::StreamResponse> answers;
  for (int i = 0; i < 4; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    answers[r->id()] = *r;
  }
  EXPECT_EQ(answers[*slow].status().code(),
            static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(answers[*slow].status().reason(), "WORKER_DEADLINE_EXCEEDED");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(answers[queued[i]].status().code(), 0) << answers[queued[i]].status().message();
    EXPECT_EQ(answers[queued[i]].call().result().int_value(), 2 * i);
  }
  EXPECT_TRUE((*stream)->Close().ok());
}

// Requests queued behind one that crashes its worker run on the next
// worker in the order they were sent (the worker's pending requests are
// kept by random id, not by order).
TEST_F(StreamsTest, CallsQueuedBehindACrashRunInTheOrderSent) {
  auto lib = Open("crashy", {"i32 crash_segv()", "i32 count_call()"});
  ASSERT_NE(lib, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok());
  auto crash = (*stream)->Send(*lib, "crash_segv", {});
  ASSERT_TRUE(crash.ok());
  constexpr int kQueued = 20;
  std::map<uint64_t, int> position;  // id -> position sent
  for (int i = 0; i < kQueued; ++i) {
    auto id = (*stream)->Send(*lib, "count_call", {});
    ASSERT_TRUE(id.ok());
    position[*id] = i;
  }
  std::map<int, int32_t> count_by_position;
  for (int i = 0; i < kQueued + 1; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->id() == *crash) {
      EXPECT_EQ(r->status().reason(), "WORKER_CRASHED") << r->status().message();
      continue;
    }
    ASSERT_EQ(r->status().code(), 0) << r->status().message();
    count_by_position[position.at(r->id())] = r->call().result().int_value();
  }
  // The fresh worker counted them 1, 2, ... in the order sent (a call the
  // crashed worker had started would have failed with it instead).
  ASSERT_EQ(count_by_position.size(), static_cast<size_t>(kQueued));
  std::string counts;
  for (int i = 0; i < kQueued; ++i) absl::StrAppend(&counts, count_by_position[i], " ");
  for (int i = 0; i < kQueued; ++i) EXPECT_EQ(count_by_position[i], i + 1) << "sent " << i << ": " << counts;
  EXPECT_TRUE((*stream)->Close().ok());
}

// Calls sent while a worker dies, some reaching it before its end is seen,
// some while it is handled and some while its successor starts, still run
// in the order sent: those it never started go first. Paced sends find
// every one of those moments (each round crashes the worker again).
TEST_F(StreamsTest, CallsSentWhileAWorkerDiesRunInTheOrderSent) {
  auto lib = Open("crashy", {"i32 crash_segv()", "i32 count_call()"});
  ASSERT_NE(lib, nullptr);
  for (absl::Duration gap : {absl::ZeroDuration(), absl::Microseconds(100),
                             absl::Microseconds(300), absl::Microseconds(1000)}) {
    auto stream = session_->OpenStream();
    ASSERT_TRUE(stream.ok());
    auto crash = (*stream)->Send(*lib, "crash_segv", {});
    ASSERT_TRUE(crash.ok());
    constexpr int kCalls = 40;
    std::map<uint64_t, int> position;  // id -> position sent
    for (int i = 0; i < kCalls; ++i) {
      absl::SleepFor(gap);
      auto id = (*stream)->Send(*lib, "count_call", {});
      ASSERT_TRUE(id.ok());
      position[*id] = i;
    }
    std::vector<int32_t> counts(kCalls);
    for (int i = 0; i < kCalls + 1; ++i) {
      auto r = (*stream)->Receive();
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->id() == *crash) continue;
      ASSERT_EQ(r->status().code(), 0) << r->status().message();
      counts[position.at(r->id())] = r->call().result().int_value();
    }
    std::vector<int32_t> in_order(kCalls);
    std::iota(in_order.begin(), in_order.end(), 1);
    EXPECT_EQ(counts, in_order) << "sent " << absl::FormatDuration(gap) << " apart";
    EXPECT_TRUE((*stream)->Close().ok());
  }
}

// An instance operation queued behind a call that crashes the worker never
// ran: it runs on the next worker, as a queued call does.
TEST_F(StreamsTest, AnInstanceOperationQueuedBehindACrashRunsOnTheNextWorker) {
  ASSERT_TRUE(session_->RegisterClass("P { i32 a; }").ok());
  auto lib = Open("crashy", {"i32 sleep_ms(u32)", "i32 crash_segv()"});
  ASSERT_NE(lib, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok());
  auto slow = (*stream)->Send(*lib, "sleep_ms", {ToValue(uint32_t{400})});
  auto crash = (*stream)->Send(*lib, "crash_segv", {});
  ASSERT_TRUE(slow.ok() && crash.ok());
  absl::SleepFor(absl::Milliseconds(100));  // the sleep runs, the crash waits
  auto p = lib->NewInstance("P");           // behind the crash
  ASSERT_TRUE(p.ok()) << p.status();
  std::map<uint64_t, v1::StreamResponse> answers;
  for (int i = 0; i < 2; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    answers[r->id()] = *r;
  }
  EXPECT_EQ(answers[*slow].status().code(), 0) << answers[*slow].status().message();
  EXPECT_EQ(answers[*crash].status().reason(), "WORKER_CRASHED");
  EXPECT_TRUE((*p)->Free().ok());
  EXPECT_TRUE((*stream)->Close().ok());
}

// A malformed request is answered with its own error; the stream goes on.
TEST_F(StreamsTest, BadRequestsAreAnsweredAndTheStreamGoesOn) {
  auto lib = Open("crashy", {"i32 healthy(i32)"});
  ASSERT_NE(lib, nullptr);
  auto other = NewSession();
  ASSERT_NE(other, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok());
  ASSERT_TRUE((*stream)->Send(*lib, "healthy", {ToValue(int32_t{1})}).ok());
  v1::StreamRequest foreign;
  foreign.set_id(77);
  foreign.set_session_id(other->id());
  foreign.mutable_call()->set_library_handle(lib->handle());
  foreign.mutable_call()->set_symbol("healthy");
  ASSERT_TRUE((*stream)->SendRaw(foreign).ok());
  v1::StreamRequest empty;
  empty.set_id(78);
  ASSERT_TRUE((*stream)->SendRaw(empty).ok());
  ASSERT_TRUE((*stream)->Send(*lib, "nope", {}).ok());
  std::map<uint64_t, v1::StreamResponse> answers;
  for (int i = 0; i < 4; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    answers[r->id()] = *r;
  }
  EXPECT_EQ(answers[1].call().result().int_value(), 2);
  EXPECT_EQ(answers[77].status().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(answers[77].status().message(), HasSubstr("bound to another session"));
  EXPECT_EQ(answers[78].status().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(answers[78].status().message(), HasSubstr("carries no call, batch or callback message"));
  EXPECT_EQ(answers[2].status().code(), static_cast<int>(absl::StatusCode::kNotFound));
  EXPECT_THAT(answers[2].status().message(), HasSubstr("'nope' was not declared"));
  EXPECT_TRUE((*stream)->Close().ok());
}

// Answers that could be mistaken for another's carry a reason of their own:
// id 0 is the callback invocations', and a duplicate id the running
// request's.
TEST_F(StreamsTest, ReservedAndDuplicateIdsAreRefusedWithTheirOwnReason) {
  auto lib = Open("crashy", {"i32 sleep_ms(u32)"});
  ASSERT_NE(lib, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok());
  v1::StreamRequest call;
  call.set_session_id(session_->id());
  call.mutable_call()->set_library_handle(lib->handle());
  call.mutable_call()->set_symbol("sleep_ms");
  call.mutable_call()->add_args()->set_uint_value(300);
  call.set_id(0);
  ASSERT_TRUE((*stream)->SendRaw(call).ok());
  auto zero = (*stream)->Receive();
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->id(), 0u);
  EXPECT_EQ(zero->status().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(zero->status().reason(), "REQUEST_ID_RESERVED");
  call.set_id(9);
  ASSERT_TRUE((*stream)->SendRaw(call).ok());
  ASSERT_TRUE((*stream)->SendRaw(call).ok());  // while the first runs
  auto refused = (*stream)->Receive();
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->id(), 9u);
  EXPECT_EQ(refused->status().reason(), "REQUEST_ID_IN_USE") << refused->status().message();
  auto first = (*stream)->Receive();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id(), 9u);
  EXPECT_EQ(first->status().code(), 0) << first->status().message();
  EXPECT_EQ(first->call().result().int_value(), 1);
  EXPECT_TRUE((*stream)->Close().ok());
}

TEST_F(StreamsTest, BatchRunsEveryCallInOrderWithAResultEach) {
  auto lib = Open("scalars", {"i32 counter_next()", "i64 i64_plus_one(i64)"});
  ASSERT_NE(lib, nullptr);
  std::vector<v1::BatchCall> calls;
  for (int i = 0; i < 1000; ++i) calls.push_back(BatchOf("counter_next", {}));
  calls.push_back(BatchOf("i64_plus_one", {ToValue(int64_t{41})}));
  auto r = lib->CallBatch(calls);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outcomes_size(), 1001);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(r->outcomes(i).status().code(), 0) << r->outcomes(i).status().message();
    EXPECT_EQ(r->outcomes(i).response().result().int_value(), i + 1);
  }
  EXPECT_EQ(r->outcomes(1000).response().result().int_value(), 42);
}

// One invalid call: none runs, it carries its error, the others ABORTED.
TEST_F(StreamsTest, AnInvalidCallStopsTheWholeBatchBeforeAnyRuns) {
  auto lib = Open("scalars", {"i32 counter_next()", "i64 i64_plus_one(i64)"});
  ASSERT_NE(lib, nullptr);
  auto r = lib->CallBatch({BatchOf("counter_next", {}),
                           BatchOf("i64_plus_one", {ToValue(1.5)}),  // a float for an i64
                           BatchOf("counter_next", {})});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outcomes_size(), 3);
  EXPECT_EQ(r->outcomes(1).status().code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(r->outcomes(1).status().message(), HasSubstr("call 1 of the batch"));
  for (int i : {0, 2}) {
    EXPECT_EQ(r->outcomes(i).status().code(), static_cast<int>(absl::StatusCode::kAborted));
    EXPECT_THAT(r->outcomes(i).status().message(), HasSubstr("not run: call 1"));
  }
  EXPECT_EQ(*lib->Call<int32_t>("counter_next"), 1);  // nothing ran
}

// A worker that dies during a batch fails every call with how it died; the
// next call runs on a fresh worker.
TEST_F(StreamsTest, AWorkerDeathFailsTheBatchWithTheReason) {
  auto lib = Open("crashy", {"i32 healthy(i32)", "i32 crash_segv()"});
  ASSERT_NE(lib, nullptr);
  auto r = lib->CallBatch({BatchOf("healthy", {ToValue(int32_t{1})}), BatchOf("crash_segv", {}),
                           BatchOf("healthy", {ToValue(int32_t{2})})});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outcomes_size(), 3);
  for (const auto& outcome : r->outcomes()) {
    EXPECT_EQ(outcome.status().code(), static_cast<int>(absl::StatusCode::kUnavailable));
    EXPECT_THAT(outcome.status().message(), HasSubstr("SIGSEGV"));
  }
  EXPECT_EQ(*lib->Call<int32_t>("healthy", 5), 10);
}

TEST_F(StreamsTest, BatchesTravelOnStreamsToo) {
  auto lib = Open("crashy", {"i32 healthy(i32)"});
  ASSERT_NE(lib, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok());
  auto id = (*stream)->SendBatch(*lib, {BatchOf("healthy", {ToValue(int32_t{3})}),
                                        BatchOf("healthy", {ToValue(int32_t{4})})});
  ASSERT_TRUE(id.ok());
  auto r = (*stream)->Receive();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id(), *id);
  ASSERT_EQ(r->batch().outcomes_size(), 2);
  EXPECT_EQ(r->batch().outcomes(0).response().result().int_value(), 6);
  EXPECT_EQ(r->batch().outcomes(1).response().result().int_value(), 8);
  EXPECT_TRUE((*stream)->Close().ok());
}

// Instance results of a batch become handles of their own calls (made
// once every reply of the batch is known valid), usable afterwards.
TEST_F(StreamsTest, BatchInstanceResultsAreHandlesOfTheirCalls) {
  ASSERT_TRUE(session_->RegisterClass("Point { mut f64 x; f64 y; } ~point_free").ok());
  auto lib = Open("classes", {"Point* point_new(f64 x, f64 y)", "f64 point_sum(Point*? p)"});
  ASSERT_NE(lib, nullptr);
  auto r = lib->CallBatch({BatchOf("point_new", {ToValue(1.0), ToValue(2.0)}),
                           BatchOf("point_sum", {NullValue()}),
                           BatchOf("point_new", {ToValue(30.0), ToValue(4.0)})});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outcomes_size(), 3);
  for (const auto& outcome : r->outcomes()) {
    ASSERT_EQ(outcome.status().code(), 0) << outcome.status().message();
  }
  EXPECT_EQ(r->outcomes(1).response().result().f64_value(), -1.0);
  const uint64_t first = r->outcomes(0).response().result().handle_value();
  const uint64_t second = r->outcomes(2).response().result().handle_value();
  ASSERT_NE(first, 0u);
  ASSERT_NE(second, 0u);
  EXPECT_NE(first, second);
  for (auto [handle, sum] : {std::pair{first, 3.0}, std::pair{second, 34.0}}) {
    v1::Value arg;
    arg.set_handle_value(handle);
    auto got = lib->CallValues("point_sum", {arg});
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->result().f64_value(), sum);
  }
}

TEST_F(StreamsTest, BatchLimitsAndTokenQuotaCountEveryCall) {
  Adopt(TestDaemon::Start("limits { max_batch_calls: 5 }\n"));
  auto lib = Open("crashy", {"i32 healthy(i32)"});
  ASSERT_NE(lib, nullptr);
  std::vector<v1::BatchCall> six(6, BatchOf("healthy", {ToValue(int32_t{1})}));
  auto refused = lib->CallBatch(six);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("limits.max_batch_calls 5"));
  // A token with a quota of 4 calls: a batch of 3 fits, the next of 3 not.
  v1::GrantTokenRequest scope;
  scope.set_call_quota(4);
  auto token = session_->GrantToken(scope);
  ASSERT_TRUE(token.ok()) << token.status();
  Session::OpenOptions options;
  options.token = token->token();
  auto with_token = session_->OpenLibrary("crashy", {"i32 healthy(i32)"}, options);
  ASSERT_TRUE(with_token.ok()) << with_token.status();
  std::vector<v1::BatchCall> three(3, BatchOf("healthy", {ToValue(int32_t{1})}));
  ASSERT_TRUE((*with_token)->CallBatch(three).ok());
  auto over = (*with_token)->CallBatch(three);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("a batch of 3 calls"));
  // The same reason as a single call past the quota, naming the token.
  EXPECT_EQ(ErrorReason(over.status()), "TOKEN_QUOTA_EXHAUSTED");
  EXPECT_EQ(ErrorMetadataOf(over.status()).count("token_id"), 1u);
  EXPECT_TRUE((*with_token)->Call<int32_t>("healthy", 1).ok());  // the last call left
}

// A pool runs concurrent calls in parallel: a quick call is not queued
// behind a slow one, which it would be on a single worker.
TEST_F(StreamsTest, APoolRunsCallsInParallel) {
  auto lib = Open("crashy", {"i32 sleep_ms(u32)", "i32 healthy(i32)"}, 2);
  ASSERT_NE(lib, nullptr);
  ASSERT_EQ(lib->worker_pids().size(), 2u);
  EXPECT_NE(lib->worker_pids()[0], lib->worker_pids()[1]);
  std::atomic<bool> slow_done{false};
  std::thread slow([&] {
    EXPECT_TRUE(lib->Call<int32_t>("sleep_ms", uint32_t{4000}).ok());
    slow_done = true;
  });
  // Wait until the slow call is running on one worker, then call.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(*lib->Call<int32_t>("healthy", 2), 4);
  EXPECT_FALSE(slow_done) << "the quick call waited for the slow one";
  slow.join();
}

TEST_F(StreamsTest, PoolSizeIsCappedByThePolicy) {
  Session::OpenOptions options;
  options.pool_size = 5;  // the default limits.max_pool_size is 4
  auto lib = session_->OpenLibrary("crashy", {"i32 healthy(i32)"}, options);
  EXPECT_EQ(lib.status().code(), absl::StatusCode::kResourceExhausted) << lib.status();
  EXPECT_THAT(std::string(lib.status().message()), HasSubstr("limits.max_pool_size 4"));
}

// Instances stay on the worker that made them: made on both workers of a
// pool (pipelined, so both are busy), every later call on an instance
// reaches its own worker; when one worker dies only its instances go stale.
TEST_F(StreamsTest, InstancesArePinnedToTheirWorker) {
  ASSERT_TRUE(session_->RegisterClass("Point { mut f64 x; f64 y; } ~point_free").ok());
  auto lib = Open("classes", {"Point* point_new(f64 x, f64 y)", "f64 point_sum(Point* p)"}, 2);
  ASSERT_NE(lib, nullptr);
  auto stream = session_->OpenStream();
  ASSERT_TRUE(stream.ok());
  constexpr int kPoints = 40;
  std::map<uint64_t, int> made;
  for (int i = 0; i < kPoints; ++i) {
    auto id = (*stream)->Send(*lib, "point_new", {ToValue(double(i)), ToValue(1.0)});
    ASSERT_TRUE(id.ok());
    made[*id] = i;
  }
  std::map<int, uint64_t> handle_of;
  for (int i = 0; i < kPoints; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status().code(), 0) << r->status().message();
    handle_of[made[r->id()]] = r->call().result().handle_value();
  }
  std::map<uint64_t, int> summed;
  for (int i = 0; i < kPoints; ++i) {
    v1::Value handle;
    handle.set_handle_value(handle_of[i]);
    auto id = (*stream)->Send(*lib, "point_sum", {handle});
    ASSERT_TRUE(id.ok());
    summed[*id] = i;
  }
  for (int i = 0; i < kPoints; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status().code(), 0) << r->status().message();
    EXPECT_EQ(r->call().result().f64_value(), summed[r->id()] + 1.0);
  }
  // Kill the second worker: only the instances it held are stale.
  ASSERT_EQ(::kill(lib->worker_pids()[1], SIGKILL), 0);
  absl::SleepFor(absl::Milliseconds(200));
  int stale = 0, fine = 0;
  for (int i = 0; i < kPoints; ++i) {
    v1::Value handle;
    handle.set_handle_value(handle_of[i]);
    auto r = lib->CallValues("point_sum", {handle});
    if (r.ok()) {
      ++fine;
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
      EXPECT_THAT(std::string(r.status().message()), HasSubstr("stale"));
      ++stale;
    }
  }
  EXPECT_GT(stale, 0) << "no instance lived on the second worker";
  EXPECT_GT(fine, 0) << "no instance lived on the first worker";
  EXPECT_TRUE((*stream)->Close().ok());
}

// A worker killed between calls is reaped and logged when it dies, before
// any call, and the next call says what happened.
TEST_F(StreamsTest, ADeathBetweenCallsIsSeenWhenItHappens) {
  auto lib = Open("crashy", {"i32 healthy(i32)"});
  ASSERT_NE(lib, nullptr);
  ASSERT_EQ(*lib->Call<int32_t>("healthy", 1), 2);
  const pid_t pid = lib->worker_pid();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_TRUE(Within(absl::Seconds(5), [&] {
    return daemon_->ReadLog().find(absl::StrCat("worker pid ", pid, " serving")) !=
           std::string::npos;
  }));
  std::string log = daemon_->ReadLog();
  EXPECT_THAT(log, HasSubstr("ended between calls: killed by signal SIGKILL"));
  EXPECT_THAT(log, HasSubstr("for session s1"));
  auto next = lib->CallValues("healthy", {ToValue(int32_t{2})});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->result().int_value(), 4);
  EXPECT_THAT(next->worker_notice(), HasSubstr("died after 'healthy' returned"));
}

// A client that cancels a stream (or goes away) mid-call: the daemon lets
// go of it, the call's slot in the principal's limits comes back, nothing
// leaks, and the session and its library go on working.
TEST_F(StreamsTest, CancelledStreamsReleaseWhatTheyHeld) {
  Adopt(TestDaemon::Start("limits { per_principal { max_calls_in_flight: 1 } }\n"));
  auto lib = Open("crashy", {"i32 sleep_ms(u32)", "i32 healthy(i32)"});
  ASSERT_NE(lib, nullptr);
  {
    auto stream = session_->OpenStream();
    ASSERT_TRUE(stream.ok());
    ASSERT_TRUE((*stream)->Send(*lib, "sleep_ms", {ToValue(uint32_t{500})}).ok());
    absl::SleepFor(absl::Milliseconds(100));
    (*stream)->Cancel();
  }
  // Once the running call ends, its slot is free again.
  EXPECT_TRUE(Within(absl::Seconds(10), [&] { return lib->Call<int32_t>("healthy", 1).ok(); }));
  // Many streams opened and dropped mid-call leave no descriptors behind.
  auto fds = [&] {
    return std::distance(std::filesystem::directory_iterator(
                             absl::StrCat("/proc/", daemon_->pid(), "/fd")),
                         std::filesystem::directory_iterator());
  };
  const auto before = fds();
  for (int i = 0; i < 20; ++i) {
    auto stream = session_->OpenStream();
    ASSERT_TRUE(stream.ok());
    ASSERT_TRUE((*stream)->Send(*lib, "sleep_ms", {ToValue(uint32_t{20})}).ok());
    (*stream)->Cancel();
  }
  EXPECT_TRUE(Within(absl::Seconds(10), [&] { return lib->Call<int32_t>("healthy", 1).ok(); }));
  EXPECT_TRUE(Within(absl::Seconds(5), [&] { return fds() <= before; }))
      << "daemon fds: " << before << " before, " << fds() << " after";
}

// `ffibroker batch` runs the calls of a file in one batch and prints one
// line per call; a bad line is a usage error before anything is sent.
TEST_F(StreamsTest, CliRunsABatchFromAFile) {
  std::string file = daemon_->dir() + "/calls.txt";
  {
    std::ofstream out(file);
    out << "# three calls\ncos 0\n\npow 2 10\nhealthy_not_here 1\n";
  }
  CliResult bad = RunCli({"--address=" + daemon_->address(), "batch", "libm.so.6", file,
                          "f64 cos(f64)", "f64 pow(f64, f64)"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_THAT(bad.err, HasSubstr("line 5: 'healthy_not_here' is not declared"));
  {
    std::ofstream out(file);
    out << "# three calls\ncos 0\n\npow 2 10\ncos 0.5\n";
  }
  CliResult ok = RunCli({"--address=" + daemon_->address(), "batch", "libm.so.6", file,
                         "f64 cos(f64)", "f64 pow(f64, f64)"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, "0: 1\n1: 1024\n2: 0.8775825618903728\n");
}

// Input the CLI cannot use is an error before anything runs, never a batch
// of what was read before it: a directory, a NUL byte, more than a batch
// request can carry (a review's 5.4 GB line from /dev/zero).
TEST_F(StreamsTest, CliRefusesUnusableBatchInput) {
  const std::vector<std::string> decl = {"f64 cos(f64)"};
  auto run = [&](const std::string& file) {
    std::vector<std::string> args = {"--address=" + daemon_->address(), "batch", "libm.so.6",
                                     file};
    args.insert(args.end(), decl.begin(), decl.end());
    return RunCli(args);
  };
  CliResult dir = run(daemon_->dir());
  EXPECT_EQ(dir.exit_code, 2) << dir.err;
  EXPECT_THAT(dir.err, HasSubstr("cannot read " + daemon_->dir()));
  const std::string file = daemon_->dir() + "/calls.txt";
  {
    std::ofstream out(file);
    out << "cos 0\n" << std::string("co\0s 1\n", 7) << "cos 2\n";
  }
  CliResult nul = run(file);
  EXPECT_EQ(nul.exit_code, 2) << nul.err;
  EXPECT_THAT(nul.err, HasSubstr("line 2 of " + file + " holds a NUL byte"));
  CliResult zero = run("/dev/zero");
  EXPECT_EQ(zero.exit_code, 2) << zero.err;
  EXPECT_THAT(zero.err, HasSubstr("more than one batch request can carry"));
}

}  // namespace
}  // namespace ffibroker::testing
