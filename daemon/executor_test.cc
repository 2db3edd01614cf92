// Executor: a principal's tasks run on at most its share of the threads,
// the rest wait in its own queue (bounded), and the daemon's own tasks
// and other principals' are not held up by them.
#include "daemon/executor.h"

#include <atomic>
#include <stdexcept>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

// A task that throws ends neither the daemon nor its thread, and frees its
// principal's share: the principal's next task runs on the same thread.
TEST(ExecutorTest, ATaskThatThrowsLeavesThePoolServing) {
  absl::Notification next;  // outlives the pool and its tasks
  Executor pool(1, /*per_principal=*/1);
  ASSERT_TRUE(pool.Submit("thrower", [] { throw std::runtime_error("boom"); }));
  pool.Submit([] { throw 42; });
  ASSERT_TRUE(pool.Submit("thrower", [&] { next.Notify(); }));
  EXPECT_TRUE(next.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(ExecutorTest, APrincipalRunsOnItsShareAndOthersRunMeanwhile) {
  absl::Notification release;
  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::atomic<int> done{0};
  {
    Executor pool(4, /*per_principal=*/2);
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(pool.Submit("hog", [&] {
        int now = ++running;
        for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
        }
        release.WaitForNotification();
        --running;
        ++done;
      }));
    }
    // Two threads are free for everyone else while the hog's tasks block.
    absl::Notification other;
    absl::Notification own;
    ASSERT_TRUE(pool.Submit("other", [&] { other.Notify(); }));
    pool.Submit([&] { own.Notify(); });
    EXPECT_TRUE(other.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(own.WaitForNotificationWithTimeout(absl::Seconds(10)));
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (running.load() < 2 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
    absl::SleepFor(absl::Milliseconds(50));  // room for a third, if the share leaked
    EXPECT_EQ(running.load(), 2);
    release.Notify();
  }  // the destructor runs what waits, then joins
  EXPECT_EQ(done.load(), 5);
  EXPECT_EQ(most.load(), 2);
}

TEST(ExecutorTest, APrincipalsWaitingQueueIsBounded) {
  absl::Notification release;
  Executor pool(1, /*per_principal=*/1);
  ASSERT_TRUE(pool.Submit("hog", [&] { release.WaitForNotification(); }));
  for (size_t i = 0; i < Executor::kMaxWaitingPerPrincipal; ++i) {
    ASSERT_TRUE(pool.Submit("hog", [] {}));
  }
  EXPECT_FALSE(pool.Submit("hog", [] {})) << "a full queue took another task";
  release.Notify();
}

}  // namespace
}  // namespace ffibroker
