#include "daemon/worker_uid_pool.h"

#include <set>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::HasSubstr;

TEST(WorkerUidPoolTest, LeasesAreDistinctUntilTheRangeIsExhausted) {
  WorkerUidPool pool(70000, 70002);
  std::vector<WorkerUidPool::Lease> leases;
  std::set<uint32_t> uids;
  for (int i = 0; i < 3; ++i) {
    auto lease = pool.Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    uids.insert(lease->uid());
    leases.push_back(*std::move(lease));
  }
  EXPECT_EQ(uids, (std::set<uint32_t>{70000, 70001, 70002}));
  EXPECT_EQ(pool.in_use(), 3u);
  auto none = pool.Acquire();
  ASSERT_EQ(none.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(none.status().message()),
              HasSubstr("all 3 worker uids of --worker-uids=70000-70002 are in use"));
}

TEST(WorkerUidPoolTest, AReleasedUidIsReusedOnlyAfterTheOthers) {
  WorkerUidPool pool(70000, 70002);
  auto a = pool.Acquire();
  ASSERT_TRUE(a.ok());
  uint32_t first = a->uid();
  a->Release();
  a->Release();  // idempotent
  EXPECT_EQ(pool.in_use(), 0u);
  // The two never leased come before the one just given back.
  auto b = pool.Acquire();
  auto c = pool.Acquire();
  auto d = pool.Acquire();
  ASSERT_TRUE(b.ok() && c.ok() && d.ok());
  EXPECT_NE(b->uid(), first);
  EXPECT_NE(c->uid(), first);
  EXPECT_EQ(d->uid(), first);
}

TEST(WorkerUidPoolTest, ExcludedIdsAreNeverLeasedAndLeasesOutliveThePool) {
  WorkerUidPool::Lease kept;
  {
    WorkerUidPool pool(70000, 70001, {70000});
    EXPECT_EQ(pool.size(), 1u);
    auto lease = pool.Acquire();
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ(lease->uid(), 70001u);
    kept = *std::move(lease);
    EXPECT_EQ(pool.Acquire().status().code(), absl::StatusCode::kResourceExhausted);
  }
  EXPECT_TRUE(kept.held());
  kept.Release();  // the pool is gone: still safe
  EXPECT_FALSE(kept.held());
}

TEST(WorkerUidPoolTest, ParsesRanges) {
  auto range = ParseUidRange("70000-73999");
  ASSERT_TRUE(range.ok());
  EXPECT_EQ(range->first, 70000u);
  EXPECT_EQ(range->second, 73999u);
  for (const char* bad : {"", "70000", "0-5", "9-8", "a-b", "1-2-3", "1-4294967295"}) {
    EXPECT_EQ(ParseUidRange(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ParseUidRange(kDefaultWorkerUids).ok());
}

}  // namespace
}  // namespace ffibroker
