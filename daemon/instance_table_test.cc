// InstanceTable (daemon/instance_table.h): a handle names exactly the
// instance it was issued for, only for the session that owns it, and its
// owner hears precisely why it went stale, also after its slot is reused.
#include "daemon/instance_table.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kAlice = 1;
constexpr uint64_t kBob = 2;

InstanceTable::Record RecordOf(uint64_t session, uint64_t worker_id) {
  InstanceTable::Record r;
  r.session = session;
  r.library = 7;
  r.worker_id = worker_id;
  return r;
}

uint64_t Add(InstanceTable& table, uint64_t session, uint64_t worker_id) {
  return table.Add(RecordOf(session, worker_id), PrincipalQuota::Reservation());
}

void ExpectStale(const InstanceTable& table, uint64_t handle, uint64_t session,
                 const std::string& reason) {
  absl::StatusOr<InstanceTable::Record> r = table.Find(handle, session);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("is stale: it " + reason));
}

void ExpectNotOurs(const InstanceTable& table, uint64_t handle, uint64_t session) {
  absl::StatusOr<InstanceTable::Record> r = table.Find(handle, session);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("not an instance of this session"));
}

TEST(InstanceTableTest, FindsOnlyTheOwnersLiveRecord) {
  InstanceTable table;
  uint64_t h = Add(table, kAlice, 41);
  ASSERT_NE(h, 0u);
  absl::StatusOr<InstanceTable::Record> r = table.Find(h, kAlice);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->worker_id, 41u);
  ExpectNotOurs(table, h, kBob);
  ExpectNotOurs(table, h + 1, kAlice);          // a generation never issued
  ExpectNotOurs(table, h + (1ull << 32), kAlice);  // a slot never issued
  ExpectNotOurs(table, 0, kAlice);
}

// The slot of a freed handle, reused and freed again at once by the same
// session, still tells the first handle's owner it is stale. (With the
// last freed slot reused first, the second free overwrote what the slot
// knew of the first handle, which then read as never issued.)
TEST(InstanceTableTest, StaleAnswerSurvivesSlotReuse) {
  InstanceTable table;
  uint64_t first = Add(table, kAlice, 1);
  ASSERT_TRUE(table.Take(first, kAlice, "was freed").ok());
  uint64_t second = Add(table, kAlice, 2);
  ASSERT_TRUE(table.Take(second, kAlice, "was lost when its worker died").ok());
  uint64_t third = Add(table, kAlice, 3);
  ExpectStale(table, first, kAlice, "was freed");
  ExpectStale(table, second, kAlice, "was lost when its worker died");
  ExpectNotOurs(table, first, kBob);
  ASSERT_TRUE(table.Find(third, kAlice).ok());
  EXPECT_EQ(table.Find(third, kAlice)->worker_id, 3u);
}

// A freed handle keeps its precise answer for `kept_free` further frees;
// slots are reused oldest first after that, so the table stays bounded.
TEST(InstanceTableTest, KeepsFreedSlotsThenReusesTheOldest) {
  constexpr size_t kKept = 8;
  InstanceTable table(kKept);
  uint64_t first = Add(table, kAlice, 0);
  ASSERT_TRUE(table.Take(first, kAlice, "was freed").ok());
  for (uint64_t i = 1; i < kKept; ++i) {
    ASSERT_TRUE(table.Take(Add(table, kAlice, i), kAlice, "was freed").ok());
    ExpectStale(table, first, kAlice, "was freed");
  }
  // Thousands of create-free cycles: never more than kKept + 1 slots.
  for (uint64_t i = 0; i < 5000; ++i) {
    ASSERT_TRUE(table.Take(Add(table, kBob, i), kBob, "was freed").ok());
  }
  EXPECT_LE(table.slots(), kKept + 1);
  EXPECT_EQ(table.live(), 0u);
}

// Security: over many reuses of few slots by two sessions, no old handle
// ever reaches a record again, for any session; each live handle reaches
// exactly its own record, for its owner only.
TEST(InstanceTableTest, AnOldHandleNeverNamesANewInstance) {
  InstanceTable table(2);
  std::vector<uint64_t> dead;
  std::set<uint64_t> issued;
  uint64_t live_alice = Add(table, kAlice, 1000000);
  for (uint64_t i = 0; i < 3000; ++i) {
    uint64_t session = i % 3 == 0 ? kBob : kAlice;
    uint64_t h = Add(table, session, i);
    EXPECT_TRUE(issued.insert(h).second) << "handle " << h << " issued twice";
    for (uint64_t old : dead) {
      for (uint64_t s : {kAlice, kBob}) {
        absl::StatusOr<InstanceTable::Record> r = table.Find(old, s);
        ASSERT_FALSE(r.ok()) << "freed handle " << old << " found worker id " << r->worker_id;
      }
    }
    absl::StatusOr<InstanceTable::Record> r = table.Find(h, session);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->worker_id, i);
    ExpectNotOurs(table, h, session == kAlice ? kBob : kAlice);
    ASSERT_TRUE(table.Take(h, session, "was freed").ok());
    dead.push_back(h);
    if (dead.size() > 64) dead.erase(dead.begin());
  }
  ASSERT_TRUE(table.Find(live_alice, kAlice).ok());
  EXPECT_EQ(table.Find(live_alice, kAlice)->worker_id, 1000000u);
}

TEST(InstanceTableTest, TakeAllLeavesStaleHandlesBehind) {
  InstanceTable table;
  uint64_t a = Add(table, kAlice, 1);
  uint64_t b = Add(table, kAlice, 2);
  uint64_t c = Add(table, kBob, 3);
  EXPECT_EQ(table.TakeAll(kAlice, 0, "was released when its session closed").size(), 2u);
  ExpectStale(table, a, kAlice, "was released when its session closed");
  ExpectStale(table, b, kAlice, "was released when its session closed");
  EXPECT_TRUE(table.Find(c, kBob).ok());
  EXPECT_EQ(table.live(), 1u);
}

}  // namespace
}  // namespace ffibroker
