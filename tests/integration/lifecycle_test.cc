// End-to-end lifecycle: crash isolation, deadlines, session release and
// graceful shutdown, all against the real daemon and real workers.
#include <signal.h>
#include <sys/wait.h>

#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kCrashy[] = "crashy";
const std::vector<std::string> kCrashyDecls = {
    "i32 crash_segv()", "void crash_abort()", "i32 exit_midcall()", "void hang()",
    "i32 healthy(i32)", "i32 sleep_ms(u32)"};

// Waits up to 5 s for `predicate`.
class LifecycleTest : public DaemonSessionTest {
 protected:
  void SetUp() override {
    DaemonSessionTest::SetUp();
    if (HasFatalFailure()) return;
    auto lib = session_->OpenLibrary(kCrashy, kCrashyDecls);
    ASSERT_TRUE(lib.ok()) << lib.status();
    lib_ = std::move(*lib);
  }

  // No worker of the daemon is a zombie, and exactly `live` workers exist.
  void ExpectWorkers(size_t live) {
    EXPECT_TRUE(Eventually([&] { return daemon_->Children().size() == live; }))
        << "children: " << daemon_->Children().size() << ", expected " << live;
    for (pid_t child : daemon_->Children()) EXPECT_NE(ProcessState(child), 'Z');
  }

  std::unique_ptr<Library> lib_;
};

TEST_F(LifecycleTest, SegfaultFailsOneCallAndTheNextCallWorks) {
  pid_t first = lib_->worker_pid();
  absl::StatusOr<int32_t> crashed = lib_->Call<int32_t>("crash_segv");
  EXPECT_EQ(crashed.status().code(), absl::StatusCode::kUnavailable) << crashed.status();
  EXPECT_THAT(std::string(crashed.status().message()), HasSubstr("SIGSEGV"));
  EXPECT_THAT(std::string(crashed.status().message()), HasSubstr("crash_segv"));
  EXPECT_TRUE(daemon_->alive());
  EXPECT_FALSE(ProcessExists(first));  // reaped, not a zombie
  // The same handle is served by a fresh worker.
  absl::StatusOr<int32_t> after = lib_->Call<int32_t>("healthy", 21);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 42);
  // And the library can be opened again.
  auto again = session_->OpenLibrary(kCrashy, {"i32 healthy(i32)"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*(*again)->Call<int32_t>("healthy", 2), 4);
  ExpectWorkers(2);
}

TEST_F(LifecycleTest, AbortAndExitAreReportedPrecisely) {
  absl::Status aborted = lib_->Call<void>("crash_abort");
  EXPECT_EQ(aborted.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(aborted.message()), HasSubstr("SIGABRT"));
  absl::StatusOr<int32_t> exited = lib_->Call<int32_t>("exit_midcall");
  EXPECT_EQ(exited.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(exited.status().message()), HasSubstr("exited with status 7"));
  EXPECT_EQ(*lib_->Call<int32_t>("healthy", 1), 2);
  ExpectWorkers(1);
}

TEST_F(LifecycleTest, DeadlineKillsAHungWorkerAndReplacesIt) {
  pid_t hung = lib_->worker_pid();
  absl::Time start = absl::Now();
  absl::StatusOr<v1::CallResponse> r = lib_->CallValues("hang", {}, absl::Milliseconds(300));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(Eventually([&] { return !ProcessExists(hung); }));
  EXPECT_EQ(*lib_->Call<int32_t>("healthy", 5), 10);
  ExpectWorkers(1);
}

TEST_F(LifecycleTest, PolicyMaxCallTimeBoundsCallsWithoutAClientDeadline) {
  auto daemon = TestDaemon::Start("limits { max_call_millis: 200 }");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  auto lib = (*session)->OpenLibrary(kCrashy, kCrashyDecls);
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status hung = (*lib)->Call<void>("hang");
  EXPECT_EQ(hung.code(), absl::StatusCode::kDeadlineExceeded) << hung;
  EXPECT_THAT(std::string(hung.message()), HasSubstr("hang"));
}

TEST_F(LifecycleTest, ClosingTheSessionStopsItsWorkers) {
  auto second = session_->OpenLibrary(kCrashy, {"i32 healthy(i32)"});
  ASSERT_TRUE(second.ok());
  ExpectWorkers(2);
  pid_t a = lib_->worker_pid(), b = (*second)->worker_pid();
  ASSERT_TRUE(session_->Close().ok());
  ExpectWorkers(0);
  EXPECT_FALSE(ProcessExists(a));
  EXPECT_FALSE(ProcessExists(b));
  EXPECT_EQ(lib_->Call<int32_t>("healthy", 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(LifecycleTest, IdleSessionsExpireAndReleaseTheirWorkers) {
  auto short_lived = client_->CreateSession(1);
  ASSERT_TRUE(short_lived.ok());
  auto lib = (*short_lived)->OpenLibrary(kCrashy, {"i32 healthy(i32)"});
  ASSERT_TRUE(lib.ok());
  pid_t worker = (*lib)->worker_pid();
  EXPECT_TRUE(Eventually([&] { return !ProcessExists(worker); }));
  absl::StatusOr<int32_t> r = (*lib)->Call<int32_t>("healthy", 1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("unknown session"));
  EXPECT_THAT(daemon_->ReadLog(), HasSubstr("expired"));
}

// A call that runs longer than the session's idle timeout is use: the
// session does not expire under it (a review found the call failed
// WORKER_STOPPED after a second, and the session was gone).
TEST_F(LifecycleTest, ASessionIsNotIdleWhileItsCallRuns) {
  auto short_lived = client_->CreateSession(1);
  ASSERT_TRUE(short_lived.ok());
  auto lib = (*short_lived)->OpenLibrary(kCrashy, {"i32 sleep_ms(u32)", "i32 healthy(i32)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::StatusOr<int32_t> slow = (*lib)->Call<int32_t>("sleep_ms", uint32_t{2500});
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_EQ(*slow, 1);
  absl::StatusOr<int32_t> next = (*lib)->Call<int32_t>("healthy", 2);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, 4);
}

TEST_F(LifecycleTest, LimitsAreEnforced) {
  auto daemon = TestDaemon::Start(
      "limits { max_libraries_per_session: 1 max_sessions: 2 }");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto s1 = (*client)->CreateSession();
  auto s2 = (*client)->CreateSession();
  ASSERT_TRUE(s1.ok() && s2.ok());
  EXPECT_EQ((*client)->CreateSession().status().code(), absl::StatusCode::kResourceExhausted);
  auto lib = (*s1)->OpenLibrary(kCrashy, {"i32 healthy(i32)"});
  ASSERT_TRUE(lib.ok());
  absl::Status second = (*s1)->OpenLibrary(kCrashy, {"i32 healthy(i32)"}).status();
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(second.message()), HasSubstr("limit is 1"));
}

TEST_F(LifecycleTest, SigtermFinishesInFlightCallsThenStopsEveryWorker) {
  pid_t worker = lib_->worker_pid();
  absl::StatusOr<int32_t> slow;
  std::thread call([&] { slow = lib_->Call<int32_t>("sleep_ms", 500u); });
  absl::SleepFor(absl::Milliseconds(150));
  int status = daemon_->Stop();
  call.join();
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_EQ(*slow, 1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(ProcessExists(worker));
  EXPECT_THAT(daemon_->ReadLog(), HasSubstr("received SIGTERM"));
  EXPECT_THAT(daemon_->ReadLog(), HasSubstr("stopped"));
}

TEST_F(LifecycleTest, SigtermKillsCallsThatOutlastTheGracePeriod) {
  auto daemon = TestDaemon::Start("", {"--shutdown-grace=200ms"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  auto lib = (*session)->OpenLibrary(kCrashy, kCrashyDecls);
  ASSERT_TRUE(lib.ok());
  pid_t worker = (*lib)->worker_pid();
  absl::Status hung;
  std::thread call([&] { hung = (*lib)->Call<void>("hang"); });
  absl::SleepFor(absl::Milliseconds(100));
  absl::Time start = absl::Now();
  int status = (*daemon)->Stop();
  call.join();
  EXPECT_FALSE(hung.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(ProcessExists(worker));
}

TEST_F(LifecycleTest, WorkersDieWithTheDaemon) {
  pid_t worker = lib_->worker_pid();
  ASSERT_EQ(::kill(daemon_->pid(), SIGKILL), 0);
  EXPECT_TRUE(Eventually([&] { return !ProcessExists(worker) || ProcessState(worker) == 'Z'; }));
}

}  // namespace
}  // namespace ffibroker::testing
