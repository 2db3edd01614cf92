// End-to-end tests of session permissions and capability tokens (issue 4),
// against the real daemon and workers. Who is let in at all (principals,
// API keys, mTLS, policy checks): principal_test.cc.
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAdd[] = "i64 i64_plus_one(i64 v)";
constexpr char kNeg[] = "i8 neg_i8(i8 v)";
constexpr char kCos[] = "f64 cos(f64 x)";

bool IsAuthFailure(const absl::Status& s) {
  return absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s);
}

// Waits until `predicate(log)` holds or 5 s pass.
bool WaitForLog(const TestDaemon& daemon, const std::string& needle) {
  absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (absl::Now() < give_up) {
    if (daemon.ReadLog().find(needle) != std::string::npos) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override { StartDaemon(""); }

  void StartDaemon(const std::string& extra) {
    client_.reset();
    daemon_.reset();
    auto daemon = TestDaemon::Start(extra);
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
    auto client = daemon_->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  std::unique_ptr<Session> NewSession() {
    auto session = client_->CreateSession();
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? std::move(*session) : nullptr;
  }

  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<Client> client_;
};

// The scenario of the "FFI tokens" proposal, step by step.
TEST_F(TokenTest, SeedScenario) {
  auto host = NewSession();
  ASSERT_NE(host, nullptr);
  // 1. Open a library with the session's permission.
  auto scalars = host->OpenLibrary("scalars", {kAdd});
  ASSERT_TRUE(scalars.ok()) << scalars.status();
  // 2. Grant a token: scalars, only i64_plus_one.
  v1::GrantTokenRequest scope;
  v1::GrantTokenLibrary* lib = scope.add_libraries();
  lib->set_library("scalars");
  lib->add_symbols("i64_plus_one");
  auto granted = host->GrantToken(scope);
  ASSERT_TRUE(granted.ok()) << granted.status();
  const std::string token = granted->token();
  EXPECT_EQ(granted->claims().principal(), "test-user");
  // 3. Revoke the session's permission.
  ASSERT_TRUE(host->RevokePermissions().ok());
  // 4. Calls into the already-open library still work.
  auto r = (*scalars)->Call<int64_t>("i64_plus_one", int64_t{41});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 42);
  // 5. Opening a library without a token fails.
  auto denied = host->OpenLibrary("scalars", {kAdd});
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied) << denied.status();
  EXPECT_THAT(std::string(denied.status().message()), HasSubstr("revoked"));
  // 6. With the token it works.
  auto via_token = host->OpenLibrary("scalars", {kAdd}, token);
  ASSERT_TRUE(via_token.ok()) << via_token.status();
  auto r2 = (*via_token)->Call<int64_t>("i64_plus_one", int64_t{1});
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(*r2, 2);
  // 7. A library or symbol outside the snapshot fails.
  auto other_lib = host->OpenLibrary("libm.so.6", {kCos}, token);
  EXPECT_EQ(other_lib.status().code(), absl::StatusCode::kPermissionDenied);
  auto other_sym = host->OpenLibrary("scalars", {kNeg}, token);
  EXPECT_EQ(other_sym.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(other_sym.status().message()), HasSubstr("neg_i8"));
  // 8. After RevokeToken the token fails, at once, also for its handles.
  ASSERT_TRUE(host->RevokeToken(granted->claims().token_id()).ok());
  auto after = host->OpenLibrary("scalars", {kAdd}, token);
  EXPECT_EQ(after.status().code(), absl::StatusCode::kPermissionDenied) << after.status();
  auto call_after = (*via_token)->Call<int64_t>("i64_plus_one", int64_t{1});
  EXPECT_EQ(call_after.status().code(), absl::StatusCode::kPermissionDenied);
  // The library opened with the session's own permission is unaffected.
  EXPECT_TRUE((*scalars)->Call<int64_t>("i64_plus_one", int64_t{0}).ok());
  // The token never reaches the log.
  EXPECT_THAT(daemon_->ReadLog(), Not(HasSubstr(token.substr(token.rfind('.') + 1, 40))));
}

TEST_F(TokenTest, EverySingleBitFlipIsRejected) {
  auto session = NewSession();
  auto granted = session->GrantToken();
  ASSERT_TRUE(granted.ok()) << granted.status();
  const std::string token = granted->token();
  ASSERT_TRUE(session->InspectToken(token).ok());
  // "ffbt2.KEY_ID." then the base64url body.
  const std::string prefix = token.substr(0, token.rfind('.') + 1);
  const std::string body = token.substr(prefix.size());
  std::string raw;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(body, &raw));
  int rejected = 0;
  // Flips in the decoded bytes (re-encoded: what an attacker would forge).
  for (size_t i = 0; i < raw.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string forged = raw;
      forged[i] = static_cast<char>(forged[i] ^ (1 << bit));
      auto r = session->InspectToken(prefix + absl::WebSafeBase64Escape(forged));
      ASSERT_TRUE(IsAuthFailure(r.status())) << "byte " << i << " bit " << bit << ": "
                                             << r.status();
      ++rejected;
    }
  }
  // Flips in the characters of the string itself (bits 0..6: a set bit 7
  // is not UTF-8, which a proto string cannot carry).
  for (size_t i = 0; i < token.size(); ++i) {
    for (int bit = 0; bit < 7; ++bit) {
      std::string forged = token;
      forged[i] = static_cast<char>(forged[i] ^ (1 << bit));
      if (forged[i] == '\0') continue;  // not representable in the request
      auto r = session->InspectToken(forged);
      ASSERT_TRUE(IsAuthFailure(r.status())) << "char " << i << " bit " << bit;
      ++rejected;
    }
  }
  // Truncations.
  for (size_t n = 0; n < token.size(); ++n) {
    auto r = session->InspectToken(token.substr(0, n));
    ASSERT_TRUE(IsAuthFailure(r.status())) << "length " << n;
  }
  // Opening with a forged token fails the same way.
  std::string forged = raw;
  forged[raw.size() / 2] ^= 1;
  auto open = session->OpenLibrary("scalars", {kAdd},
                                   prefix + absl::WebSafeBase64Escape(forged));
  EXPECT_TRUE(IsAuthFailure(open.status())) << open.status();
  EXPECT_GT(rejected, 1000);
  // No message or log line carries the token.
  EXPECT_THAT(daemon_->ReadLog(), Not(HasSubstr(body.substr(0, 40))));
}

TEST_F(TokenTest, TokenFromAnotherDaemonExpiredAndRevokedAreRejected) {
  auto session = NewSession();
  auto other = TestDaemon::Start();
  ASSERT_TRUE(other.ok()) << other.status();
  auto other_client = (*other)->Connect();
  ASSERT_TRUE(other_client.ok());
  auto other_session = (*other_client)->CreateSession();
  ASSERT_TRUE(other_session.ok());
  auto foreign = (*other_session)->GrantToken();
  ASSERT_TRUE(foreign.ok());
  auto r = session->OpenLibrary("scalars", {kAdd}, foreign->token());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << r.status();

  v1::GrantTokenRequest short_lived;
  short_lived.set_ttl_seconds(1);
  auto expiring = session->GrantToken(short_lived);
  ASSERT_TRUE(expiring.ok());
  ASSERT_TRUE(session->InspectToken(expiring->token()).ok());
  absl::SleepFor(absl::Milliseconds(2100));
  auto expired = session->OpenLibrary("scalars", {kAdd}, expiring->token());
  EXPECT_EQ(expired.status().code(), absl::StatusCode::kUnauthenticated) << expired.status();
  EXPECT_THAT(std::string(expired.status().message()), HasSubstr("expired"));

  auto revoked = session->GrantToken();
  ASSERT_TRUE(revoked.ok());
  ASSERT_TRUE(session->RevokeToken(revoked->claims().token_id()).ok());
  EXPECT_EQ(session->InspectToken(revoked->token()).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TokenTest, TokensOutliveSessionRevocationAndReload) {
  auto session = NewSession();
  auto granted = session->GrantToken();
  ASSERT_TRUE(granted.ok());
  // A new policy that takes every library away from the test user.
  std::ofstream(daemon_->policy_path())
      << TestDaemon::Catalogue() << "principals { name: \"test-user\" uids: " << ::getuid()
      << " }\n";
  ::kill(daemon_->pid(), SIGHUP);
  ASSERT_TRUE(WaitForLog(*daemon_, "reloaded"));
  // New sessions get the new (empty) permission; the old one keeps its snapshot.
  auto fresh = NewSession();
  EXPECT_EQ(fresh->OpenLibrary("scalars", {kAdd}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(session->OpenLibrary("scalars", {kAdd}).ok());
  // The token still carries what it was granted.
  EXPECT_TRUE(fresh->OpenLibrary("libm.so.6", {kCos}, granted->token()).ok());

  // A broken policy is refused and the one in force stays.
  std::ofstream(daemon_->policy_path()) << "principals { name: \"x\" uids: nope }\n";
  ::kill(daemon_->pid(), SIGHUP);
  ASSERT_TRUE(WaitForLog(*daemon_, "NOT reloaded"));
  EXPECT_THAT(daemon_->ReadLog(), HasSubstr("policy.textproto:1:"));
  auto still = NewSession();
  ASSERT_NE(still, nullptr);
  EXPECT_EQ(still->OpenLibrary("scalars", {kAdd}).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TokenTest, ExchangeNarrowsAndNeverWidens) {
  auto session = NewSession();
  v1::GrantTokenRequest scope;
  scope.add_libraries()->set_library("scalars");
  scope.set_call_quota(5);
  auto parent = session->GrantToken(scope);
  ASSERT_TRUE(parent.ok()) << parent.status();

  v1::ExchangeTokenRequest wider;
  wider.set_token(parent->token());
  wider.add_libraries()->set_library("libm.so.6");
  EXPECT_EQ(session->ExchangeToken(wider).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::ExchangeTokenRequest more_calls;
  more_calls.set_token(parent->token());
  more_calls.set_call_quota(6);
  EXPECT_EQ(session->ExchangeToken(more_calls).status().code(),
            absl::StatusCode::kPermissionDenied);
  v1::ExchangeTokenRequest longer;
  longer.set_token(parent->token());
  longer.set_ttl_seconds(7200);
  EXPECT_EQ(session->ExchangeToken(longer).status().code(),
            absl::StatusCode::kPermissionDenied);

  v1::ExchangeTokenRequest narrower;
  narrower.set_token(parent->token());
  v1::GrantTokenLibrary* lib = narrower.add_libraries();
  lib->set_library("scalars");
  lib->add_symbols("i64_plus_one");
  narrower.add_operations(v1::OPEN_LIBRARY);
  narrower.set_call_quota(2);
  auto child = session->ExchangeToken(narrower);
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_EQ(child->claims().ancestor_ids(0), parent->claims().token_id());
  // The child cannot be exchanged (no GRANT_TOKEN) and allows one symbol.
  v1::ExchangeTokenRequest again;
  again.set_token(child->token());
  EXPECT_EQ(session->ExchangeToken(again).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(session->OpenLibrary("scalars", {kNeg}, child->token()).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto lib_handle = session->OpenLibrary("scalars", {kAdd}, child->token());
  ASSERT_TRUE(lib_handle.ok()) << lib_handle.status();
  // Quota of 2 calls.
  EXPECT_TRUE((*lib_handle)->Call<int64_t>("i64_plus_one", int64_t{1}).ok());
  EXPECT_TRUE((*lib_handle)->Call<int64_t>("i64_plus_one", int64_t{1}).ok());
  EXPECT_EQ((*lib_handle)->Call<int64_t>("i64_plus_one", int64_t{1}).status().code(),
            absl::StatusCode::kResourceExhausted);
  // Revoking the parent revokes the child.
  ASSERT_TRUE(session->RevokeToken(parent->claims().token_id()).ok());
  EXPECT_EQ(session->InspectToken(child->token()).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(TokenTest, HandlesAndSessionsAreBoundToTheirOwners) {
  auto a = NewSession();
  auto b = NewSession();
  auto lib = a->OpenLibrary("scalars", {kAdd});
  ASSERT_TRUE(lib.ok());
  v1::CallRequest request;
  request.set_session_id(b->id());
  request.set_library_handle((*lib)->handle());
  request.set_symbol("i64_plus_one");
  request.add_args()->set_int_value(1);
  v1::CallResponse response;
  grpc::ClientContext context;
  grpc::Status status = client_->stub()->Call(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  // Granting narrower than the permission allows nothing wider.
  v1::GrantTokenRequest scope;
  scope.add_libraries()->set_library("/etc/hostname");
  EXPECT_EQ(a->GrantToken(scope).status().code(), absl::StatusCode::kPermissionDenied);
  // Path tricks resolve to the same canonical path or fail.
  // ".../tests/libffib_scalars.so" as ".../tests/../tests/libffib_scalars.so".
  std::string path = FFIBROKER_SCALARS_LIB;
  std::string dir = path.substr(0, path.rfind('/'));
  std::string dotted = absl::StrCat(dir, "/../", dir.substr(dir.rfind('/') + 1),
                                    path.substr(path.rfind('/')));
  auto via_dots = a->OpenLibrary(dotted, {kAdd});
  ASSERT_TRUE(via_dots.ok()) << dotted << ": " << via_dots.status();
  EXPECT_EQ((*via_dots)->resolved_path(), path);
  EXPECT_EQ(a->OpenLibrary("/etc/../etc/hostname", {kAdd}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(a->OpenLibrary("lib/x.so", {kAdd}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(TokenTest, AuditLogHasOneLinePerEventAndNoSecrets) {
  auto session = NewSession();
  ASSERT_TRUE(session->OpenLibrary("scalars", {kAdd}).ok());
  EXPECT_FALSE(session->OpenLibrary("/etc/hostname", {kAdd}).ok());
  auto granted = session->GrantToken();
  ASSERT_TRUE(granted.ok());
  ASSERT_TRUE(session->RevokeToken(granted->claims().token_id()).ok());
  ASSERT_TRUE(session->RevokePermissions().ok());
  ::kill(daemon_->pid(), SIGHUP);
  ASSERT_TRUE(WaitForLog(*daemon_, "\"event\":\"reload_policy\""));
  std::string log = daemon_->ReadLog();
  const std::string id = granted->claims().token_id();
  for (const char* event : {"create_session", "open_library", "deny_open_library",
                            "grant_token", "revoke_token", "revoke_permissions"}) {
    EXPECT_THAT(log, HasSubstr(absl::StrCat("\"event\":\"", event, "\""))) << event;
  }
  EXPECT_THAT(log, HasSubstr(absl::StrCat("\"event\":\"grant_token\",\"principal\":\"test-user\",\"session\":\"s1\",\"token_id\":\"", id, "\"")));
  EXPECT_THAT(log, Not(HasSubstr("\"event\":\"call\"")));  // not asked for
  EXPECT_THAT(log, Not(HasSubstr(granted->token().substr(granted->token().rfind('.') + 1, 40))));
  EXPECT_THAT(log, Not(HasSubstr(session->id())));
}

// A token pasted where its id belongs is a secret in the wrong place: it
// is refused without being looked up, echoed or written to the log, and a
// huge id leaves neither a huge answer nor a huge log line.
TEST_F(TokenTest, ATokenGivenAsAnIdIsNeitherEchoedNorLogged) {
  auto session = NewSession();
  ASSERT_NE(session, nullptr);
  auto granted = session->GrantToken();
  ASSERT_TRUE(granted.ok()) << granted.status();
  const std::string& token = granted->token();
  const std::string secret = token.substr(token.rfind('.') + 1, 40);
  absl::Status as_id = session->RevokeToken(token);
  EXPECT_EQ(as_id.code(), absl::StatusCode::kInvalidArgument) << as_id;
  EXPECT_THAT(std::string(as_id.message()), HasSubstr("not a token id"));
  EXPECT_THAT(std::string(as_id.message()), Not(HasSubstr(secret)));
  absl::Status huge = session->RevokeToken(std::string(8 << 20, 'a'));
  EXPECT_EQ(huge.code(), absl::StatusCode::kInvalidArgument) << huge.code();
  EXPECT_LT(huge.message().size(), 1024u);
  // Still valid: the mistake revoked nothing.
  EXPECT_TRUE(session->InspectToken(token).ok());
  ASSERT_TRUE(WaitForLog(*daemon_, "\"event\":\"deny_revoke_token\""));
  const std::string log = daemon_->ReadLog();
  EXPECT_THAT(log, Not(HasSubstr(secret)));
  EXPECT_LT(log.size(), size_t{1} << 20);
}

TEST_F(TokenTest, CliGrantInspectRevokeAndCallWithToken) {
  std::string address = "--address=" + daemon_->address();
  CliResult grant = RunCli({address, "token", "grant", "scalars:i64_plus_one",
                            "ttl=10m", "quota=3"});
  ASSERT_EQ(grant.exit_code, 0) << grant.err;
  std::string token(absl::StripAsciiWhitespace(grant.out));
  ASSERT_THAT(token, ::testing::StartsWith("ffbt2.secret-"));
  ASSERT_THAT(grant.err, HasSubstr("token id "));
  std::string id = grant.err.substr(grant.err.find("token id ") + 9, 32);
  // Tokens travel in files (or FFIBROKER_TOKEN), never on the command line.
  std::string token_file = daemon_->dir() + "/token";
  std::ofstream(token_file) << token << "\n";
  ::chmod(token_file.c_str(), 0600);
  const std::string from_file = "--token-file=" + token_file;

  CliResult inspect = RunCli({address, from_file, "token", "inspect"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  EXPECT_THAT(inspect.out, HasSubstr(id));
  EXPECT_THAT(inspect.out, HasSubstr("call_quota: 3"));
  EXPECT_THAT(inspect.out, HasSubstr("i64_plus_one"));

  CliResult call = RunCli({address, from_file, "call", "scalars", kAdd, "41"});
  EXPECT_EQ(call.exit_code, 0) << call.err;
  EXPECT_EQ(call.out, "42\n");
  CliResult wrong = RunCli({address, from_file, "call", "scalars", kNeg, "1"});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_THAT(wrong.err, HasSubstr("PERMISSION_DENIED"));

  CliResult revoke = RunCli({address, "token", "revoke", id});
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  CliResult after = RunCli({address, from_file, "token", "inspect"});
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_THAT(after.err, HasSubstr("revoked"));
  EXPECT_THAT(after.err, Not(HasSubstr(token)));

  CliResult who = RunCli({address, "whoami"});
  EXPECT_EQ(who.exit_code, 0);
  EXPECT_THAT(who.out, HasSubstr(absl::StrCat("test-user (uid ", ::getuid(), ")")));
}

}  // namespace
}  // namespace ffibroker::testing
