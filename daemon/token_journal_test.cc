// Unit tests of the token journal's format (every damage is reported, a
// torn tail is repaired) and of the token state it makes durable.
#include "daemon/token_journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/token_authority.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::HasSubstr;

const std::string kSecret(32, 'j');

daemon::v1::TokenJournalRecord Record(const std::string& id, uint64_t calls) {
  daemon::v1::TokenJournalRecord r;
  daemon::v1::TokenState* s = r.add_tokens();
  s->set_token_id(id);
  s->set_expires_unix_seconds(4000000000);
  s->set_calls_used(calls);
  return r;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
}

class TokenJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/journal-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(PrepareStateDirectory(dir_).ok());
    path_ = dir_ + "/" + kTokenJournalFile;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<std::unique_ptr<TokenJournal>> Open(
      std::vector<daemon::v1::TokenJournalRecord>* records, std::string* warning,
      const std::string& secret = kSecret) {
    return TokenJournal::Open(path_, secret, records, warning);
  }
  // Writes three records and returns the file's size after each.
  std::vector<uint64_t> WriteThree() {
    std::vector<daemon::v1::TokenJournalRecord> records;
    std::string warning;
    auto journal = Open(&records, &warning);
    EXPECT_TRUE(journal.ok()) << journal.status();
    std::vector<uint64_t> sizes = {(*journal)->size()};
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE((*journal)->Append(Record("t" + std::to_string(i), i)).ok());
      sizes.push_back((*journal)->size());
    }
    return sizes;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(TokenJournalTest, RecordsSurviveReopening) {
  WriteThree();
  std::vector<daemon::v1::TokenJournalRecord> records;
  std::string warning;
  auto journal = Open(&records, &warning);
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_EQ(warning, "");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[2].tokens(0).token_id(), "t2");
  EXPECT_EQ(records[2].tokens(0).calls_used(), 2u);
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Appends after a reopen continue the MAC chain.
  ASSERT_TRUE((*journal)->Append(Record("t3", 3)).ok());
  records.clear();
  ASSERT_TRUE(Open(&records, &warning).ok());
  EXPECT_EQ(records.size(), 4u);
}

TEST_F(TokenJournalTest, EveryDamagedByteIsReportedWithFileAndOffset) {
  std::vector<uint64_t> sizes = WriteThree();
  const std::string good = ReadAll(path_);
  ASSERT_EQ(good.size(), sizes.back());
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    WriteAll(path_, bad);
    std::vector<daemon::v1::TokenJournalRecord> records;
    std::string warning;
    auto journal = Open(&records, &warning);
    ASSERT_FALSE(journal.ok()) << "byte " << i << " flipped went unnoticed";
    EXPECT_TRUE(absl::IsFailedPrecondition(journal.status())) << journal.status();
    EXPECT_THAT(std::string(journal.status().message()), HasSubstr(path_));
    EXPECT_THAT(std::string(journal.status().message()), HasSubstr("at offset "));
  }
  // The offset is that of the damaged record.
  std::string bad = good;
  bad[sizes[1] + 12] ^= 1;  // in the second record's payload
  WriteAll(path_, bad);
  std::vector<daemon::v1::TokenJournalRecord> records;
  std::string warning;
  auto journal = Open(&records, &warning);
  EXPECT_THAT(std::string(journal.status().message()),
              HasSubstr("at offset " + std::to_string(sizes[1]) + ": the record's MAC"));
}

TEST_F(TokenJournalTest, RemovingOrReorderingARecordIsDetected) {
  std::vector<uint64_t> sizes = WriteThree();
  const std::string good = ReadAll(path_);
  // Drop the middle record.
  WriteAll(path_, good.substr(0, sizes[1]) + good.substr(sizes[2]));
  std::vector<daemon::v1::TokenJournalRecord> records;
  std::string warning;
  EXPECT_TRUE(absl::IsFailedPrecondition(Open(&records, &warning).status()));
}

TEST_F(TokenJournalTest, ATornLastRecordIsReportedAndCut) {
  std::vector<uint64_t> sizes = WriteThree();
  const std::string good = ReadAll(path_);
  for (uint64_t cut = sizes[2] + 1; cut < sizes[3]; cut += 7) {
    WriteAll(path_, good.substr(0, cut));
    ::chmod(path_.c_str(), 0600);
    std::vector<daemon::v1::TokenJournalRecord> records;
    std::string warning;
    auto journal = Open(&records, &warning);
    ASSERT_TRUE(journal.ok()) << "cut at " << cut << ": " << journal.status();
    EXPECT_EQ(records.size(), 2u);
    EXPECT_THAT(warning, HasSubstr(path_));
    EXPECT_THAT(warning, HasSubstr("offset " + std::to_string(sizes[2])));
    EXPECT_THAT(warning, HasSubstr("torn"));
    EXPECT_EQ(ReadAll(path_).size(), sizes[2]);
    // The journal goes on from there.
    ASSERT_TRUE((*journal)->Append(Record("again", 1)).ok());
    records.clear();
    ASSERT_TRUE(Open(&records, &warning).ok());
    EXPECT_EQ(records.size(), 3u);
    EXPECT_EQ(warning, "");
  }
}

TEST_F(TokenJournalTest, AnotherSecretOrAShortHeaderIsRefused) {
  WriteThree();
  std::vector<daemon::v1::TokenJournalRecord> records;
  std::string warning;
  auto other = Open(&records, &warning, std::string(32, 'x'));
  EXPECT_TRUE(absl::IsFailedPrecondition(other.status()));
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("another token secret"));
  WriteAll(path_, "FFBTJ0");
  auto short_header = Open(&records, &warning);
  EXPECT_THAT(std::string(short_header.status().message()), HasSubstr("header"));
  ::chmod(path_.c_str(), 0644);
  EXPECT_TRUE(absl::IsFailedPrecondition(Open(&records, &warning).status()));
}

TEST_F(TokenJournalTest, RewriteReplacesTheFileWithASnapshot) {
  WriteThree();
  std::vector<daemon::v1::TokenJournalRecord> records;
  std::string warning;
  auto journal = Open(&records, &warning);
  ASSERT_TRUE(journal.ok());
  ASSERT_TRUE((*journal)->Rewrite({Record("only", 9)}).ok());
  ASSERT_TRUE((*journal)->Append(Record("next", 1)).ok());
  records.clear();
  ASSERT_TRUE(Open(&records, &warning).ok());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].tokens(0).token_id(), "only");
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp"));
}

// The state a journal keeps, through TokenAuthority: a new authority over
// the same file (a restarted daemon) sees revocations, quota use and owners.
TEST_F(TokenJournalTest, AuthorityStateSurvivesARestart) {
  Caller owner;
  owner.principal = "p";
  owner.identity = "uid:7";
  v1::TokenClaims claims;
  claims.set_principal("p");
  claims.set_owner(owner.identity);
  claims.set_call_quota(3);
  IssuedToken revoked, counted;
  {
    std::vector<daemon::v1::TokenJournalRecord> records;
    std::string warning;
    auto journal = Open(&records, &warning);
    ASSERT_TRUE(journal.ok());
    TokenAuthority authority(kSecret);
    ASSERT_TRUE(authority.UseJournal(std::move(*journal), records).ok());
    revoked = *authority.Issue(claims, absl::Seconds(600));
    counted = *authority.Issue(claims, absl::Seconds(600));
    ASSERT_TRUE(authority.Revoke(revoked.claims.token_id(), owner).ok());
    ASSERT_TRUE(authority.ConsumeCall(counted.claims).ok());
    ASSERT_TRUE(authority.ConsumeCall(counted.claims).ok());
  }
  std::vector<daemon::v1::TokenJournalRecord> records;
  std::string warning;
  auto journal = Open(&records, &warning);
  ASSERT_TRUE(journal.ok());
  TokenAuthority restarted(kSecret);
  ASSERT_TRUE(restarted.UseJournal(std::move(*journal), records).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(restarted.Verify(revoked.token, owner).status()));
  EXPECT_EQ(restarted.CallsRemaining(counted.claims), 1u);
  EXPECT_TRUE(restarted.ConsumeCall(counted.claims).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(restarted.ConsumeCall(counted.claims)));
  // The owner is known after the restart: another identity still cannot revoke.
  Caller other = owner;
  other.identity = "uid:8";
  EXPECT_TRUE(absl::IsNotFound(restarted.Revoke(counted.claims.token_id(), other)));
  EXPECT_TRUE(restarted.Revoke(counted.claims.token_id(), owner).ok());
}

}  // namespace
}  // namespace ffibroker
