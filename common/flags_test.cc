#include "common/flags.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

bool Contains(absl::string_view haystack, absl::string_view needle) {
  return haystack.find(needle) != absl::string_view::npos;
}

// A FlagSet with one flag of each kind and a Parse() over string lists.
class FlagsTest : public ::testing::Test {
 protected:
  FlagsTest() : flags_("prog [flags] FILE...") {
    flags_.String("name", &name_, "who to greet");
    flags_.Int("count", &count_, "how many times");
    flags_.Bool("verbose", &verbose_, "say more");
    flags_.Duration("timeout", &timeout_, "how long to wait");
  }

  absl::StatusOr<std::vector<std::string>> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "prog");
    storage_ = std::move(args);
    argv_.clear();
    for (std::string& a : storage_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    return flags_.Parse(static_cast<int>(storage_.size()), argv_.data());
  }

  std::string name_ = "world";
  int64_t count_ = 3;
  bool verbose_ = false;
  absl::Duration timeout_ = absl::Seconds(30);
  FlagSet flags_;

 private:
  std::vector<std::string> storage_;
  std::vector<char*> argv_;
};

using Positional = std::vector<std::string>;

TEST_F(FlagsTest, NoArguments) {
  absl::StatusOr<Positional> rest = Parse({});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(rest->empty());
  EXPECT_EQ(name_, "world");
  EXPECT_EQ(count_, 3);
  EXPECT_FALSE(verbose_);
  EXPECT_EQ(timeout_, absl::Seconds(30));
  EXPECT_FALSE(flags_.help_requested());
}

TEST_F(FlagsTest, EqualsForm) {
  absl::StatusOr<Positional> rest = Parse({"--name=alice", "--count=42"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(name_, "alice");
  EXPECT_EQ(count_, 42);
  EXPECT_TRUE(rest->empty());
}

TEST_F(FlagsTest, SeparateValueForm) {
  absl::StatusOr<Positional> rest = Parse({"--name", "bob", "--count", "-5"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(name_, "bob");
  EXPECT_EQ(count_, -5);
  EXPECT_TRUE(rest->empty());
}

TEST_F(FlagsTest, ValueMayContainEqualsAndBeEmpty) {
  ASSERT_TRUE(Parse({"--name=a=b"}).ok());
  EXPECT_EQ(name_, "a=b");
  ASSERT_TRUE(Parse({"--name="}).ok());
  EXPECT_EQ(name_, "");
}

TEST_F(FlagsTest, LastOccurrenceWins) {
  ASSERT_TRUE(Parse({"--count=1", "--count=2"}).ok());
  EXPECT_EQ(count_, 2);
}

TEST_F(FlagsTest, BoolForms) {
  ASSERT_TRUE(Parse({"--verbose"}).ok());
  EXPECT_TRUE(verbose_);
  ASSERT_TRUE(Parse({"--verbose=false"}).ok());
  EXPECT_FALSE(verbose_);
  ASSERT_TRUE(Parse({"--verbose=true"}).ok());
  EXPECT_TRUE(verbose_);
  ASSERT_TRUE(Parse({"--verbose=0"}).ok());
  EXPECT_FALSE(verbose_);
  ASSERT_TRUE(Parse({"--verbose=1"}).ok());
  EXPECT_TRUE(verbose_);
}

TEST_F(FlagsTest, BareBoolDoesNotConsumeNextArgument) {
  absl::StatusOr<Positional> rest = Parse({"--verbose", "file.txt"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(verbose_);
  EXPECT_EQ(*rest, Positional({"file.txt"}));
}

TEST_F(FlagsTest, BadBoolValue) {
  absl::StatusOr<Positional> rest = Parse({"--verbose=maybe"});
  EXPECT_EQ(rest.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(rest.status().message(), "maybe")) << rest.status();
  EXPECT_TRUE(Contains(rest.status().message(), "--verbose")) << rest.status();
}

TEST_F(FlagsTest, Durations) {
  ASSERT_TRUE(Parse({"--timeout=250ms"}).ok());
  EXPECT_EQ(timeout_, absl::Milliseconds(250));
  ASSERT_TRUE(Parse({"--timeout", "5m"}).ok());
  EXPECT_EQ(timeout_, absl::Minutes(5));
  ASSERT_TRUE(Parse({"--timeout=1.5s"}).ok());
  EXPECT_EQ(timeout_, absl::Milliseconds(1500));
  absl::StatusOr<Positional> bad = Parse({"--timeout=soon"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.status().message(), "soon")) << bad.status();
  EXPECT_TRUE(Contains(bad.status().message(), "--timeout")) << bad.status();
}

TEST_F(FlagsTest, UnknownFlagIsNamed) {
  absl::StatusOr<Positional> rest = Parse({"--name=x", "--colour=red"});
  EXPECT_EQ(rest.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(rest.status().message(), "--colour")) << rest.status();
  rest = Parse({"--colour"});
  EXPECT_EQ(rest.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(rest.status().message(), "--colour")) << rest.status();
}

TEST_F(FlagsTest, MissingValue) {
  absl::StatusOr<Positional> rest = Parse({"--name"});
  EXPECT_EQ(rest.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(rest.status().message(), "--name")) << rest.status();
  EXPECT_TRUE(Contains(rest.status().message(), "value")) << rest.status();
  EXPECT_EQ(Parse({"--count"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Parse({"--timeout"}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(FlagsTest, BadIntValue) {
  for (const char* bad : {"abc", "1.5", "12x", ""}) {
    SCOPED_TRACE(bad);
    absl::StatusOr<Positional> rest = Parse({std::string("--count=") + bad});
    EXPECT_EQ(rest.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(Contains(rest.status().message(), "--count")) << rest.status();
    EXPECT_TRUE(Contains(rest.status().message(), bad)) << rest.status();
  }
  absl::StatusOr<Positional> rest = Parse({"--count", "lots"});
  EXPECT_EQ(rest.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(rest.status().message(), "lots")) << rest.status();
}

TEST_F(FlagsTest, DoubleDashEndsFlags) {
  absl::StatusOr<Positional> rest =
      Parse({"a", "--count=7", "--", "--name=x", "-h", "--", "b"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, Positional({"a", "--name=x", "-h", "--", "b"}));
  EXPECT_EQ(count_, 7);
  EXPECT_EQ(name_, "world");
  EXPECT_FALSE(flags_.help_requested());
}

TEST_F(FlagsTest, SingleDashArgumentsArePositional) {
  absl::StatusOr<Positional> rest = Parse({"-1", "x", "-", "-v", "--count=2", "y"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, Positional({"-1", "x", "-", "-v", "y"}));
  EXPECT_EQ(count_, 2);
}

TEST_F(FlagsTest, HelpRequested) {
  absl::StatusOr<Positional> rest = Parse({"--help"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(flags_.help_requested());
  EXPECT_TRUE(rest->empty());
}

TEST(FlagSetTest, ShortHelpRequested) {
  FlagSet flags("prog");
  std::string arg0 = "prog", arg1 = "-h";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  absl::StatusOr<std::vector<std::string>> rest = flags.Parse(2, argv);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_TRUE(flags.help_requested());
  EXPECT_TRUE(rest->empty());
}

TEST(FlagSetTest, StartIndex) {
  FlagSet flags("prog sub [flags]");
  int64_t n = 0;
  flags.Int("n", &n, "a number");
  std::string a0 = "prog", a1 = "sub", a2 = "--n=9", a3 = "pos";
  char* argv[] = {a0.data(), a1.data(), a2.data(), a3.data(), nullptr};
  absl::StatusOr<std::vector<std::string>> rest = flags.Parse(4, argv, 2);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(n, 9);
  EXPECT_EQ(*rest, std::vector<std::string>({"pos"}));
}

TEST_F(FlagsTest, UsageListsFlagsAndDefaults) {
  std::string usage = flags_.Usage();
  EXPECT_TRUE(Contains(usage, "prog [flags] FILE...")) << usage;
  for (const char* needle :
       {"--name", "who to greet", "world", "--count", "how many times", "3",
        "--verbose", "say more", "false", "--timeout", "how long to wait", "30s",
        "--help"}) {
    EXPECT_TRUE(Contains(usage, needle)) << "usage lacks '" << needle << "':\n"
                                         << usage;
  }
  // Each flag's own line carries its own default.
  size_t name_at = usage.find("--name");
  size_t count_at = usage.find("--count");
  ASSERT_NE(name_at, std::string::npos);
  ASSERT_NE(count_at, std::string::npos);
  ASSERT_LT(name_at, count_at);
  EXPECT_TRUE(Contains(usage.substr(name_at, count_at - name_at), "world"));
}

TEST(FlagSetTest, UsageShowsDefaultsAtRegistrationTime) {
  FlagSet flags("prog");
  std::string listen = "unix:/run/x.sock";
  absl::Duration wait = absl::Milliseconds(250);
  flags.String("listen", &listen, "where to listen");
  flags.Duration("wait", &wait, "how long");
  std::string usage = flags.Usage();
  EXPECT_TRUE(Contains(usage, "unix:/run/x.sock")) << usage;
  EXPECT_TRUE(Contains(usage, "250ms")) << usage;
}

}  // namespace
}  // namespace ffibroker
