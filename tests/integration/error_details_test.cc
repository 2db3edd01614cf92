// Structured errors end to end (issue 13 item 2): every error carries a
// google.rpc.Status with an ErrorInfo (stable reason, metadata) and, for a
// bad argument, a BadRequest; the C++ client exposes them
// (ffibroker/error.h). Reasons are listed in docs/errors.md.
#include "ffibroker/error.h"

#include <grpcpp/support/error_details.h>

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

class ErrorDetailsTest : public DaemonSessionTest {};

TEST_F(ErrorDetailsTest, ArgumentOutOfRangeNamesTheArgument) {
  auto lib = session_->OpenLibrary("scalars", {"u8 id_u8(u8 byte)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status status = (*lib)->Call<uint8_t>("id_u8", 300).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(ErrorReason(status), "ARGUMENT_OUT_OF_RANGE");
  auto metadata = ErrorMetadataOf(status);
  EXPECT_THAT(metadata, Contains(Pair("argument", "1")));
  EXPECT_THAT(metadata, Contains(Pair("type", "u8")));
  EXPECT_THAT(metadata, Contains(Pair("value", "300")));
  auto violations = FieldViolationsOf(status);
  ASSERT_EQ(violations.size(), 1u);
  EXPECT_EQ(violations[0].first, "args[0]");
  EXPECT_THAT(violations[0].second, HasSubstr("300 is out of range for u8 (0..255)"));
  // The message is unchanged by the details.
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("id_u8: argument 1 (byte: u8): 300 is out of range for u8"));
}

TEST_F(ErrorDetailsTest, WrongValueMemberIsATypeMismatch) {
  auto lib = session_->OpenLibrary("scalars", {"u8 id_u8(u8 byte)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status status = (*lib)->CallValues("id_u8", {ToValue(1.5)}).status();
  EXPECT_EQ(ErrorReason(status), "ARGUMENT_TYPE_MISMATCH") << status;
  EXPECT_THAT(FieldViolationsOf(status), ElementsAre(Pair("args[0]", HasSubstr("f64_value"))));
}

TEST_F(ErrorDetailsTest, WorkerCrashNamesTheSignal) {
  auto lib = session_->OpenLibrary("crashy", {"i32 crash_segv()"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status status = (*lib)->Call<int32_t>("crash_segv").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(ErrorReason(status), "WORKER_CRASHED");
  EXPECT_THAT(ErrorMetadataOf(status), Contains(Pair("signal", "11")));
}

TEST_F(ErrorDetailsTest, TokenRevokedAndSessionNotFound) {
  auto token = session_->GrantToken();
  ASSERT_TRUE(token.ok()) << token.status();
  auto lib = session_->OpenLibrary("libm.so.6", {"f64 cos(f64)"}, token->token());
  ASSERT_TRUE(lib.ok()) << lib.status();
  ASSERT_TRUE(session_->RevokeToken(token->claims().token_id()).ok());
  absl::Status status = (*lib)->Call<double>("cos", 0.0).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(ErrorReason(status), "TOKEN_REVOKED");
  EXPECT_THAT(ErrorMetadataOf(status), Contains(Pair("token_id", token->claims().token_id())));

  auto other = NewSession();
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->Close().ok());
  status = other->OpenLibrary("libm.so.6", {"f64 cos(f64)"}).status();
  EXPECT_EQ(ErrorReason(status), "SESSION_NOT_FOUND") << status;
}

TEST_F(ErrorDetailsTest, UntaggedErrorsCarryTheirCodesName) {
  ASSERT_TRUE(session_->RegisterClass("opaque Counter").ok());
  absl::Status status = session_->RegisterClass("opaque Counter").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists) << status;
  EXPECT_EQ(ErrorReason(status), "ALREADY_EXISTS");
  EXPECT_TRUE(ErrorMetadataOf(status).empty());
}

TEST_F(ErrorDetailsTest, WireFormatIsGoogleRpcStatus) {
  grpc::ClientContext context;
  client_->Prepare(&context);
  v1::CallRequest request;
  request.set_session_id(session_->id());
  request.set_library_handle(12345);
  request.set_symbol("cos");
  v1::CallResponse response;
  grpc::Status status = client_->stub()->Call(&context, request, &response);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  google::rpc::Status details;
  ASSERT_TRUE(grpc::ExtractErrorDetails(status, &details).ok());
  EXPECT_EQ(details.code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(details.message(), status.error_message());
  ASSERT_GE(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "LIBRARY_NOT_OPEN");
  EXPECT_EQ(info.domain(), "ffibroker.v1");
}

TEST(ErrorDetailsHostileTest, ForbiddenSyscallNamesIt) {
  auto daemon = TestDaemon::StartWithPolicy(HostilePolicy());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("hostile", {"i32 h_ptrace()"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status status = (*lib)->Call<int32_t>("h_ptrace").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(ErrorReason(status), "SYSCALL_FORBIDDEN");
  EXPECT_THAT(ErrorMetadataOf(status), Contains(Pair("syscall", "101")));
}

}  // namespace
}  // namespace ffibroker::testing
