// The command lines of ffibrokerd, ffibroker-worker and ffibroker (CLI11):
// --help, values rejected with the flag named, repeated flags, arguments
// after the command left alone.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

CliResult Daemon(const std::vector<std::string>& args) {
  std::vector<std::string> full = {FFIBROKERD_PATH};
  full.insert(full.end(), args.begin(), args.end());
  return RunProgram(full);
}

TEST(DaemonFlagsTest, HelpListsEveryFlagWithItsDefault) {
  CliResult help = Daemon({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"--policy", "--listen", "--worker", "--profiles", "--disable-layers",
                           "--tls-cert", "--tls-key", "--state-dir", "--threads",
                           "--worker-uids", "--shutdown-grace", "--log-level",
                           "--prestart-workers", "--prestart-refill", "--channel-ring-kib"}) {
    EXPECT_THAT(help.out, HasSubstr(flag));
  }
  EXPECT_THAT(help.out, HasSubstr("/ffibroker/policy.textproto"));
  EXPECT_THAT(help.out, HasSubstr("--shutdown-grace DURATION=5s"));
  EXPECT_THAT(help.out, HasSubstr("{debug,error,info,warning}=info"));
  EXPECT_THAT(help.out, HasSubstr("--prestart-workers INT:INT in [0 - 64]=2"));
}

TEST(DaemonFlagsTest, BadValuesAreRejectedNamingTheFlag) {
  struct Case {
    std::string arg, message;
  };
  for (const Case& c : std::vector<Case>{
           {"--log-level=verbose", "--log-level: verbose not in {debug,error,info,warning}"},
           {"--threads=0", "--threads: Value 0 not in range 1 to 1024"},
           {"--threads=many", "--threads"},
           {"--prestart-workers=65", "--prestart-workers: Value 65 not in range 0 to 64"},
           {"--prestart-refill=0", "--prestart-refill: Value 0 not in range 1 to 8"},
           {"--channel-ring-kib=100", "--channel-ring-kib: must be 0, or a power of two from 64 to 32768"},
           {"--channel-ring-kib=65536", "--channel-ring-kib: must be 0, or a power of two from 64"},
           {"--channel-ring-kib=32", "--channel-ring-kib: must be 0, or a power of two from 64"},
           {"--channel-ring-kib=0x40", "--channel-ring-kib: must be 0, or a power of two from 64"},
           {"--shutdown-grace=soon", "--shutdown-grace: 'soon' is not a non-negative duration"},
           {"--shutdown-grace=-1s", "--shutdown-grace"},
           {"--no-such-flag", "--no-such-flag"},
           {"stray", "stray"}}) {
    CliResult r = Daemon({"--policy=/nonexistent", c.arg});
    EXPECT_EQ(r.exit_code, 2) << c.arg;
    EXPECT_THAT(r.err, HasSubstr("ffibrokerd: ")) << c.arg;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.arg;
    EXPECT_THAT(r.err, HasSubstr("(see --help)")) << c.arg;
  }
}

TEST(DaemonFlagsTest, AKnownLogLevelIsTaken) {
  // The policy is missing: the daemon gets past its flags and fails at start (1).
  CliResult r = Daemon({"--policy=/nonexistent", "--log-level=warning"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("cannot read policy file /nonexistent"));
}

TEST(WorkerFlagsTest, ParentPidIsRequiredAndNotNegative) {
  CliResult r = RunProgram({FFIBROKER_WORKER_PATH});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--parent-pid is required"));
  r = RunProgram({FFIBROKER_WORKER_PATH, "--parent-pid=-4"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--parent-pid"));
}

class CliFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto daemon = TestDaemon::Start();
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
  }
  std::unique_ptr<TestDaemon> daemon_;
};

TEST_F(CliFlagsTest, ClassRepeatsAndArgumentsAfterTheCommandAreLeftAlone) {
  // Two --class flags, the second using the first.
  CliResult r = RunCli({"--address=" + daemon_->address(),
                        "--class=Point { f64 x; f64 y; }",
                        "--class=Rect { Point min; Point max; u8[4] tags; i32 kind; bool visible; }",
                        "call", "classes", "f64 rect_area(Rect)",
                        "{min={x=-1, y=0}, max={x=1, y=3}, tags=[0, 0, 0, 2], kind=0, visible=true}"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "8\n");
  // "-7" after the command is an argument, not a flag.
  r = RunCli({"--address=" + daemon_->address(), "call", "scalars", "i8 neg_i8(i8)", "-7"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "7\n");
}

// Flags go before the command; one written after it is named as such, not
// taken for the library (or the command) it stands in the place of.
TEST(CliUsageFlagsTest, AFlagAfterTheCommandSaysWhereFlagsGo) {
  CliResult r = RunCli({"call", "--class=Point { f64 x; }", "classes", "void f()"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("flags go before the command: ffibroker --class=... call"));
  r = RunCli({"--bogus", "status"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag '--bogus'"));
}

TEST(CliUsageFlagsTest, BadTimeoutIsAUsageError) {
  CliResult r = RunCli({"--timeout=never", "status"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--timeout: 'never' is not a positive duration"));
  // 0 was taken, then every connection failed "within 0" as if no daemon ran.
  r = RunCli({"--timeout=0", "status"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--timeout: '0' is not a positive duration"));
}

}  // namespace
}  // namespace ffibroker::testing
