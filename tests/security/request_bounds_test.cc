// What one request can make the daemon do is bounded by its checks, not by
// its size: counts are checked before any text is parsed, an error that
// quotes what a request sent stays a readable status of bounded size, a
// token is never issued longer than the daemon accepts, and a request that
// has nothing to run still names a session that exists.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/error_reason.h"
#include "common/grpc_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class RequestBoundsTest : public DaemonSessionTest {
 protected:
  template <typename Request, typename Response, typename Method>
  absl::Status Send(Method method, const Request& request, Response* response) {
    grpc::ClientContext context;
    client_->Prepare(&context);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return FromGrpcStatus((client_->stub()->*method)(&context, request, response));
  }
};

// A client's long name, quoted in the error, used to push the status past
// gRPC's metadata limit: the client then saw RESOURCE_EXHAUSTED "received
// initial metadata size exceeds limit" instead of the real error.
TEST_F(RequestBoundsTest, AnErrorQuotingALongNameKeepsItsCode) {
  auto lib = session_->OpenLibrary("scalars", {"i64 i64_plus_one(i64)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  v1::CallRequest call;
  call.set_session_id(session_->id());
  call.set_library_handle((*lib)->handle());
  call.set_symbol(std::string(20000, 's'));
  v1::CallResponse call_response;
  absl::Status status = Send(&v1::Broker::Stub::Call, call, &call_response);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_LE(status.message().size(), kMaxStatusMessageBytes + 40);
  EXPECT_THAT(std::string(status.message()), HasSubstr("more bytes)"));

  v1::OpenLibraryRequest open;
  open.set_session_id(session_->id());
  open.set_library(std::string(20000, 'l'));
  open.add_symbols()->set_text("i64 i64_plus_one(i64)");
  v1::OpenLibraryResponse open_response;
  status = Send(&v1::Broker::Stub::OpenLibrary, open, &open_response);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;

  // A control character a name carried is written out, not passed on.
  call.set_symbol(std::string("i64_plus_one\0x", 14));
  status = Send(&v1::Broker::Stub::Call, call, &call_response);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("i64_plus_one\\x00x"));
  EXPECT_EQ(std::string(status.message()).find('\0'), std::string::npos);
}

// 6 million bad texts once made the daemon build a 1.1 GB list of errors.
TEST_F(RequestBoundsTest, ParseDeclarationsChecksItsCountsBeforeParsing) {
  v1::ParseDeclarationsRequest request;
  for (int i = 0; i < 257; ++i) request.add_functions("(");
  v1::ParseDeclarationsResponse response;
  absl::Status status = Send(&v1::Broker::Stub::ParseDeclarations, request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), "functions: 257 declared, at most 256");

  request.Clear();
  request.add_functions("i64 f(i64)");
  request.add_statics(std::string(64 * 1024 + 1, 'x'));
  status = Send(&v1::Broker::Stub::ParseDeclarations, request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), "statics[0]: the text is 65537 bytes, at most 65536");

  // Within the counts, every mistake is still listed.
  request.Clear();
  for (int i = 0; i < 256; ++i) request.add_functions("(");
  status = Send(&v1::Broker::Stub::ParseDeclarations, request, &response);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(response.errors_size(), 256);
}

TEST_F(RequestBoundsTest, AnOpenCountsItsDeclarationsBeforeParsingThem) {
  v1::OpenLibraryRequest open;
  open.set_session_id(session_->id());
  open.set_library("scalars");
  for (int i = 0; i < 300; ++i) open.add_symbols()->set_text("(");
  v1::OpenLibraryResponse response;
  absl::Status status = Send(&v1::Broker::Stub::OpenLibrary, open, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), "symbols: 300 declared, at most 256");
}

// The daemon signed a token of 400 symbols and then refused it as
// malformed (longer than the 16,384 characters Verify accepts).
TEST_F(RequestBoundsTest, ATokenTooLongToUseIsNotIssued) {
  v1::GrantTokenRequest grant;
  grant.set_session_id(session_->id());
  v1::GrantTokenLibrary* library = grant.add_libraries();
  library->set_library("scalars");
  for (int i = 0; i < 400; ++i) {
    library->add_symbols(absl::StrCat("a_rather_long_symbol_name_number_", i));
  }
  v1::GrantTokenResponse response;
  absl::Status status = Send(&v1::Broker::Stub::GrantToken, grant, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("a token may have"));

  // A narrower one is issued, and works.
  library->mutable_symbols()->DeleteSubrange(10, 390);
  status = Send(&v1::Broker::Stub::GrantToken, grant, &response);
  ASSERT_TRUE(status.ok()) << status;
  v1::InspectTokenRequest inspect;
  inspect.set_session_id(session_->id());
  inspect.set_token(response.token());
  v1::InspectTokenResponse inspected;
  status = Send(&v1::Broker::Stub::InspectToken, inspect, &inspected);
  EXPECT_TRUE(status.ok()) << status;
}

// An empty batch returned OK for any session id.
TEST_F(RequestBoundsTest, AnEmptyBatchStillNamesASessionAndALibrary) {
  v1::CallBatchRequest batch;
  batch.set_session_id("no-such-session");
  batch.set_library_handle(12345);
  v1::CallBatchResponse response;
  absl::Status status = Send(&v1::Broker::Stub::CallBatch, batch, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;

  batch.set_session_id(session_->id());
  status = Send(&v1::Broker::Stub::CallBatch, batch, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("no-such-session")));

  auto lib = session_->OpenLibrary("scalars", {"i64 i64_plus_one(i64)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  batch.set_library_handle((*lib)->handle());
  status = Send(&v1::Broker::Stub::CallBatch, batch, &response);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(response.outcomes_size(), 0);

  // On a library opened with a token, an empty batch takes nothing from
  // its quota, but the token must still be live.
  v1::GrantTokenRequest scope;
  scope.set_call_quota(1);
  auto token = session_->GrantToken(scope);
  ASSERT_TRUE(token.ok()) << token.status();
  Session::OpenOptions options;
  options.token = token->token();
  auto with_token = session_->OpenLibrary("scalars", {"i64 i64_plus_one(i64)"}, options);
  ASSERT_TRUE(with_token.ok()) << with_token.status();
  batch.set_library_handle((*with_token)->handle());
  status = Send(&v1::Broker::Stub::CallBatch, batch, &response);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(*(*with_token)->Call<int64_t>("i64_plus_one", int64_t{1}), 2);  // the quota's call
  ASSERT_TRUE(session_->RevokeToken(token->claims().token_id()).ok());
  status = Send(&v1::Broker::Stub::CallBatch, batch, &response);
  EXPECT_EQ(ErrorReason(status), "TOKEN_REVOKED") << status;
}

}  // namespace
}  // namespace ffibroker::testing
