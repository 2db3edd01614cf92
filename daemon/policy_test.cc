#include "daemon/policy.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

// A fresh temporary directory (canonical path) holding fake library files.
class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "policy_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << tmpl;
    char buf[PATH_MAX];
    ASSERT_NE(::realpath(tmpl.c_str(), buf), nullptr);
    dir_ = buf;
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Creates an empty file at dir_/rel and returns its path.
  std::string MakeFile(const std::string& rel) {
    std::string path = absl::StrCat(dir_, "/", rel);
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path).put('\0');
    EXPECT_TRUE(std::filesystem::exists(path)) << path;
    return path;
  }

  absl::StatusOr<Policy> ParseOk(const std::string& text) {
    absl::StatusOr<Policy> policy = Policy::Parse(text, "test.textproto");
    EXPECT_TRUE(policy.ok()) << policy.status();
    return policy;
  }

  std::string dir_;
};

std::string Rule(const std::string& name, const std::string& path) {
  return absl::StrCat("libraries { name: \"", name, "\" path: \"", path, "\" }\n");
}

TEST_F(PolicyTest, SyntaxErrorReportsSourceLineAndColumn) {
  absl::StatusOr<Policy> policy =
      Policy::Parse("listen: \"unix:/x\"\n  bogus_field: 1\n", "my.textproto");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  // Line 2; protobuf places the column at the token after the unknown name.
  EXPECT_TRUE(absl::StartsWith(policy.status().message(), "my.textproto:2:"))
      << policy.status();
  EXPECT_TRUE(absl::StrContains(policy.status().message(), "bogus_field"))
      << policy.status();

  // First line, first column.
  policy = Policy::Parse("}", "p");
  ASSERT_FALSE(policy.ok());
  EXPECT_TRUE(absl::StartsWith(policy.status().message(), "p:1:1:")) << policy.status();

  // A type error inside a nested message: the string starts on line 3,
  // column 17 (both 1-based).
  policy = Policy::Parse("limits {\n\n  max_sessions: \"many\"\n}\n", "q");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(policy.status().message(), "q:3:17:")) << policy.status();
}

// Every string reaches clients in protobuf messages, which refuse what is
// not UTF-8: a review's key id "\377" left its holder with UNIMPLEMENTED
// answers. Such a policy is refused, naming where; a library that
// resolves (through a link) to a path that is not UTF-8 is ignored.
TEST_F(PolicyTest, TextThatIsNotUtf8IsRefusedWhereItIs) {
  absl::StatusOr<Policy> policy = Policy::Parse(
      "principals {\n  name: \"p\"\n  api_keys { id: \"k\\377\" sha256: \"00\" }\n}\n", "u");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(policy.status().message(),
                                "u:3:14: principals[0].api_keys[0].id: is not valid UTF-8"))
      << policy.status();
  std::string real = MakeFile("lib\xff.so");
  std::string link = absl::StrCat(dir_, "/link.so");
  std::filesystem::create_symlink(real, link);
  policy = Policy::Parse(Rule("x", link), "t");
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_EQ(policy->warnings().size(), 1u);
  EXPECT_TRUE(absl::StrContains(policy->warnings()[0], "which is not UTF-8"))
      << policy->warnings()[0];
}

TEST_F(PolicyTest, RelativeLibraryPathRejected) {
  absl::StatusOr<Policy> policy =
      Policy::Parse(Rule("x", "lib/libx.so"), "test.textproto");
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(policy.status().message(), "lib/libx.so"))
      << policy.status();
  EXPECT_TRUE(absl::StrContains(policy.status().message(), "test.textproto"))
      << policy.status();
  EXPECT_EQ(Policy::Parse("libraries { path: \"\" }", "t").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PolicyTest, DuplicateNamesRejected) {
  std::string a = MakeFile("a.so"), b = MakeFile("b.so");
  absl::StatusOr<Policy> policy =
      Policy::Parse(Rule("lib", a) + Rule("lib", b), "test.textproto");
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(policy.status().message(), "'lib'")) << policy.status();
}

// policy.proto: a name is "unique within the policy"; whether the first
// rule's file exists on this machine does not make the policy less wrong.
TEST_F(PolicyTest, DuplicateNameRejectedEvenIfFirstFileIsMissing) {
  std::string b = MakeFile("b.so");
  absl::StatusOr<Policy> policy =
      Policy::Parse(Rule("lib", dir_ + "/missing.so") + Rule("lib", b), "test.textproto");
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument)
      << "duplicate name 'lib' accepted";
}

TEST_F(PolicyTest, NameWithSlashRejected) {
  std::string a = MakeFile("a.so");
  EXPECT_EQ(Policy::Parse(Rule("x/y", a), "t").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PolicyTest, MissingLibraryIsAWarning) {
  std::string present = MakeFile("present.so");
  std::string missing = dir_ + "/missing.so";
  absl::StatusOr<Policy> policy =
      ParseOk(Rule("present", present) + Rule("missing", missing));
  ASSERT_TRUE(policy.ok());
  ASSERT_EQ(policy->warnings().size(), 1u);
  EXPECT_TRUE(absl::StrContains(policy->warnings()[0], missing))
      << policy->warnings()[0];
  EXPECT_TRUE(policy->ResolveLibrary("present").ok());
  EXPECT_EQ(policy->ResolveLibrary("missing").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PolicyTest, NoWarningsForACleanPolicy) {
  absl::StatusOr<Policy> policy = ParseOk(Rule("a", MakeFile("a.so")));
  ASSERT_TRUE(policy.ok());
  EXPECT_TRUE(policy->warnings().empty());
}

TEST_F(PolicyTest, DefaultsApplied) {
  absl::StatusOr<Policy> policy = ParseOk("");
  ASSERT_TRUE(policy.ok());
  const v1::Limits& l = policy->limits();
  EXPECT_EQ(l.max_sessions(), 256u);
  EXPECT_EQ(l.max_libraries_per_session(), 16u);
  EXPECT_EQ(l.max_workers(), 64u);
  EXPECT_EQ(l.max_call_millis(), 30000u);
  EXPECT_EQ(l.default_session_idle_seconds(), 300u);
  EXPECT_EQ(l.max_session_idle_seconds(), 3600u);
  EXPECT_EQ(policy->listen(), kDefaultListenAddress);
  EXPECT_EQ(policy->ResolveLibrary("anything").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PolicyTest, ExplicitLimitsKeptOthersDefaulted) {
  absl::StatusOr<Policy> policy = ParseOk(
      "listen: \"tcp:127.0.0.1:9\"\n"
      "limits { max_sessions: 5 max_call_millis: 100 }\n");
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->listen(), "tcp:127.0.0.1:9");
  EXPECT_EQ(policy->limits().max_sessions(), 5u);
  EXPECT_EQ(policy->limits().max_call_millis(), 100u);
  EXPECT_EQ(policy->limits().max_workers(), 64u);
  EXPECT_EQ(policy->limits().max_libraries_per_session(), 16u);
}

TEST_F(PolicyTest, DefaultIdleAboveMaximumRejected) {
  EXPECT_EQ(Policy::Parse("limits { default_session_idle_seconds: 4000 }", "t")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Policy::Parse("limits { default_session_idle_seconds: 4000 "
                            "max_session_idle_seconds: 4000 }",
                            "t")
                  .ok());
}

TEST_F(PolicyTest, LoadFile) {
  std::string lib = MakeFile("l.so");
  std::string file = dir_ + "/policy.textproto";
  std::ofstream(file) << Rule("l", lib);
  absl::StatusOr<Policy> policy = Policy::LoadFile(file);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->ResolveLibrary("l").value_or(""), lib);

  std::ofstream(file) << "\nnope {}\n";
  policy = Policy::LoadFile(file);
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(policy.status().message(), file + ":2:"))
      << policy.status();

  EXPECT_EQ(Policy::LoadFile(dir_ + "/absent.textproto").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PolicyTest, ResolveByNameAndPath) {
  std::string lib = MakeFile("libfoo.so.1");
  absl::StatusOr<Policy> policy = ParseOk(Rule("libfoo.so.1", lib));
  ASSERT_TRUE(policy.ok());
  absl::StatusOr<std::string> by_name = policy->ResolveLibrary("libfoo.so.1");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(*by_name, lib);
  absl::StatusOr<std::string> by_path = policy->ResolveLibrary(lib);
  ASSERT_TRUE(by_path.ok()) << by_path.status();
  EXPECT_EQ(*by_path, lib);
  // A rule without a name is reachable by path only.
  std::string anon = MakeFile("anon.so");
  policy = ParseOk(absl::StrCat("libraries { path: \"", anon, "\" }"));
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->ResolveLibrary(anon).value_or(""), anon);
  EXPECT_EQ(policy->ResolveLibrary("anon.so").status().code(),
            absl::StatusCode::kNotFound);
}

// Requests are matched as strings: a symlink the policy names resolves to
// its target; one it does not name stays itself (and matches no entry),
// since the daemon does not resolve paths on behalf of a client.
TEST_F(PolicyTest, ResolveThroughSymlinkOnlyIfThePolicySpellsIt) {
  std::string lib = MakeFile("real/libbar.so.2");
  std::string link = dir_ + "/libbar.so";
  std::string other = dir_ + "/other.so";
  ASSERT_EQ(::symlink(lib.c_str(), link.c_str()), 0);
  ASSERT_EQ(::symlink(lib.c_str(), other.c_str()), 0);
  absl::StatusOr<Policy> policy = ParseOk(Rule("bar", link));
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->ResolveLibrary(link).value_or(""), lib);
  EXPECT_EQ(policy->ResolveLibrary(dir_ + "//./x/../libbar.so").value_or(""), lib);
  EXPECT_EQ(policy->ResolveLibrary(lib).value_or(""), lib);
  EXPECT_EQ(policy->ResolveLibrary(other).value_or(""), other);
  EXPECT_EQ(policy->ResolveLibrary(dir_ + "/missing.so").value_or(""), dir_ + "/missing.so");
}

TEST_F(PolicyTest, RuleNamingASymlinkAllowsTarget) {
  std::string lib = MakeFile("real/libbaz.so.3");
  std::string link = dir_ + "/libbaz.so";
  ASSERT_EQ(::symlink(lib.c_str(), link.c_str()), 0);
  absl::StatusOr<Policy> policy = ParseOk(Rule("baz", link));
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->ResolveLibrary("baz").value_or(""), lib);
  EXPECT_EQ(policy->ResolveLibrary(link).value_or(""), lib);
  EXPECT_EQ(policy->ResolveLibrary(lib).value_or(""), lib);
}

TEST_F(PolicyTest, ResolveErrors) {
  std::string lib = MakeFile("allowed.so");
  std::string other = MakeFile("other.so");
  absl::StatusOr<Policy> policy = ParseOk(Rule("allowed", lib));
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(policy->ResolveLibrary("unknown").status().code(),
            absl::StatusCode::kNotFound);
  // Resolution never looks at the file system: a path the policy does not
  // spell is returned as it is, existing or not; whether a principal may
  // open the result is its permission's decision (tests/security covers
  // the denials).
  EXPECT_EQ(policy->ResolveLibrary(dir_ + "/nonexistent.so").value_or(""),
            dir_ + "/nonexistent.so");
  EXPECT_EQ(policy->ResolveLibrary(other).value_or(""), other);
  EXPECT_EQ(policy->ResolveLibrary("a/b.so").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(policy->ResolveLibrary("./allowed.so").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(policy->ResolveLibrary("").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A symlink the policy does not spell stays itself: it matches no entry,
  // whatever it points to (even an allowed file).
  std::string link = dir_ + "/sneaky.so";
  ASSERT_EQ(::symlink(lib.c_str(), link.c_str()), 0);
  EXPECT_EQ(policy->ResolveLibrary(link).value_or(""), link);
}

TEST_F(PolicyTest, DotDotPathsAreCanonicalized) {
  std::string lib = MakeFile("x/lib.so");
  MakeFile("outside.so");
  absl::StatusOr<Policy> policy = ParseOk(Rule("lib", lib));
  ASSERT_TRUE(policy.ok());
  absl::StatusOr<std::string> ok = policy->ResolveLibrary(dir_ + "/x/../x/lib.so");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, lib);
  EXPECT_EQ(policy->ResolveLibrary(dir_ + "/x/./lib.so").value_or(""), lib);
  EXPECT_EQ(policy->ResolveLibrary(dir_ + "/x/../outside.so").value_or(""),
            dir_ + "/outside.so");
}

}  // namespace
}  // namespace ffibroker

namespace ffibroker {
namespace {

TEST(PolicyLayersTest, RequiredLayersAndReferencedProfiles) {
  absl::StatusOr<Policy> policy = Policy::Parse(
      "require_layers: [LAYER_SECCOMP, LAYER_PID_NAMESPACE]\n"
      "principals { name: \"a\" uids: 1 }\n"
      "principals { name: \"b\" uids: 2 permission { confinement_profile: \"threads\" } }\n",
      "p.textproto");
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_THAT(policy->required_layers(),
              ::testing::ElementsAre(v1::LAYER_SECCOMP, v1::LAYER_PID_NAMESPACE));
  // "a" gets the default.
  EXPECT_THAT(policy->ReferencedProfiles(), ::testing::ElementsAre("strict", "threads"));

  absl::StatusOr<Policy> bad = Policy::Parse("require_layers: 99\n", "p.textproto");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              ::testing::HasSubstr("p.textproto:1:1: require_layers[0]: 99 is not a confinement layer"));
}

}  // namespace
}  // namespace ffibroker
