// The ffibroker CLI with classes: struct literals, handles, strings,
// buffers, errno, and each rejection.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kPoint[] = "--class=Point { mut f64 x; f64 y; } ~point_free";

class ClassesCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto daemon = TestDaemon::Start();
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = std::move(*daemon);
  }
  CliResult Call(std::vector<std::string> args, std::vector<std::string> classes = {kPoint}) {
    args.insert(args.begin(), "call");
    args.insert(args.begin(), classes.begin(), classes.end());
    args.insert(args.begin(), "--address=" + daemon_->address());
    return RunCli(args);
  }
  std::unique_ptr<TestDaemon> daemon_;
};

TEST_F(ClassesCliTest, StructsHandlesStringsBuffersErrno) {
  CliResult r = Call({"classes", "Point make_point(f64, f64)", "1.5", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{x=1.5, y=2}\n");
  r = Call({"classes", "f64 point_norm2(Point)", "{y=4, x=3}"});
  EXPECT_EQ(r.out, "25\n") << r.err;
  r = Call({"classes", "Point* point_new(f64, f64)", "1", "2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::MatchesRegex("#[0-9]+ \\{x=1, y=2\\}\n"));
  r = Call({"classes", "Point* maybe_point(i32)", "0"});
  EXPECT_EQ(r.out, "null\n") << r.err;
  r = Call({"classes", "void point_scale(Point* p, f64 k)", "{x=1, y=2}", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::MatchesRegex("p = #[0-9]+ \\{x=3, y=6\\}\n"));
  r = Call({"classes", "f64 point_sum(Point*? p)", "null"});
  EXPECT_EQ(r.out, "-1\n") << r.err;
  r = Call({"classes", "u64 str_len(cstr)", "h\xc3\xa9llo"});
  EXPECT_EQ(r.out, "6\n") << r.err;
  r = Call({"classes", "cstr greet()"});
  EXPECT_EQ(r.out, "\"h\\303\\251llo\"\n") << r.err;
  r = Call({"classes", "void fill(out u8[n] buf, u64 n, u8 v)", "-", "2", "255"});
  EXPECT_EQ(r.out, "buf = hex:ffff\n") << r.err;
  r = Call({"classes", "u32 sum_bytes(in u8[n] buf, u64 n)", "hex:0102", "2"});
  EXPECT_EQ(r.out, "3\n") << r.err;
  r = Call({"classes", "errno i32 fail_with(i32)", "34"});
  EXPECT_EQ(r.out, "-1\nerrno = 34\n") << r.err;
  r = Call({"classes", "ffireturn i64 Counter__value(Counter*? self)", "null"},
           {"--class=opaque Counter"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("ArgIsNull"));
}

TEST_F(ClassesCliTest, Rejections) {
  CliResult r = Call({"classes", "f64 point_norm2(Point)", "{x=3}"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("field 'y'"));
  r = Call({"classes", "f64 point_norm2(Point)", "{x=3, z=1}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("no field 'z'"));
  r = Call({"classes", "f64 point_norm2(Pont)", "{x=3}"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("column 17"));
  r = Call({"classes", "f64 f(Point)", "{}"}, {"--class=Point { f64 x; f64 x; }"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("declared twice"));
  r = Call({"classes", "u32 sum_bytes(in u8[n] buf, u64 n)", "hex:010", "2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not valid hex"));
  r = Call({"classes", "u32 sum_bytes(in u8[n] buf, u64 n)", "hex:01", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("1 bytes given"));
  r = Call({"classes", "Flagged bad_flag()"}, {"--class=Flagged { bool flag; i32 kind; }"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("DATA_LOSS"));
  EXPECT_THAT(r.err, HasSubstr("field 'flag'"));
}

}  // namespace
}  // namespace ffibroker::testing
