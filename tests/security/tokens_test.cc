// Regression tests for issue 9's token findings, against the real daemon:
//   5  one call quota per exchange tree;
//   6  tokens bound to their audience, never on the CLI's command line;
//   9  revocations and quota use survive kill -9; a damaged journal is
//      reported;
//   15 token ownership by authenticated identity, not by shared principal.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAdd[] = "i64 i64_plus_one(i64 v)";
constexpr char kOtherKey[] = "k-other-principal-key-0123456789";
constexpr char kSecondKey[] = "k-second-local-identity-98765";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A private temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string templ = ::testing::TempDir() + "/ffib-tokens-XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path_ = templ;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<Client> ConnectWithKey(const TestDaemon& daemon, const std::string& key) {
  ConnectOptions options;
  options.api_key = key;
  auto client = Client::Connect(daemon.address(), options, absl::Seconds(10));
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

std::unique_ptr<Session> NewSession(Client& client) {
  auto session = client.CreateSession();
  EXPECT_TRUE(session.ok()) << session.status();
  return session.ok() ? std::move(*session) : nullptr;
}

// Calls i64_plus_one through `lib` until a call fails; returns how many worked.
int CallsUntilRefused(Library& lib, absl::Status* last) {
  int calls = 0;
  while (true) {
    auto r = lib.Call<int64_t>("i64_plus_one", int64_t{1});
    if (!r.ok()) {
      *last = r.status();
      return calls;
    }
    if (++calls > 100) return calls;
  }
}

// ---- finding 5 ----

TEST(TokenQuotaTreeTest, FiveChildrenOfAQuotaOfTwoGetTwoCallsInAll) {
  auto daemon = TestDaemon::Start();
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok());
  auto session = NewSession(**client);
  ASSERT_NE(session, nullptr);
  v1::GrantTokenRequest scope;
  scope.add_libraries()->set_library("scalars");
  scope.set_call_quota(2);
  auto parent = session->GrantToken(scope);
  ASSERT_TRUE(parent.ok()) << parent.status();
  int calls = 0;
  absl::Status last;
  for (int i = 0; i < 5; ++i) {
    v1::ExchangeTokenRequest exchange;
    exchange.set_token(parent->token());
    exchange.set_call_quota(2);  // each child as much as the parent (issue 9: 10 calls)
    auto child = session->ExchangeToken(exchange);
    ASSERT_TRUE(child.ok()) << child.status();
    EXPECT_EQ(child->claims().ancestor_ids(0), parent->claims().token_id());
    auto lib = session->OpenLibrary("scalars", {kAdd}, child->token());
    ASSERT_TRUE(lib.ok()) << lib.status();
    calls += CallsUntilRefused(**lib, &last);
  }
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(absl::IsResourceExhausted(last)) << last;
  EXPECT_THAT(std::string(last.message()), HasSubstr(parent->claims().token_id()));
  // The parent itself has nothing left either.
  auto inspected = session->InspectToken(parent->token());
  ASSERT_TRUE(inspected.ok()) << inspected.status();
  EXPECT_EQ(inspected->calls_remaining(), 0u);
}

// ---- finding 6 ----

class TokenAudienceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto daemon = TestDaemon::Start(absl::StrCat(
        "principals { name: \"other\" api_keys { id: \"other-key\" sha256: \"",
        Sha256Hex(kOtherKey), "\" } }\n"));
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
    auto client = daemon_->Connect();
    ASSERT_TRUE(client.ok());
    owner_client_ = std::move(*client);
    other_client_ = ConnectWithKey(*daemon_, kOtherKey);
    ASSERT_NE(other_client_, nullptr);
    owner_ = NewSession(*owner_client_);
    other_ = NewSession(*other_client_);
    ASSERT_NE(owner_, nullptr);
    ASSERT_NE(other_, nullptr);
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<Client> owner_client_, other_client_;
  std::unique_ptr<Session> owner_, other_;
};

TEST_F(TokenAudienceTest, AnotherPrincipalCannotUseAStolenToken) {
  v1::GrantTokenRequest scope;
  v1::GrantTokenLibrary* lib = scope.add_libraries();
  lib->set_library("scalars");
  lib->add_symbols("i64_plus_one");
  auto granted = owner_->GrantToken(scope);
  ASSERT_TRUE(granted.ok()) << granted.status();
  auto open = other_->OpenLibrary("scalars", {kAdd}, granted->token());
  ASSERT_EQ(open.status().code(), absl::StatusCode::kPermissionDenied) << open.status();
  // The refusal says nothing of what the token grants or whose it is.
  for (const absl::Status& status :
       {open.status(), other_->InspectToken(granted->token()).status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
    std::string message(status.message());
    EXPECT_THAT(message, HasSubstr("not granted to principal 'other'"));
    for (const std::string& secret : {std::string("i64_plus_one"), std::string("test-user"),
                                      std::string("uid:"), granted->claims().token_id()}) {
      EXPECT_THAT(message, Not(HasSubstr(secret))) << message;
    }
  }
  v1::ExchangeTokenRequest exchange;
  exchange.set_token(granted->token());
  EXPECT_EQ(other_->ExchangeToken(exchange).status().code(),
            absl::StatusCode::kPermissionDenied);
  // Revoked or not, the answer to an outsider is the same.
  ASSERT_TRUE(owner_->RevokeToken(granted->claims().token_id()).ok());
  auto after = other_->OpenLibrary("scalars", {kAdd}, granted->token());
  EXPECT_EQ(after.status().message(), open.status().message());
}

TEST_F(TokenAudienceTest, AnAudienceNamesWhoMayUseItAndExchangesOnlyNarrowIt) {
  v1::GrantTokenRequest scope;
  scope.add_libraries()->set_library("scalars");
  scope.add_audience("other");
  auto granted = owner_->GrantToken(scope);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->claims().audience(0), "other");
  auto lib = other_->OpenLibrary("scalars", {kAdd}, granted->token());
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_EQ(*(*lib)->Call<int64_t>("i64_plus_one", int64_t{41}), 42);
  EXPECT_TRUE(other_->InspectToken(granted->token()).ok());
  // An exchange cannot add a principal to the audience.
  v1::ExchangeTokenRequest widen;
  widen.set_token(granted->token());
  widen.add_audience("test-user");
  auto widened = other_->ExchangeToken(widen);
  EXPECT_EQ(widened.status().code(), absl::StatusCode::kPermissionDenied) << widened.status();
  EXPECT_THAT(std::string(widened.status().message()), HasSubstr("audience"));
  v1::ExchangeTokenRequest keep;
  keep.set_token(granted->token());
  auto child = other_->ExchangeToken(keep);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(child->claims().audience_size(), 1);
  EXPECT_EQ(child->claims().audience(0), "other");
  // An unknown principal is a mistake, not a silent no-op.
  v1::GrantTokenRequest typo;
  typo.add_audience("nobody-by-that-name");
  EXPECT_EQ(owner_->GrantToken(typo).status().code(), absl::StatusCode::kInvalidArgument);
}

// Runs the CLI with stdin from `stdin_path` and `env` added to the
// environment.
CliResult RunCliWith(const std::vector<std::string>& args, const std::string& stdin_path,
                     const std::vector<std::string>& env) {
  TempDir dir;
  std::vector<std::string> full = {FFIBROKER_CLI_PATH};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("FFIBROKER_TOKEN=", 0) != 0) env_strings.push_back(*e);
  }
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, (dir.path() + "/out").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, (dir.path() + "/err").c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  CliResult result;
  if (::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data()) == 0) {
    int status = 0;
    if (::waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    }
  }
  posix_spawn_file_actions_destroy(&actions);
  result.out = ReadFile(dir.path() + "/out");
  result.err = ReadFile(dir.path() + "/err");
  return result;
}

TEST(TokenCliTest, RefusesTokensOnTheCommandLineAndReadsFileEnvAndStdin) {
  auto daemon = TestDaemon::Start();
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  std::string address = "--address=" + (*daemon)->address();
  CliResult grant = RunCli({address, "token", "grant", "scalars:i64_plus_one"});
  ASSERT_EQ(grant.exit_code, 0) << grant.err;
  std::string token(absl::StripAsciiWhitespace(grant.out));
  TempDir dir;
  std::string token_file = dir.path() + "/token";
  std::ofstream(token_file) << token << "\n";
  ASSERT_EQ(::chmod(token_file.c_str(), 0600), 0);

  for (const std::vector<std::string>& args :
       {std::vector<std::string>{address, "--token=" + token, "call", "scalars", kAdd, "1"},
        std::vector<std::string>{address, "--token", token, "call", "scalars", kAdd, "1"},
        std::vector<std::string>{address, "--token=", "call", "scalars", kAdd, "1"}}) {
    CliResult refused = RunCli(args);
    EXPECT_EQ(refused.exit_code, 2) << refused.err;
    EXPECT_THAT(refused.err, HasSubstr("token on the command line is refused"));
    EXPECT_THAT(refused.err, HasSubstr("/proc/PID/cmdline"));
    EXPECT_THAT(refused.err, HasSubstr("--token-file=PATH"));
    EXPECT_THAT(refused.err, HasSubstr("FFIBROKER_TOKEN"));
    EXPECT_THAT(refused.err, Not(HasSubstr(token)));
    EXPECT_EQ(refused.out, "");
  }
  CliResult positional = RunCli({address, "token", "inspect", token});
  EXPECT_EQ(positional.exit_code, 2) << positional.err;

  CliResult from_file = RunCli({address, "--token-file=" + token_file, "call", "scalars", kAdd, "41"});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(from_file.out, "42\n");
  CliResult from_env =
      RunCliWith({address, "call", "scalars", kAdd, "1"}, "/dev/null", {"FFIBROKER_TOKEN=" + token});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_EQ(from_env.out, "2\n");
  CliResult from_stdin =
      RunCliWith({address, "--token-file=-", "token", "inspect"}, token_file, {});
  EXPECT_EQ(from_stdin.exit_code, 0) << from_stdin.err;
  EXPECT_THAT(from_stdin.out, HasSubstr("i64_plus_one"));
  // A wrong token from the environment is the daemon's refusal, not a usage error.
  CliResult bad_env = RunCliWith({address, "call", "scalars", kAdd, "1"}, "/dev/null",
                                 {"FFIBROKER_TOKEN=ffbt1.AAAA"});
  EXPECT_EQ(bad_env.exit_code, 1) << bad_env.err;
  CliResult missing = RunCli({address, "--token-file=" + dir.path() + "/none", "call",
                              "scalars", kAdd, "1"});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_THAT(missing.err, HasSubstr(dir.path() + "/none"));
}

// ---- finding 9 ----

class TokenJournalRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    secret_ = dir_.path() + "/token.key";
    std::ofstream(secret_) << std::string(48, 'q');
    ASSERT_EQ(::chmod(secret_.c_str(), 0600), 0);
    state_ = dir_.path() + "/state";
    journal_ = state_ + "/tokens.journal";
  }
  absl::StatusOr<std::unique_ptr<TestDaemon>> StartDaemon() {
    return TestDaemon::Start(absl::StrCat("token_secret_file: \"", secret_, "\"\n"),
                             {"--state-dir=" + state_});
  }

  TempDir dir_;
  std::string secret_, state_, journal_;
};

TEST_F(TokenJournalRestartTest, RevocationsAndQuotaUseSurviveKill9) {
  std::string revoked_token, counted_token;
  {
    auto daemon = StartDaemon();
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto client = (*daemon)->Connect();
    ASSERT_TRUE(client.ok());
    auto session = NewSession(**client);
    ASSERT_NE(session, nullptr);
    auto revoked = session->GrantToken();
    ASSERT_TRUE(revoked.ok()) << revoked.status();
    revoked_token = revoked->token();
    ASSERT_TRUE(session->RevokeToken(revoked->claims().token_id()).ok());
    v1::GrantTokenRequest scope;
    scope.set_call_quota(3);
    auto counted = session->GrantToken(scope);
    ASSERT_TRUE(counted.ok());
    counted_token = counted->token();
    auto lib = session->OpenLibrary("scalars", {kAdd}, counted_token);
    ASSERT_TRUE(lib.ok()) << lib.status();
    ASSERT_TRUE((*lib)->Call<int64_t>("i64_plus_one", int64_t{1}).ok());
    ASSERT_TRUE((*lib)->Call<int64_t>("i64_plus_one", int64_t{1}).ok());
    // No graceful stop: whatever was answered must already be on disk.
    ASSERT_EQ(::kill((*daemon)->pid(), SIGKILL), 0);
    int status = (*daemon)->Stop();
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  }
  auto daemon = StartDaemon();
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok());
  auto session = NewSession(**client);
  ASSERT_NE(session, nullptr);
  auto still_revoked = session->OpenLibrary("scalars", {kAdd}, revoked_token);
  EXPECT_EQ(still_revoked.status().code(), absl::StatusCode::kPermissionDenied)
      << still_revoked.status();
  EXPECT_THAT(std::string(still_revoked.status().message()), HasSubstr("revoked"));
  auto inspected = session->InspectToken(counted_token);
  ASSERT_TRUE(inspected.ok()) << inspected.status();
  EXPECT_EQ(inspected->calls_remaining(), 1u);
  auto lib = session->OpenLibrary("scalars", {kAdd}, counted_token);
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status last;
  EXPECT_EQ(CallsUntilRefused(**lib, &last), 1);
  EXPECT_TRUE(absl::IsResourceExhausted(last)) << last;
}

TEST_F(TokenJournalRestartTest, ADamagedJournalStopsTheDaemonAndATornOneIsReported) {
  {
    auto daemon = StartDaemon();
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    auto client = (*daemon)->Connect();
    ASSERT_TRUE(client.ok());
    auto session = NewSession(**client);
    ASSERT_NE(session, nullptr);
    for (int i = 0; i < 3; ++i) {
      auto granted = session->GrantToken();
      ASSERT_TRUE(granted.ok());
      ASSERT_TRUE(session->RevokeToken(granted->claims().token_id()).ok());
    }
  }
  const std::string good = ReadFile(journal_);
  ASSERT_GT(good.size(), 200u);
  // One flipped byte inside the last record's payload.
  std::string bad = good;
  bad[bad.size() - 40] ^= 0x01;
  std::ofstream(journal_, std::ios::binary | std::ios::trunc) << bad;
  auto refused = StartDaemon();
  ASSERT_FALSE(refused.ok()) << "the daemon started on a damaged journal";
  std::string message(refused.status().message());
  EXPECT_THAT(message, HasSubstr(absl::StrCat("token journal ", journal_, " is damaged at offset ")));
  EXPECT_THAT(message, HasSubstr("MAC does not match"));
  EXPECT_EQ(ReadFile(journal_), bad);  // left as it was, for the operator

  // A record cut short by a crash is reported and dropped, and the daemon runs.
  std::ofstream(journal_, std::ios::binary | std::ios::trunc) << good.substr(0, good.size() - 10);
  auto repaired = StartDaemon();
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_THAT((*repaired)->ReadLog(), HasSubstr("is torn"));
  EXPECT_THAT((*repaired)->ReadLog(), HasSubstr(journal_));
}

// ---- finding 15 ----

TEST(TokenOwnershipTest, IdentitiesSharingAPrincipalCannotRevokeOrInspectEachOthersTokens) {
  auto daemon = TestDaemon::StartWithPolicy(absl::StrCat(
      TestDaemon::Catalogue(),
      "principals { name: \"local-users\" any_local_user: true api_keys { id: \"second\" "
      "sha256: \"", Sha256Hex(kSecondKey), "\" } permission { libraries { library: \"scalars\" } } }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto first_client = (*daemon)->Connect();
  ASSERT_TRUE(first_client.ok());
  auto second_client = ConnectWithKey(**daemon, kSecondKey);
  ASSERT_NE(second_client, nullptr);
  auto first_who = (*first_client)->Whoami();
  auto second_who = second_client->Whoami();
  ASSERT_TRUE(first_who.ok() && second_who.ok());
  ASSERT_EQ(first_who->principal(), second_who->principal());  // one principal
  auto first = NewSession(**first_client);
  auto second = NewSession(*second_client);
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);

  auto firsts = first->GrantToken();
  auto seconds = second->GrantToken();
  ASSERT_TRUE(firsts.ok() && seconds.ok());
  EXPECT_EQ(firsts->claims().owner(), absl::StrCat("uid:", ::getuid()));
  EXPECT_EQ(seconds->claims().owner(), "key:" + Sha256Hex(kSecondKey).substr(0, 16));
  for (auto [session, other] : {std::pair{first.get(), &*seconds}, std::pair{second.get(), &*firsts}}) {
    absl::Status revoke = session->RevokeToken(other->claims().token_id());
    EXPECT_EQ(revoke.code(), absl::StatusCode::kNotFound) << revoke;
    // Indistinguishable from an id that was never issued.
    absl::Status never = session->RevokeToken(std::string(32, '0'));
    EXPECT_EQ(never.code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(session->InspectToken(other->token()).status().code(),
              absl::StatusCode::kPermissionDenied);
  }
  // Nothing was revoked; each owner still can.
  EXPECT_TRUE(first->InspectToken(firsts->token()).ok());
  EXPECT_TRUE(second->InspectToken(seconds->token()).ok());
  EXPECT_TRUE(first->RevokeToken(firsts->claims().token_id()).ok());
  EXPECT_TRUE(second->RevokeToken(seconds->claims().token_id()).ok());
  EXPECT_THAT((*daemon)->ReadLog(), Not(HasSubstr(kSecondKey)));
}

}  // namespace
}  // namespace ffibroker::testing
