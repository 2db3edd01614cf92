// End-to-end tests that nothing waits on a worker (issue 11): hung calls,
// hung instance operations, closes behind slow destructors and requests
// piled up on a busy worker's channel delay no one else, and calls after a
// crash share one restart. Label `streams`.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "tests/streams/streams_fixture.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

// As many hung calls as the daemon has threads delay neither an unrelated
// Whoami nor a call in another session.
TEST_F(StreamsTest, HungCallsDoNotDelayOtherSessions) {
  Adopt(TestDaemon::Start("", {"--threads=2"}));
  std::vector<std::unique_ptr<Session>> sessions;
  std::vector<std::unique_ptr<Library>> hung;
  std::vector<std::thread> callers;
  for (int i = 0; i < 4; ++i) {
    sessions.push_back(NewSession());
    hung.push_back(Open("crashy", {"i32 sleep_ms(u32)"}, 1, sessions.back().get()));
    ASSERT_NE(hung.back(), nullptr);
  }
  for (auto& lib : hung) {
    callers.emplace_back([&lib] { lib->Call<int32_t>("sleep_ms", uint32_t{8000}).IgnoreError(); });
  }
  absl::SleepFor(absl::Milliseconds(500));
  auto lib = Open("crashy", {"i32 healthy(i32)"});
  ASSERT_NE(lib, nullptr);
  absl::Time start = absl::Now();
  ASSERT_TRUE(client_->Whoami().ok());
  EXPECT_EQ(*lib->Call<int32_t>("healthy", 3), 6);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  for (auto& lib : hung) ASSERT_TRUE(lib->Close().ok());  // kills the sleepers
  for (std::thread& t : callers) t.join();
}

// Instance operations wait for their worker without a thread either: with
// one executor thread and two destructors hung in their workers (3 s
// each), another session opens a library, makes, writes, reads and frees
// an instance at once.
TEST_F(StreamsTest, HungInstanceOperationsHoldNoThread) {
  Adopt(TestDaemon::Start("", {"--threads=1"}));
  SlowOwner owners[2] = {NewSlowOwner(), NewSlowOwner()};
  for (const SlowOwner& owner : owners) ASSERT_NE(owner.instance, nullptr);
  std::vector<std::thread> freers;
  std::atomic<int> destructors{0};
  for (SlowOwner& owner : owners) {
    freers.emplace_back([&owner, &destructors] {
      absl::StatusOr<bool> freed = owner.instance->Free();
      EXPECT_TRUE(freed.ok()) << freed.status();
      if (freed.ok() && *freed) ++destructors;
    });
  }
  absl::SleepFor(absl::Milliseconds(300));  // both destructors are running
  const absl::Time start = absl::Now();
  ASSERT_TRUE(session_->RegisterClass("Point { mut f64 x; f64 y; }").ok());
  auto lib = Open("classes", {"f64 point_sum(Point*? p)"});
  ASSERT_NE(lib, nullptr);
  auto point = lib->NewInstance("Point");
  ASSERT_TRUE(point.ok()) << point.status();
  ASSERT_TRUE((*point)->Set("x", ToValue(1.5)).ok());
  auto read = (*point)->Read();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*lib->Call<double>("point_sum", **point), 1.5);
  EXPECT_TRUE((*point)->Free().ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(2))
      << "instance operations waited for the hung destructors' thread";
  for (std::thread& t : freers) t.join();
  EXPECT_EQ(destructors.load(), 2);
}

// Nor does closing a session or a library wait on a thread for the
// destructors it runs: with one executor thread, a session and a library
// closing behind 3 s destructors leave another session's open and call
// answered at once, and each close still answers only after its
// destructor ran.
TEST_F(StreamsTest, ClosesWaitingForDestructorsHoldNoThread) {
  Adopt(TestDaemon::Start("", {"--threads=1"}));
  SlowOwner owners[2] = {NewSlowOwner(), NewSlowOwner()};
  for (SlowOwner& owner : owners) {
    ASSERT_NE(owner.instance, nullptr);
    owner.instance->Release();  // left to the close
  }
  std::vector<std::thread> closers;
  const absl::Time closing = absl::Now();
  closers.emplace_back([&] {
    EXPECT_TRUE(owners[0].session->Close().ok());
    EXPECT_GT(absl::Now() - closing, absl::Seconds(2)) << "answered before its destructor ran";
  });
  closers.emplace_back([&] {
    EXPECT_TRUE(owners[1].lib->Close().ok());
    EXPECT_GT(absl::Now() - closing, absl::Seconds(2)) << "answered before its destructor ran";
  });
  absl::SleepFor(absl::Milliseconds(300));  // both destructors are running
  const absl::Time start = absl::Now();
  auto lib = Open("crashy", {"i32 healthy(i32)"});
  ASSERT_NE(lib, nullptr);
  EXPECT_EQ(*lib->Call<int32_t>("healthy", 3), 6);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2))
      << "the open waited for the closes' thread";
  for (std::thread& t : closers) t.join();
}

// Requests that pile up on the channel of a busy worker (big buffers sent
// on many streams while it sleeps) wait for room without stalling the
// daemon: another client's Whoami, open and call are answered at once, and
// every piled-up request runs once the worker is free.
TEST_F(StreamsTest, AFullWorkerChannelDoesNotStallOtherClients) {
  auto lib = Open("crashy", {"i32 sleep_ms(u32)", "u64 count_bytes(in u8[n] buf, u64 n)"});
  ASSERT_NE(lib, nullptr);
  constexpr int kStreams = 3;  // 6 calls of 4 MiB, the sleeper, and the quick call: 8 in flight
  std::vector<std::unique_ptr<CallStream>> streams;
  auto sleeper = session_->OpenStream();
  ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  ASSERT_TRUE((*sleeper)->Send(*lib, "sleep_ms", {ToValue(uint32_t{4000})}).ok());
  const std::string big(4 << 20, '\1');
  for (int i = 0; i < kStreams; ++i) {
    auto stream = session_->OpenStream();
    ASSERT_TRUE(stream.ok()) << stream.status();
    for (int j = 0; j < 2; ++j) {
      ASSERT_TRUE((*stream)->Send(*lib, "count_bytes",
                                  {BytesValue(big), ToValue(uint64_t{big.size()})}).ok());
    }
    streams.push_back(*std::move(stream));
  }
  absl::SleepFor(absl::Milliseconds(500));  // the sends are waiting for room
  auto other = daemon_->Connect();
  ASSERT_TRUE(other.ok()) << other.status();
  const absl::Time start = absl::Now();
  ASSERT_TRUE((*other)->Whoami().ok());
  auto session = (*other)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto quick = (*session)->OpenLibrary("crashy", {"i32 healthy(i32)"});
  ASSERT_TRUE(quick.ok()) << quick.status();
  EXPECT_EQ(*(*quick)->Call<int32_t>("healthy", 2), 4);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2)) << "a full worker channel held the daemon";
  auto slept = (*sleeper)->Receive();
  ASSERT_TRUE(slept.ok()) << slept.status();
  EXPECT_EQ(slept->status().code(), 0) << slept->status().message();
  for (auto& stream : streams) {
    for (int j = 0; j < 2; ++j) {
      auto counted = stream->Receive();
      ASSERT_TRUE(counted.ok()) << counted.status();
      EXPECT_EQ(counted->status().code(), 0) << counted->status().message();
      EXPECT_EQ(counted->call().result().uint_value(), big.size());
    }
  }
}

// Calls that find their library's worker dead wait for one restart
// together: a second start would replace (kill) the worker the first one
// started, and the calls already running on it.
TEST_F(StreamsTest, ConcurrentCallsAfterACrashShareOneRestart) {
  Adopt(TestDaemon::StartWithPolicy(absl::StrCat(
      TestDaemon::Catalogue(), "principals { name: \"test-user\" uids: ", ::getuid(),
      " read_metrics: true permission { libraries { library: \"crashy\" } } }\n")));
  auto lib = Open("crashy", {"i32 crash_segv()", "i32 sleep_ms(u32)"});
  ASSERT_NE(lib, nullptr);
  EXPECT_FALSE(lib->Call<int32_t>("crash_segv").ok());
  constexpr int kCallers = 6;
  std::vector<std::thread> callers;
  std::vector<absl::Status> outcomes(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      outcomes[i] = lib->Call<int32_t>("sleep_ms", uint32_t{150}).status();
    });
  }
  for (std::thread& t : callers) t.join();
  for (int i = 0; i < kCallers; ++i) EXPECT_TRUE(outcomes[i].ok()) << i << ": " << outcomes[i];
  auto metrics = client_->GetMetrics();
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_THAT(*metrics, HasSubstr("\nffibroker_worker_restarts_total 1\n"));
}

}  // namespace
}  // namespace ffibroker::testing
