// Calls on a library opened with a token that has a call quota, when the
// daemon keeps a token journal (--state-dir): the charge writes the journal
// (an fsync), so it is taken on the daemon's journal thread, not on the
// gRPC thread, with its own copy of the request. Each pipelined call must
// still run with its own arguments, and the quota must count every call
// and every call of a batch. Instance and static operations take the same
// path and count the same.
#include <sys/stat.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "ffibroker/call_stream.h"
#include "ffibroker/instance.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

constexpr char kAdd[] = "i64 i64_plus_one(i64 v)";

// A directory of its own for the key and the journal, removed afterwards.
struct ScratchDir {
  ScratchDir() {
    std::string templ = ::testing::TempDir() + "/ffib-journaled-XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path = templ;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

// A daemon that keeps a token journal in a directory of its own, and a
// session of a client of it.
class JournaledQuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path.empty());
    const std::string secret = dir_.path + "/token.key";
    std::ofstream(secret) << std::string(48, 'q');
    ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
    auto daemon = TestDaemon::Start(absl::StrCat("token_secret_file: \"", secret, "\"\n"),
                                    {"--state-dir=" + dir_.path + "/state"});
    ASSERT_TRUE(daemon.ok()) << daemon.status();
    daemon_ = *std::move(daemon);
    auto client = daemon_->Connect();
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    auto session = client_->CreateSession();
    ASSERT_TRUE(session.ok()) << session.status();
    session_ = *std::move(session);
  }

  ScratchDir dir_;
  std::unique_ptr<TestDaemon> daemon_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Session> session_;
};

TEST_F(JournaledQuotaTest, PipelinedCallsKeepTheirArgumentsAndEveryCallCounts) {
  Session* session = session_.get();
  v1::GrantTokenRequest scope;
  scope.set_call_quota(8);
  auto token = session->GrantToken(scope);
  ASSERT_TRUE(token.ok()) << token.status();
  auto lib = session->OpenLibrary("scalars", {kAdd}, token->token());
  ASSERT_TRUE(lib.ok()) << lib.status();

  auto stream = session->OpenStream();
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::map<uint64_t, int64_t> argument;
  for (int64_t x = 100; x < 105; ++x) {
    auto id = (*stream)->Send(**lib, "i64_plus_one", {ToValue(x)});
    ASSERT_TRUE(id.ok()) << id.status();
    argument[*id] = x;
  }
  for (int i = 0; i < 5; ++i) {
    auto r = (*stream)->Receive();
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status().code(), 0) << r->status().message();
    ASSERT_EQ(argument.count(r->id()), 1u);
    EXPECT_EQ(r->call().result().int_value(), argument[r->id()] + 1) << "request " << r->id();
  }
  EXPECT_TRUE((*stream)->Close().ok());

  // 3 of 8 left: a batch of 4 is refused whole, a batch of 2 runs.
  std::vector<v1::BatchCall> four(4), two(2);
  for (auto* batch : {&four, &two}) {
    for (v1::BatchCall& call : *batch) {
      call.set_symbol("i64_plus_one");
      *call.add_args() = ToValue(int64_t{1});
    }
  }
  auto refused = (*lib)->CallBatch(four);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  EXPECT_THAT(std::string(refused.status().message()), ::testing::HasSubstr("was opened with a token"));
  auto ran = (*lib)->CallBatch(two);
  ASSERT_TRUE(ran.ok()) << ran.status();
  ASSERT_EQ(ran->outcomes_size(), 2);
  EXPECT_EQ(ran->outcomes(1).response().result().int_value(), 2);

  // The last call of the quota, then a refusal naming the token.
  EXPECT_TRUE((*lib)->Call<int64_t>("i64_plus_one", int64_t{1}).ok());
  auto over = (*lib)->Call<int64_t>("i64_plus_one", int64_t{1});
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_THAT(std::string(over.status().message()), ::testing::HasSubstr("call quota"));
}

TEST_F(JournaledQuotaTest, InstanceAndStaticOperationsCountAndKeepTheirRequests) {
  Session* session = session_.get();
  ASSERT_TRUE(session->RegisterClass("Point { mut f64 x; f64 y; }").ok());
  v1::GrantTokenRequest scope;
  scope.set_call_quota(6);
  auto token = session->GrantToken(scope);
  ASSERT_TRUE(token.ok()) << token.status();
  auto lib = session->OpenLibrary("classes", {"f64 point_sum(Point*? p)"},
                                     {"mut i32 counter_static"}, token->token());
  ASSERT_TRUE(lib.ok()) << lib.status();
  auto p = (*lib)->NewInstance("Point", StructOf({{"y", ToValue(0.25)}}));  // 1
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE((*p)->Set("x", ToValue(2.5)).ok());                            // 2
  EXPECT_EQ(*(*p)->Get<double>("x"), 2.5);                                   // 3
  ASSERT_TRUE((*lib)->WriteStatic("counter_static", ToValue(9)).ok());       // 4
  auto counter = (*lib)->ReadStatic("counter_static");                       // 5
  ASSERT_TRUE(counter.ok()) << counter.status();
  EXPECT_EQ(counter->int_value(), 9);
  auto freed = (*p)->Free();                                                 // 6
  ASSERT_TRUE(freed.ok()) << freed.status();
  auto over = (*lib)->ReadStatic("counter_static");
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted) << over.status();
  EXPECT_THAT(std::string(over.status().message()), ::testing::HasSubstr("call quota"));
}

}  // namespace
}  // namespace ffibroker::testing
