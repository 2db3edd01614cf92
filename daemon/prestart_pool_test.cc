// Unit tests of the pre-started pool's bookkeeping (with a start function
// that fails, so no worker runs) and of the hand-off file. The pool with
// real workers is tested end to end in tests/integration/prestart_test.cc.
#include "daemon/prestart_pool.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/synchronization/mutex.h"

#include "absl/synchronization/notification.h"
#include "daemon/handoff_file.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

// Waits up to 10 s for `predicate`.
template <typename P>
bool Within(P predicate) {
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!predicate()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

TEST(PrestartPoolTest, AFailedStartIsTriedAgainByItselfAfterADelay) {
  std::atomic<int> starts{0};
  std::vector<absl::Time> when;
  absl::Mutex mu;
  PrestartPool pool(
      [&](const std::string& profile, absl::Time) -> absl::StatusOr<std::unique_ptr<PrestartedWorker>> {
        EXPECT_EQ(profile, "strict");
        absl::MutexLock lock(&mu);
        when.push_back(absl::Now());
        ++starts;
        return absl::UnavailableError("no worker today");
      },
      PrestartOptions{2, 1, absl::Seconds(1)});
  pool.Want({"strict"});
  ASSERT_TRUE(Within([&] { return starts >= 1; }));
  // Nothing is ready: the caller starts its own; taking does not start
  // another meanwhile (one refill at a time, and it is waiting).
  EXPECT_EQ(pool.Take("strict"), nullptr);
  // Without anything asking, the pool tries again: after kRetryDelay, then
  // after twice that.
  ASSERT_TRUE(Within([&] { return starts >= 3; }));
  absl::MutexLock lock(&mu);
  EXPECT_GE(when[1] - when[0], PrestartPool::kRetryDelay - absl::Milliseconds(50));
  EXPECT_GE(when[2] - when[1], 2 * PrestartPool::kRetryDelay - absl::Milliseconds(50));
  EXPECT_EQ(pool.idle("strict"), 0);
}

TEST(PrestartPoolTest, ARefusalDisablesThePool) {
  std::atomic<int> starts{0};
  PrestartPool pool(
      [&](const std::string&, absl::Time) -> absl::StatusOr<std::unique_ptr<PrestartedWorker>> {
        ++starts;
        return absl::FailedPreconditionError("no mount namespace");
      },
      PrestartOptions{2, 1, absl::Seconds(1)});
  pool.Want({"strict", "threads"});
  ASSERT_TRUE(Within([&] { return starts == 1; }));
  absl::SleepFor(PrestartPool::kRetryDelay + absl::Milliseconds(100));
  EXPECT_EQ(pool.Take("strict"), nullptr);
  EXPECT_EQ(pool.Take("threads"), nullptr);
  pool.Want({"files-readonly"});
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(starts, 1);
}

TEST(PrestartPoolTest, StopEndsRefillingAndTakeReturnsNothing) {
  absl::Notification entered, release;
  std::atomic<int> starts{0};
  auto pool = std::make_unique<PrestartPool>(
      [&](const std::string&, absl::Time) -> absl::StatusOr<std::unique_ptr<PrestartedWorker>> {
        ++starts;
        entered.Notify();
        release.WaitForNotification();
        return absl::UnavailableError("stopped");
      },
      PrestartOptions{3, 1, absl::Seconds(1)});
  pool->Want({"strict"});
  entered.WaitForNotification();
  pool->Stop();  // does not wait for the start in progress
  EXPECT_EQ(pool->Take("strict"), nullptr);
  release.Notify();
  pool.reset();  // waits for it
  EXPECT_EQ(starts, 1);
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(HandoffFileTest, FillCopiesTheBytesAndTheFileGoesWithItsOwner) {
  auto dir = HandoffDir::Create();
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string dir_path = (*dir)->path();
  struct stat st;
  ASSERT_EQ(::stat(dir_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::string path;
  {
    auto file = (*dir)->NewFile();
    ASSERT_TRUE(file.ok()) << file.status();
    path = file->path();
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0444u);
    EXPECT_EQ(st.st_size, 0);
    const std::string source = dir_path + "/source";
    std::string bytes(300000, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
    std::ofstream(source, std::ios::binary) << bytes;
    UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(file->Fill(fd.get()).ok());
    EXPECT_TRUE(Read(path) == bytes) << "the copy differs";
    // Filled again (a shorter library): only the new bytes.
    std::ofstream(source, std::ios::binary | std::ios::trunc) << "short";
    UniqueFd again(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(file->Fill(again.get()).ok());
    EXPECT_TRUE(Read(path) == "short") << "the copy differs: " << Read(path).size() << " bytes";
    // Not a regular file: refused.
    UniqueFd directory(::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_EQ(file->Fill(directory.get()).code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_NE(::stat(path.c_str(), &st), 0) << "the file outlived its owner";
  dir->reset();
  EXPECT_NE(::stat(dir_path.c_str(), &st), 0) << "the directory outlived its owner";
}

}  // namespace
}  // namespace ffibroker
