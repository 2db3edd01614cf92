// Metrics (issue 14): a known workload, then the /metrics listener and
// `ffibroker metrics` both parsed with prometheus_client's parser
// (tests/ops/check_metrics.py) and checked against it.
#include <unistd.h>

#include <fstream>
#include <regex>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, ScrapesParseAndCountTheWorkload) {
  // The daemon's own call limit ends `hang` (a client deadline would race it).
  // GetMetrics (`ffibroker metrics`) needs read_metrics.
  auto daemon = TestDaemon::StartWithPolicy(
      absl::StrCat(TestDaemon::Catalogue(), "principals { name: \"test-user\" uids: ", ::getuid(),
                   " read_metrics: true permission { libraries { library: \"scalars\" }"
                   " libraries { library: \"crashy\" } operations: [OPEN_LIBRARY, GRANT_TOKEN] } }\n"
                   "limits { max_call_millis: 1500 }"),
      {"--metrics-listen=127.0.0.1:0"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  std::smatch match;
  std::string log = (*daemon)->ReadLog();
  ASSERT_TRUE(std::regex_search(log, match, std::regex("metrics on (http://127\\.0\\.0\\.1:[0-9]+/metrics)")))
      << log;
  const std::string url = match[1];

  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  {
    auto session = (*client)->CreateSession();
    ASSERT_TRUE(session.ok()) << session.status();
    auto scalars = (*session)->OpenLibrary("scalars", {"i8 neg_i8(i8)", "f64 f64_next_up(f64)"});
    ASSERT_TRUE(scalars.ok()) << scalars.status();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE((*scalars)->Call<int8_t>("neg_i8", int8_t{1}).ok());
    // A batch counts each of its calls: 3 neg_i8, 2 f64_next_up, then 1 neg_i8.
    std::vector<v1::BatchCall> batch(6);
    for (int i = 0; i < 6; ++i) {
      const bool next_up = i == 3 || i == 4;
      batch[i].set_symbol(next_up ? "f64_next_up" : "neg_i8");
      *batch[i].add_args() = next_up ? ToValue(1.0) : ToValue(int8_t{2});
    }
    auto batched = (*scalars)->CallBatch(batch);
    ASSERT_TRUE(batched.ok()) << batched.status();
    for (const auto& outcome : batched->outcomes()) EXPECT_EQ(outcome.status().code(), 0);
    auto crashy = (*session)->OpenLibrary("crashy", {"i32 crash_segv()", "i32 healthy(i32)"});
    ASSERT_TRUE(crashy.ok()) << crashy.status();
    EXPECT_FALSE((*crashy)->Call<int32_t>("crash_segv").ok());
    // The next call restarts the library's worker: a restart (and a start).
    auto healthy = (*crashy)->Call<int32_t>("healthy", int32_t{2});
    ASSERT_TRUE(healthy.ok()) << healthy.status();
  }
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  {
    auto crashy = (*session)->OpenLibrary("crashy", {"void hang()"});
    ASSERT_TRUE(crashy.ok()) << crashy.status();
    EXPECT_TRUE(absl::IsDeadlineExceeded((*crashy)->CallValues("hang", {}).status()));
  }
  auto held = (*session)->OpenLibrary("scalars", {"i8 neg_i8(i8)"});  // a worker in use
  ASSERT_TRUE(held.ok()) << held.status();
  auto granted = (*session)->GrantToken();
  ASSERT_TRUE(granted.ok()) << granted.status();
  v1::ExchangeTokenRequest exchange;
  exchange.set_token(granted->token());
  auto exchanged = (*session)->ExchangeToken(exchange);
  ASSERT_TRUE(exchanged.ok()) << exchanged.status();
  ASSERT_TRUE((*session)->RevokeToken(granted->claims().token_id()).ok());
  EXPECT_FALSE((*session)->RevokeToken("no-such-token").ok());  // a denial
  // An open with the revoked token: another denial.
  EXPECT_FALSE((*session)->OpenLibrary("scalars", {"i8 neg_i8(i8)"}, granted->token()).ok());
  // Workers the daemon stops itself are no crashes: an open whose symbol
  // is missing, and the status probe's worker.
  EXPECT_TRUE(absl::IsNotFound((*session)->OpenLibrary("scalars", {"i8 no_such(i8)"}).status()));
  ASSERT_TRUE((*client)->GetStatus().ok());

  const std::string check = std::string(FFIBROKER_SOURCE_DIR) + "/tests/ops/check_metrics.py";
  CliResult http = RunProgram({"/usr/bin/python3", check, url, FFIBROKER_SCALARS_LIB,
                               FFIBROKER_CRASHY_LIB});
  EXPECT_EQ(http.exit_code, 0) << http.out << http.err;

  CliResult cli = RunCli({"--address=" + (*daemon)->address(), "metrics"});
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  std::string file = (*daemon)->dir() + "/cli-metrics.txt";
  std::ofstream(file) << cli.out;
  CliResult parsed = RunProgram({"/usr/bin/python3", check, "--file", file,
                                 FFIBROKER_SCALARS_LIB, FFIBROKER_CRASHY_LIB});
  EXPECT_EQ(parsed.exit_code, 0) << parsed.out << parsed.err;
}

TEST(MetricsTest, NotServedUnlessConfiguredAndBadAddressesRefused) {
  auto daemon = TestDaemon::Start();
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  EXPECT_THAT((*daemon)->ReadLog(), ::testing::Not(HasSubstr("metrics on")));
  // GetMetrics names every principal's libraries and symbols: only for a
  // principal with read_metrics.
  CliResult denied = RunCli({"--address=" + (*daemon)->address(), "metrics"});
  EXPECT_EQ(denied.exit_code, 1) << denied.out;
  EXPECT_THAT(denied.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(denied.err, HasSubstr("principal 'test-user' may not read metrics"));
  EXPECT_THAT(denied.out, ::testing::Not(HasSubstr("ffibroker_calls_total")));
  auto bad = TestDaemon::Start("", {"--metrics-listen=localhost:http"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--metrics-listen=localhost:http"));
}

}  // namespace
}  // namespace ffibroker::testing
