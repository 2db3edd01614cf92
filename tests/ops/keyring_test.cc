// Several daemons (issue 14 item 7): two real ffibrokerd sharing one token
// keyring file accept each other's tokens; a rotation (SIGHUP) keeps old
// tokens valid and signs new ones with the new key; retiring a key makes its
// tokens fail with TOKEN_KEY_UNKNOWN; a daemon restarted after the
// rotations still reads its token journal.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kAdd[] = "i64 i64_plus_one(i64 v)";
const std::string kSecret1(64, '1');
const std::string kSecret2 = std::string(60, '2') + "abcd";

class KeyringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "/ffib-keyring-XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    keyring_ = dir_ + "/token.keyring";
    WriteKeyring(absl::StrCat("# one key\nk1 active ", kSecret1, "\n"));
    for (int i = 0; i < 2; ++i) {
      Start(i);
      if (HasFatalFailure()) return;
    }
  }
  void TearDown() override {
    for (int i = 0; i < 2; ++i) {
      sessions_[i].reset();  // before the client it uses, and the client before its daemon
      clients_[i].reset();
      daemons_[i].reset();
    }
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }

  void WriteKeyring(const std::string& text) {
    std::string tmp = keyring_ + ".tmp";
    { std::ofstream(tmp) << text; }
    ASSERT_EQ(::chmod(tmp.c_str(), 0600), 0);
    ASSERT_EQ(::rename(tmp.c_str(), keyring_.c_str()), 0);
  }

  // Daemon `i` (0 or 1) with the shared keyring and its own state dir.
  void Start(int i) {
    sessions_[i].reset();
    clients_[i].reset();
    daemons_[i].reset();
    auto daemon = TestDaemon::Start(absl::StrCat("token_keyring_file: \"", keyring_, "\"\n"),
                                    {absl::StrCat("--state-dir=", dir_, "/state", i)});
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemons_[i] = std::move(*daemon);
    auto client = daemons_[i]->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    clients_[i] = std::move(*client);
    auto session = clients_[i]->CreateSession();
    ASSERT_TRUE(session.ok()) << session.status();
    sessions_[i] = std::move(*session);
  }

  // SIGHUP to both daemons; waits until each has logged its `n`th keyring
  // reload (the log line names the key ids).
  void ReloadBoth(int n, const std::string& keys) {
    for (auto& d : daemons_) ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
    for (auto& d : daemons_) {
      const std::string needle = absl::StrCat("token keyring ", keyring_, " reloaded: keys ", keys);
      ASSERT_TRUE(Eventually([&] {
        std::string log = d->ReadLog();
        int seen = 0;
        for (size_t at = log.find(needle); at != std::string::npos;
             at = log.find(needle, at + 1)) {
          ++seen;
        }
        return seen >= n;
      })) << d->ReadLog();
    }
  }

  absl::Status OpenAndCall(int daemon, const std::string& token) {
    auto lib = sessions_[daemon]->OpenLibrary("scalars", {kAdd}, token);
    if (!lib.ok()) return lib.status();
    auto r = (*lib)->Call<int64_t>("i64_plus_one", int64_t{41});
    if (!r.ok()) return r.status();
    return *r == 42 ? absl::OkStatus() : absl::InternalError("wrong result");
  }

  std::string Grant(int daemon) {
    auto granted = sessions_[daemon]->GrantToken();
    EXPECT_TRUE(granted.ok()) << granted.status();
    return granted.ok() ? granted->token() : "";
  }

  std::string dir_, keyring_;
  std::unique_ptr<TestDaemon> daemons_[2];
  std::unique_ptr<Client> clients_[2];
  std::unique_ptr<Session> sessions_[2];
};

TEST_F(KeyringTest, TwoDaemonsAcceptEachOthersTokensThroughRotationUntilRetired) {
  // A token granted by daemon 0 opens a library on daemon 1, and the other
  // way round; exchanges work across daemons too.
  const std::string old_token = Grant(0);
  ASSERT_THAT(old_token, StartsWith("ffbt2.k1."));
  EXPECT_TRUE(OpenAndCall(1, old_token).ok()) << OpenAndCall(1, old_token);
  EXPECT_TRUE(OpenAndCall(0, Grant(1)).ok());
  v1::ExchangeTokenRequest exchange;
  exchange.set_token(old_token);
  auto exchanged = sessions_[1]->ExchangeToken(exchange);
  ASSERT_TRUE(exchanged.ok()) << exchanged.status();
  EXPECT_EQ(exchanged->claims().key_id(), "k1");
  EXPECT_TRUE(OpenAndCall(0, exchanged->token()).ok());

  // Rotation: k2 signs, k1 verifies.
  WriteKeyring(absl::StrCat("k2 active ", kSecret2, "\nk1 verify ", kSecret1, "\n"));
  ReloadBoth(1, "k2 (active), k1");
  EXPECT_TRUE(OpenAndCall(1, old_token).ok());
  EXPECT_TRUE(OpenAndCall(0, old_token).ok());
  auto inspected = sessions_[1]->InspectToken(old_token);
  ASSERT_TRUE(inspected.ok()) << inspected.status();
  EXPECT_EQ(inspected->claims().key_id(), "k1");
  const std::string new_token = Grant(1);
  ASSERT_THAT(new_token, StartsWith("ffbt2.k2."));
  EXPECT_TRUE(OpenAndCall(0, new_token).ok());

  // A broken keyring on SIGHUP: logged, the old keys stay.
  { std::ofstream(keyring_) << "k3 active 1234\n"; }
  for (auto& d : daemons_) ASSERT_EQ(::kill(d->pid(), SIGHUP), 0);
  for (auto& d : daemons_) {
    ASSERT_TRUE(Eventually([&] {
      return d->ReadLog().find("token keyring NOT reloaded") != std::string::npos;
    })) << d->ReadLog();
    EXPECT_THAT(d->ReadLog(), HasSubstr("line 1: key 'k3': the secret has 2 bytes"));
  }
  EXPECT_TRUE(OpenAndCall(1, old_token).ok());

  // Retirement: k1 removed. Its tokens (and those exchanged from them) fail
  // on both daemons, naming the key.
  WriteKeyring(absl::StrCat("k2 active ", kSecret2, "\n"));
  ReloadBoth(2, "k2 (active)");
  for (int i = 0; i < 2; ++i) {
    for (const std::string& token : {old_token, exchanged->token()}) {
      absl::Status retired = OpenAndCall(i, token);
      EXPECT_EQ(retired.code(), absl::StatusCode::kUnauthenticated) << retired;
      EXPECT_EQ(ErrorReason(retired), "TOKEN_KEY_UNKNOWN") << retired;
      EXPECT_THAT(std::string(retired.message()),
                  HasSubstr("signed with key 'k1', which is not in this daemon's token keyring"));
    }
    EXPECT_TRUE(OpenAndCall(i, new_token).ok());
  }

  // The journal followed the active key: a restart with only k2 reads it.
  Start(0);
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_TRUE(OpenAndCall(0, new_token).ok());
  EXPECT_EQ(OpenAndCall(0, old_token).code(), absl::StatusCode::kUnauthenticated);

  EXPECT_THAT(daemons_[0]->ReadLog(), HasSubstr("token keys: k2 (active) (from token keyring"));
  // No secret reaches a log.
  for (auto& d : daemons_) {
    EXPECT_THAT(d->ReadLog(), Not(HasSubstr(kSecret1.substr(0, 16))));
    EXPECT_THAT(d->ReadLog(), Not(HasSubstr(kSecret2.substr(0, 16))));
  }
}

TEST_F(KeyringTest, ThePolicyMayNotNameBothASecretFileAndAKeyring) {
  auto both = TestDaemon::Start(absl::StrCat("token_keyring_file: \"", keyring_,
                                             "\"\ntoken_secret_file: \"", keyring_, "\"\n"),
                                {absl::StrCat("--state-dir=", dir_, "/state9")});
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(std::string(both.status().message()), HasSubstr("token_secret_file is set too"));
}

}  // namespace
}  // namespace ffibroker::testing
