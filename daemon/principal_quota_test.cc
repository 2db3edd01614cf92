#include "daemon/principal_quota.h"

#include "daemon/policy.h"

#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(PrincipalQuotaTest, ReservationsCountUntilDestroyed) {
  PrincipalQuota quota;
  {
    auto a = quota.Reserve("alice", Resource::kSessions, {2, 10});
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(a->held());
    EXPECT_EQ(quota.Held("alice", Resource::kSessions), 1u);
    EXPECT_EQ(quota.Total(Resource::kSessions), 1u);
    EXPECT_EQ(quota.Held("alice", Resource::kWorkers), 0u);
  }
  EXPECT_EQ(quota.Held("alice", Resource::kSessions), 0u);
  EXPECT_EQ(quota.Total(Resource::kSessions), 0u);
}

TEST(PrincipalQuotaTest, PrincipalLimitNamesItselfAndSparesOthers) {
  PrincipalQuota quota;
  std::vector<PrincipalQuota::Reservation> held;
  for (int i = 0; i < 2; ++i) {
    auto r = quota.Reserve("alice", Resource::kSessions, {2, 10});
    ASSERT_TRUE(r.ok());
    held.push_back(*std::move(r));
  }
  auto third = quota.Reserve("alice", Resource::kSessions, {2, 10});
  ASSERT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(third.status().message()),
              HasSubstr("principal 'alice' already holds 2 sessions, its limit "
                        "max_sessions (per principal) is 2"));
  EXPECT_TRUE(quota.Reserve("bob", Resource::kSessions, {2, 10}).ok());
  held.pop_back();  // gives one back
  EXPECT_TRUE(quota.Reserve("alice", Resource::kSessions, {2, 10}).ok());
}

TEST(PrincipalQuotaTest, DaemonLimitCountsEveryPrincipal) {
  PrincipalQuota quota;
  auto a = quota.Reserve("alice", Resource::kInstances, {5, 2});
  auto b = quota.Reserve("bob", Resource::kInstances, {5, 2});
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = quota.Reserve("carol", Resource::kInstances, {5, 2});
  ASSERT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("its limit limits.max_instances is 2"));
  // Zero daemon limit: none.
  EXPECT_TRUE(quota.Reserve("carol", Resource::kCallsInFlight, {1, 0}).ok());
}

TEST(PrincipalQuotaTest, MovingTransfersReleasingIsIdempotent) {
  PrincipalQuota quota;
  auto r = quota.Reserve("alice", Resource::kClasses, {1, 0});
  ASSERT_TRUE(r.ok());
  PrincipalQuota::Reservation moved = *std::move(r);
  EXPECT_FALSE(r->held());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(moved.held());
  PrincipalQuota::Reservation assigned;
  assigned = std::move(moved);
  EXPECT_EQ(quota.Held("alice", Resource::kClasses), 1u);
  assigned.Release();
  assigned.Release();
  EXPECT_FALSE(assigned.held());
  EXPECT_EQ(quota.Held("alice", Resource::kClasses), 0u);
  EXPECT_EQ(quota.Total(Resource::kClasses), 0u);
}

TEST(PrincipalQuotaTest, AnAmountIsTakenAndGivenBackWhole) {
  PrincipalQuota quota;
  auto first = quota.Reserve("alice", Resource::kAnswerKib, {2048, 0}, 1500);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = quota.Reserve("alice", Resource::kAnswerKib, {2048, 0}, 600);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(second.status().message()),
              AllOf(HasSubstr("already holds 1500 KiB"), HasSubstr("this needs 600 more"),
                    HasSubstr("max_unread_answers_mib (per principal) is 2 MiB")));
  EXPECT_TRUE(quota.Reserve("bob", Resource::kAnswerKib, {2048, 0}, 2048).ok());
  first->Release();
  auto third = quota.Reserve("alice", Resource::kAnswerKib, {2048, 0}, 600);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(quota.Held("alice", Resource::kAnswerKib), 600u);
  third->Release();
  EXPECT_EQ(quota.Total(Resource::kAnswerKib), 0u);
}

TEST(PrincipalQuotaTest, LimitOfTakesThePolicyFields) {
  v1::PrincipalLimits p;
  p.set_max_sessions(3);
  p.set_max_calls_in_flight(4);
  v1::Limits l;
  l.set_max_sessions(30);
  QuotaLimit sessions = LimitOf(Resource::kSessions, p, l);
  EXPECT_EQ(sessions.principal, 3u);
  EXPECT_EQ(sessions.daemon, 30u);
  QuotaLimit calls = LimitOf(Resource::kCallsInFlight, p, l);
  EXPECT_EQ(calls.principal, 4u);
  EXPECT_EQ(calls.daemon, 0u);
}

// The policy side: defaults, a principal's own limits, and who holds them.
TEST(PrincipalLimitsPolicyTest, DefaultsOwnLimitsAndHolders) {
  absl::StatusOr<Policy> policy = Policy::Parse(
      "principals { name: \"ci\" uids: 1000 limits { max_sessions: 2 } }\n"
      "principals { name: \"users\" any_local_user: true }\n",
      "t");
  ASSERT_TRUE(policy.ok()) << policy.status();
  const v1::Limits& l = policy->limits();
  EXPECT_EQ(l.max_instances(), 65536u);
  EXPECT_EQ(l.per_principal().max_sessions(), 32u);
  EXPECT_EQ(l.per_principal().max_workers(), 16u);
  EXPECT_EQ(l.per_principal().max_calls_in_flight(), 8u);
  EXPECT_EQ(l.per_principal().max_instances(), 8192u);
  EXPECT_EQ(l.per_principal().max_classes(), 1024u);
  EXPECT_EQ(l.per_principal().max_unread_answers_mib(), 128u);
  EXPECT_EQ(l.per_principal().max_streams(), 64u);
  EXPECT_EQ(LimitOf(Resource::kAnswerKib, l.per_principal(), l).principal, 128u * 1024);
  // The defaults leave one principal below every daemon-wide limit.
  EXPECT_LT(l.per_principal().max_sessions(), l.max_sessions());
  EXPECT_LT(l.per_principal().max_workers(), l.max_workers());
  EXPECT_LT(l.per_principal().max_instances(), l.max_instances());
  EXPECT_TRUE(policy->warnings().empty());

  PeerIdentity id;
  id.transport = PeerIdentity::Transport::kUnix;
  id.uid = 1000;
  absl::StatusOr<Caller> ci = policy->Authenticate(id);
  ASSERT_TRUE(ci.ok());
  EXPECT_EQ(ci->limits.max_sessions(), 2u);       // its own
  EXPECT_EQ(ci->limits.max_workers(), 16u);       // the default
  EXPECT_EQ(ci->limits_holder, "ci");
  // any_local_user: each uid holds its own share.
  id.uid = 1001;
  absl::StatusOr<Caller> u1 = policy->Authenticate(id);
  id.uid = 1002;
  absl::StatusOr<Caller> u2 = policy->Authenticate(id);
  ASSERT_TRUE(u1.ok() && u2.ok());
  EXPECT_EQ(u1->principal, "users");
  EXPECT_EQ(u1->limits_holder, "users (uid 1001)");
  EXPECT_EQ(u2->limits_holder, "users (uid 1002)");
}

TEST(PrincipalLimitsPolicyTest, APrincipalAllowedEverythingIsWarnedAbout) {
  absl::StatusOr<Policy> policy = Policy::Parse(
      "limits { max_sessions: 4 }\nprincipals { name: \"ci\" uids: 1000 }\n", "t");
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_EQ(policy->warnings().size(), 1u);
  EXPECT_THAT(policy->warnings()[0],
              HasSubstr("principal 'ci' may hold 32 for max_sessions (per principal), not "
                        "fewer than limits.max_sessions (4)"));
}

}  // namespace
}  // namespace ffibroker
