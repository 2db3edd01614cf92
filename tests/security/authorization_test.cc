// Issue 9, findings 2, 3, 12, 13 and 14: every name the worker resolves and
// every operation on a handle passes the same authorization.
//
//  2  statics and destructors (a class's ~name, an opaque class's implicit
//     Name__drop) are checked against allow_symbols/deny_symbols like
//     declared functions; writing a static needs WRITE_STATICS.
//  3  every operation on a handle opened with a token re-checks the token
//     (revocation, quota) and runs under the opening permission's
//     max_call_millis, not only Call.
//  12 a library path that is not allowed gets one message, whether or not
//     the file exists (no realpath on behalf of the client).
//  13 a symbol must be defined by the library itself, not a dependency.
//  14 a handle the session does not own is NOT_FOUND with one message.
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/literal.h"
#include "ffibroker/client.h"
#include "ffibroker/instance.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

// The test's principal with `permission` (text inside permission {}).
std::string PolicyWith(const std::string& permission) {
  return absl::StrCat(TestDaemon::Catalogue(), "principals { name: \"tester\" uids: ",
                      ::getuid(), " permission { ", permission, " } }\n");
}

// The classes library with its admin names denied.
constexpr char kClassesDenyingAdmin[] =
    "libraries { library: \"classes\" "
    "deny_symbols: [\"admin_counter\", \"admin_reset\", \"Admin__drop\"] } "
    "libraries { library: \"scalars\" } ";
using Decls = std::vector<std::string>;
constexpr char kAllOperations[] = "operations: [OPEN_LIBRARY, GRANT_TOKEN, WRITE_STATICS] ";

void ExpectError(const absl::Status& status, absl::StatusCode code,
                 const std::vector<std::string>& parts) {
  EXPECT_EQ(status.code(), code) << status;
  for (const std::string& part : parts) {
    EXPECT_TRUE(absl::StrContains(status.message(), part))
        << "'" << status.message() << "' lacks '" << part << "'";
  }
}

class AuthorizationTest : public DaemonSessionTest {
 protected:
  void SetUp() override {}  // each test starts its own daemon
  // Starts a daemon with PolicyWith(permission) and opens a session.
  void Start(const std::string& permission) {
    Adopt(TestDaemon::StartWithPolicy(PolicyWith(permission)));
  }
};

// --- finding 2: statics and destructors --------------------------------

TEST_F(AuthorizationTest, DeniedStaticCannotBeDeclared) {
  Start(absl::StrCat(kClassesDenyingAdmin, kAllOperations));
  ASSERT_NE(session_, nullptr);
  for (const char* decl : {"i32 admin_counter", "mut i32 admin_counter",
                           "optional i32 admin_counter"}) {
    ExpectError(session_->OpenLibrary("classes", Decls{"i32 fail_with(i32 e)"}, Decls{decl}).status(),
                absl::StatusCode::kPermissionDenied, {"static 'admin_counter'", "not allowed"});
  }
  // Allowed statics still work.
  auto lib = session_->OpenLibrary("classes", Decls{}, Decls{"i32 counter_static"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_EQ(FormatValue(*(*lib)->ReadStatic("counter_static")), "5");
}

TEST_F(AuthorizationTest, DeniedDestructorCannotBeNamed) {
  Start(absl::StrCat(kClassesDenyingAdmin, kAllOperations));
  ASSERT_NE(session_, nullptr);
  // A class whose destructor is a denied function.
  ASSERT_TRUE(session_->RegisterClass("Evil { i32 x; } ~admin_reset").ok());
  ExpectError(session_->OpenLibrary("classes", {"Evil* flagged_new()"}).status(),
              absl::StatusCode::kPermissionDenied,
              {"destructor 'admin_reset'", "class Evil", "'flagged_new'", "not allowed"});
  // The implicit Name__drop of an opaque class.
  ASSERT_TRUE(session_->RegisterClass("opaque Admin").ok());
  ExpectError(session_->OpenLibrary("classes", {"ffireturn Admin* Counter__new(i64 start)"})
                  .status(),
              absl::StatusCode::kPermissionDenied, {"destructor 'Admin__drop'", "not allowed"});
  // A class that is registered but never returned owned resolves nothing.
  auto lib = session_->OpenLibrary("classes", {"borrowed Evil* flagged_new()"});
  ASSERT_TRUE(lib.ok()) << lib.status();
}

TEST_F(AuthorizationTest, AllowListCoversDestructors) {
  Start("libraries { library: \"classes\" allow_symbols: [\"point_new\", \"point_sum\"] }");
  ASSERT_NE(session_, nullptr);
  ASSERT_TRUE(session_->RegisterClass("Point { f64 x; f64 y; } ~point_free").ok());
  ExpectError(session_->OpenLibrary("classes", {"Point* point_new(f64 x, f64 y)"}).status(),
              absl::StatusCode::kPermissionDenied, {"destructor 'point_free'", "not allowed"});
  EXPECT_TRUE(session_->OpenLibrary("classes", {"f64 point_sum(Point*? p)"}).ok());
}

TEST_F(AuthorizationTest, WritingStaticsNeedsItsOwnOperation) {
  Start(kClassesDenyingAdmin);  // default operations: no WRITE_STATICS
  ASSERT_NE(session_, nullptr);
  ExpectError(session_->OpenLibrary("classes", Decls{}, Decls{"mut i32 counter_static"}).status(),
              absl::StatusCode::kPermissionDenied, {"WRITE_STATICS"});
  EXPECT_TRUE(session_->OpenLibrary("classes", Decls{}, Decls{"i32 counter_static"}).ok());

  Start(absl::StrCat(kClassesDenyingAdmin, kAllOperations));
  ASSERT_NE(session_, nullptr);
  auto lib = session_->OpenLibrary("classes", Decls{}, Decls{"mut i32 counter_static"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_TRUE((*lib)->WriteStatic("counter_static", ToValue(8)).ok());
  // A token carries the operation only if its grant keeps it.
  v1::GrantTokenRequest narrow;
  narrow.add_operations(v1::OPEN_LIBRARY);
  auto token = session_->GrantToken(narrow);
  ASSERT_TRUE(token.ok()) << token.status();
  ExpectError(
      session_->OpenLibrary("classes", Decls{}, Decls{"mut i32 counter_static"}, token->token()).status(),
      absl::StatusCode::kPermissionDenied, {"WRITE_STATICS", "the token"});
  auto full = session_->GrantToken();
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_TRUE(
      session_->OpenLibrary("classes", Decls{}, Decls{"mut i32 counter_static"}, full->token()).ok());
}

// --- finding 3: every operation re-checks the token ---------------------

TEST_F(AuthorizationTest, RevokedTokenStopsEveryOperationOnItsHandle) {
  Start(absl::StrCat(kClassesDenyingAdmin, kAllOperations));
  ASSERT_NE(session_, nullptr);
  ASSERT_TRUE(session_->RegisterClass("Point { mut f64 x; f64 y; } ~point_free").ok());
  auto token = session_->GrantToken();
  ASSERT_TRUE(token.ok()) << token.status();
  auto lib = session_->OpenLibrary("classes", {"Point* point_new(f64 x, f64 y)"},
                                   {"mut i32 counter_static"}, token->token());
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto allocated = (*lib)->NewInstance("Point");
  ASSERT_TRUE(allocated.ok()) << allocated.status();
  auto owned = (*lib)->CallInstance("point_new", 1.0, 2.0);  // destructor: point_free
  ASSERT_TRUE(owned.ok()) << owned.status();
  ASSERT_TRUE(session_->RevokeToken(token->claims().token_id()).ok());

  const absl::StatusCode denied = absl::StatusCode::kPermissionDenied;
  ExpectError((*allocated)->Read().status(), denied, {"opened with a token"});
  ExpectError((*allocated)->Set("x", ToValue(3.0)), denied, {"opened with a token"});
  ExpectError((*lib)->NewInstance("Point").status(), denied, {"opened with a token"});
  ExpectError((*lib)->ReadStatic("counter_static").status(), denied, {"opened with a token"});
  ExpectError((*lib)->WriteStatic("counter_static", ToValue(1)), denied,
              {"opened with a token"});
  ExpectError((*owned)->Free().status(), denied, {"opened with a token"});  // library code
  ExpectError((*allocated)->Free().status(), denied, {"opened with a token"});
  ExpectError((*lib)->Call<void>("point_new", 1.0, 2.0), denied, {"opened with a token"});
  // The handles stay the session's: closing it releases them (the daemon
  // runs the destructor itself).
  (*owned)->Release();
  (*allocated)->Release();
  EXPECT_TRUE(session_->Close().ok());
}

TEST_F(AuthorizationTest, TokenQuotaCountsInstanceAndStaticOperations) {
  Start(absl::StrCat(kClassesDenyingAdmin, kAllOperations));
  ASSERT_NE(session_, nullptr);
  ASSERT_TRUE(session_->RegisterClass("Point { mut f64 x; f64 y; }").ok());
  v1::GrantTokenRequest scope;
  scope.set_call_quota(4);
  auto token = session_->GrantToken(scope);
  ASSERT_TRUE(token.ok()) << token.status();
  auto lib = session_->OpenLibrary("classes", {"f64 point_sum(Point*? p)"},
                                   {"mut i32 counter_static"}, token->token());
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto p = (*lib)->NewInstance("Point");                                 // 1
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->Read().ok());                                        // 2
  ASSERT_TRUE((*lib)->ReadStatic("counter_static").ok());                // 3
  ASSERT_TRUE((*lib)->WriteStatic("counter_static", ToValue(2)).ok());   // 4
  const absl::StatusCode exhausted = absl::StatusCode::kResourceExhausted;
  ExpectError((*p)->Set("x", ToValue(1.0)), exhausted, {"opened with a token"});
  ExpectError((*lib)->ReadStatic("counter_static").status(), exhausted, {});
  ExpectError((*lib)->NewInstance("Point").status(), exhausted, {});
  ExpectError((*lib)->Call<double>("point_sum", **p).status(), exhausted, {});
  (*p)->Release();
}

TEST_F(AuthorizationTest, PermissionMaxCallBoundsInstanceOperations) {
  Start(absl::StrCat(kClassesDenyingAdmin, kAllOperations, "limits { max_call_millis: 300 }"));
  ASSERT_NE(session_, nullptr);
  // point_free_slowly sleeps 3 s; the permission allows 300 ms per operation.
  ASSERT_TRUE(session_->RegisterClass("Slow { f64 x; f64 y; } ~point_free_slowly").ok());
  auto lib = session_->OpenLibrary("classes", {"Slow* point_new(f64 x, f64 y)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto slow = (*lib)->CallInstance("point_new", 1.0, 2.0);
  ASSERT_TRUE(slow.ok()) << slow.status();
  ExpectError((*slow)->Free().status(), absl::StatusCode::kDeadlineExceeded, {});
}

// --- finding 12: no realpath oracle --------------------------------------

TEST_F(AuthorizationTest, EveryDisallowedPathGetsTheSameAnswer) {
  Start(kClassesDenyingAdmin);
  ASSERT_NE(session_, nullptr);
  std::string existing = daemon_->dir() + "/exists.so";
  std::ofstream(existing) << "not a library";
  const std::vector<std::string> paths = {
      existing,                                   // exists, not allowed
      daemon_->dir() + "/missing.so",             // does not exist
      "/etc/hostname",                            // exists
      "/proc/self/cwd/libffib_classes.so",        // the daemon's directory
      "/proc/self/cwd/../../nope/../etc/passwd",  // ".." through /proc
      "/root/.bashrc",
  };
  std::string first;
  for (const std::string& path : paths) {
    absl::Status status = session_->OpenLibrary(path, {"i32 f()"}).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << path << ": " << status;
    if (first.empty()) first = std::string(status.message());
    EXPECT_EQ(status.message(), first) << path;
    // Granting a token for it tells nothing either (the path is echoed,
    // the answer does not depend on the file).
    v1::GrantTokenRequest scope;
    scope.add_libraries()->set_library(path);
    absl::Status grant = session_->GrantToken(scope).status();
    EXPECT_EQ(grant.code(), absl::StatusCode::kPermissionDenied) << path << ": " << grant;
    EXPECT_EQ(absl::StrReplaceAll(grant.message(), {{path, "PATH"}}),
              "libraries[0]: 'PATH' is not allowed")
        << grant;
  }
  // Relative paths are refused outright; allowed spellings still work.
  ExpectError(session_->OpenLibrary("tmp/x.so", {"i32 f()"}).status(),
              absl::StatusCode::kInvalidArgument, {"relative"});
  auto by_name = session_->OpenLibrary("classes", {"i32 fail_with(i32 e)"});
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  const std::string canonical = (*by_name)->resolved_path();
  std::string dir = canonical.substr(0, canonical.rfind('/'));
  std::string base = canonical.substr(canonical.rfind('/') + 1);
  for (const std::string& spelling :
       {canonical, absl::StrCat(dir, "//./", base), absl::StrCat(dir, "/x/../", base)}) {
    auto lib = session_->OpenLibrary(spelling, {"i32 fail_with(i32 e)"});
    ASSERT_TRUE(lib.ok()) << spelling << ": " << lib.status();
    EXPECT_EQ((*lib)->resolved_path(), canonical);
  }
}

// --- finding 13: symbols of dependencies ---------------------------------

TEST_F(AuthorizationTest, SymbolsOfDependenciesAreNotFound) {
  Start("libraries { library: \"scalars\" } libraries { library: \"classes\" }");
  ASSERT_NE(session_, nullptr);
  // getpid is libc's, reachable through ffib_scalars' dependencies.
  ExpectError(session_->OpenLibrary("scalars", {"i32 getpid()"}).status(),
              absl::StatusCode::kNotFound, {"function 'getpid'", "defined in a dependency"});
  ExpectError(session_->OpenLibrary("scalars", Decls{}, Decls{"i64 timezone"}).status(),
              absl::StatusCode::kNotFound, {"static 'timezone'", "defined in a dependency"});
  // A destructor too: free is libc's.
  ASSERT_TRUE(session_->RegisterClass("Point { f64 x; f64 y; } ~free").ok());
  ExpectError(session_->OpenLibrary("classes", {"Point* point_new(f64 x, f64 y)"}).status(),
              absl::StatusCode::kNotFound, {"destructor 'free'", "defined in a dependency"});
  // An optional one is simply missing.
  auto lib = session_->OpenLibrary("scalars", {"optional i32 getpid()"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_EQ((*lib)->missing_symbols(), std::vector<std::string>{"getpid"});
}

TEST_F(AuthorizationTest, DependencySymbolsNeedThePolicySwitch) {
  Start("libraries { library: \"scalars\" allow_dependency_symbols: true }");
  ASSERT_NE(session_, nullptr);
  auto lib = session_->OpenLibrary("scalars", {"i32 getpid()"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  EXPECT_TRUE((*lib)->Call<int32_t>("getpid").ok());
}

// --- finding 14: handle oracles -------------------------------------------

TEST_F(AuthorizationTest, HandlesOfOtherSessionsAreAllNotFound) {
  Start(kClassesDenyingAdmin);
  ASSERT_NE(session_, nullptr);
  auto other = NewSession();
  ASSERT_NE(other, nullptr);
  for (Session* s : {session_.get(), other.get()}) {
    ASSERT_TRUE(s->RegisterClass("Point { mut f64 x; f64 y; }").ok());
  }
  auto mine = session_->OpenLibrary("classes", {"f64 point_sum(Point*? p)"});
  ASSERT_TRUE(mine.ok()) << mine.status();
  auto theirs = other->OpenLibrary("classes", {"f64 point_sum(Point*? p)"});
  ASSERT_TRUE(theirs.ok()) << theirs.status();

  // What the other session hears about handle h, with h's number replaced.
  auto probe = [&](uint64_t h) {
    Instance foreign(theirs->get(), h);
    std::vector<std::string> answers;
    auto add = [&](const absl::Status& status) {
      EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
      answers.push_back(absl::StrReplaceAll(status.message(), {{absl::StrCat(h), "H"}}));
    };
    add(foreign.Read().status());
    add(foreign.Set("x", ToValue(1.0)));
    v1::Value arg;
    arg.set_handle_value(h);
    add((*theirs)->CallValues("point_sum", {arg}).status());
    add(foreign.Free().status());
    foreign.Release();
    return answers;
  };

  auto live = (*mine)->NewInstance("Point");
  ASSERT_TRUE(live.ok()) << live.status();
  uint64_t live_handle = (*live)->handle();
  std::vector<std::string> of_live = probe(live_handle);
  auto freed = (*mine)->NewInstance("Point");
  ASSERT_TRUE(freed.ok()) << freed.status();
  uint64_t freed_handle = (*freed)->handle();
  ASSERT_TRUE((*freed)->Free().ok());
  std::vector<std::string> of_freed = probe(freed_handle);
  std::vector<std::string> of_forged = probe(freed_handle + 7);
  std::vector<std::string> of_never = probe(0x7fff000000000001ull);
  EXPECT_EQ(of_live, of_freed);
  EXPECT_EQ(of_live, of_forged);
  EXPECT_EQ(of_live, of_never);
  // The owner still hears that its own handle is stale, and its live one works.
  Instance stale(mine->get(), freed_handle);
  ExpectError(stale.Read().status(), absl::StatusCode::kFailedPrecondition,
              {"stale", "was freed"});
  stale.Release();
  EXPECT_TRUE((*live)->Read().ok());
}

}  // namespace
}  // namespace ffibroker::testing
