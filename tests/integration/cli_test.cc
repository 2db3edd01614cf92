// End-to-end tests of the ffibroker CLI against a real daemon.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto daemon = TestDaemon::Start();
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
  }
  CliResult Call(std::vector<std::string> args) {
    args.insert(args.begin(), {"--address=" + daemon_->address(), "call"});
    return RunCli(args);
  }
  std::unique_ptr<TestDaemon> daemon_;
};

TEST_F(CliTest, CosOfOneHalf) {
  CliResult r = Call({"libm.so.6", "f64 cos(f64)", "0.5"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "0.8775825618903728\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, PrintsExactEdgeValues) {
  EXPECT_EQ(Call({"scalars", "u64 id_u64(u64)", "18446744073709551615"}).out,
            "18446744073709551615\n");
  EXPECT_EQ(Call({"scalars", "i64 id_i64(i64)", "-9223372036854775808"}).out,
            "-9223372036854775808\n");
  EXPECT_EQ(Call({"scalars", "u8 id_u8(u8)", "0xff"}).out, "255\n");
  EXPECT_EQ(Call({"scalars", "f64 make_neg_zero()"}).out, "-0\n");
  EXPECT_EQ(Call({"scalars", "f64 make_nan()"}).out, "nan\n");
  EXPECT_EQ(Call({"scalars", "f64 id_f64(f64)", "-inf"}).out, "-inf\n");
  EXPECT_EQ(Call({"scalars", "f64 make_denormal()"}).out, "5e-324\n");
  EXPECT_EQ(Call({"scalars", "f32 id_f32(f32)", "0.1"}).out, "0.1\n");
  EXPECT_EQ(Call({"scalars", "bool not_bool(bool)", "false"}).out, "true\n");
  CliResult v = Call({"scalars", "void counter_reset()"});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_EQ(v.out, "");
}

TEST_F(CliTest, BadLiteralsAreUsageErrors) {
  CliResult r = Call({"scalars", "u8 id_u8(u8)", "300"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("argument 1"));
  EXPECT_THAT(r.err, HasSubstr("u8"));
  r = Call({"scalars", "u8 id_u8(u8 level)", "300"});  // a name is named
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("argument 1 (level: u8)"));
  r = Call({"scalars", "u8 id_u8(u8)"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("takes 1 argument(s), 0 given"));
  r = Call({"scalars", "u8 id_u8(u9)", "1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("column 10"));
}

TEST_F(CliTest, DaemonErrorsExitOneWithTheCode) {
  CliResult r = Call({"scalars", "i32 no_such_symbol()"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("ffibroker: NOT_FOUND"));
  EXPECT_THAT(r.err, HasSubstr("no_such_symbol"));
  // The code and the message, one line: not the status's serialized details.
  EXPECT_THAT(r.err, Not(HasSubstr("type.googleapis.com")));
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
  r = Call({"crashy", "i32 crash_segv()"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("UNAVAILABLE"));
  EXPECT_THAT(r.err, HasSubstr("SIGSEGV"));
  r = Call({"/etc/hostname", "void f()"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
}

// The client's own deadline (--timeout) ends a hung call with the daemon's
// answer (the worker killed, and why), not gRPC's bare "Deadline
// Exceeded" from the client's timer.
TEST_F(CliTest, ATimeoutEndsAHungCallWithTheDaemonsAnswer) {
  CliResult r = RunCli({"--address=" + daemon_->address(), "--timeout=1500ms", "call", "crashy",
                        "void hang()"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("ffibroker: DEADLINE_EXCEEDED"));
  EXPECT_THAT(r.err, HasSubstr("killed because the call's deadline passed")) << r.err;
}

TEST_F(CliTest, UnreachableDaemonExitsThree) {
  CliResult r = RunCli({"--address=unix:" + daemon_->dir() + "/nobody.sock", "--timeout=1s",
                        "call", "libm.so.6", "f64 cos(f64)", "0"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("cannot connect"));
}

TEST(CliUsageTest, HelpAndUsageErrors) {
  CliResult help = RunCli({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("call LIBRARY 'DECLARATION'"));
  EXPECT_THAT(help.out, HasSubstr("--address"));
  EXPECT_EQ(RunCli({}).exit_code, 2);
  CliResult unknown = RunCli({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_EQ(RunCli({"--bogus", "call"}).exit_code, 2);
}

}  // namespace
}  // namespace ffibroker::testing
