// Structured errors end to end (issue 13 item 2): every error carries a
// google.rpc.Status with an ErrorInfo (stable reason, metadata) and, for a
// bad argument, a BadRequest; the C++ client exposes them
// (ffibroker/error.h). Reasons are listed in docs/errors.md.
#include "ffibroker/error.h"

#include <grpcpp/support/error_details.h>
#include <unistd.h>

#include <map>

#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "absl/strings/str_cat.h"
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

TEST_F(ErrorDetailsTest, WorkerExitNamesItsStatus) {
  auto lib = session_->OpenLibrary("crashy", {"i32 exit_midcall()"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status status = (*lib)->Call<int32_t>("exit_midcall").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(ErrorReason(status), "WORKER_EXITED");
  EXPECT_THAT(ErrorMetadataOf(status), Contains(Pair("exit_status", "7")));
}

TEST_F(ErrorDetailsTest, LibraryNotAllowedAndPermissionRevoked) {
  absl::Status status =
      session_->OpenLibrary("/lib/x86_64-linux-gnu/libc.so.6", {"i32 getpid()"}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(ErrorReason(status), "LIBRARY_NOT_ALLOWED");
  ASSERT_TRUE(session_->RevokePermissions().ok());
  status = session_->OpenLibrary("libm.so.6", {"f64 cos(f64)"}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(ErrorReason(status), "PERMISSION_REVOKED");
}

TEST_F(ErrorDetailsTest, ExpiredToken) {
  v1::GrantTokenRequest short_lived;
  short_lived.set_ttl_seconds(1);
  auto token = session_->GrantToken(short_lived);
  ASSERT_TRUE(token.ok()) << token.status();
  absl::Status status;
  // Expiry is decided by the daemon's clock; wait for it (a few seconds at most).
  ASSERT_TRUE(Eventually([&] {
    status = session_->OpenLibrary("libm.so.6", {"f64 cos(f64)"}, token->token()).status();
    return !status.ok();
  }));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  EXPECT_EQ(ErrorReason(status), "TOKEN_EXPIRED");
}

TEST(ErrorDetailsPolicyTest, SymbolAndOperationNotAllowed) {
  auto daemon = TestDaemon::StartWithPolicy(absl::StrCat(
      TestDaemon::Catalogue(), "principals { name: \"narrow\" uids: ", ::getuid(),
      " permission { libraries { library: \"libm.so.6\" allow_symbols: \"cos\" }"
      " libraries { library: \"classes\" } operations: [OPEN_LIBRARY] } }\n"));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  absl::Status status = (*session)->OpenLibrary("libm.so.6", {"f64 sin(f64)"}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(ErrorReason(status), "SYMBOL_NOT_ALLOWED");
  EXPECT_THAT(ErrorMetadataOf(status), Contains(Pair("symbol", "sin")));
  status = (*session)->OpenLibrary("classes", std::vector<std::string>{},
                                  std::vector<std::string>{"mut i32 counter_static"}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(ErrorReason(status), "OPERATION_NOT_ALLOWED");
  EXPECT_THAT(ErrorMetadataOf(status), Contains(Pair("operation", "WRITE_STATICS")));
}

TEST(ErrorDetailsPolicyTest, CallPastTheDeadlineKillsTheWorker) {
  auto daemon = TestDaemon::Start("limits { max_call_millis: 300 }\n");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("crashy", {"void hang()"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status status = (*lib)->Call<void>("hang");
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_EQ(ErrorReason(status), "WORKER_DEADLINE_EXCEEDED");
}

TEST(ErrorDetailsHostileTest, OutOfMemoryIsAResourceLimit) {
  ProfilesDir profiles(std::map<std::string, std::string>{
      {"small-memory", "description: \"strict in 192 MiB\"\ninclude: \"strict\"\n"
                       "address_space_mib: 192\n"}});
  auto daemon = TestDaemon::StartWithPolicy(
      HostilePolicy("confinement_profile: \"small-memory\" limits { max_call_millis: 60000 }"),
      {profiles.flag()});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto client = (*daemon)->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto session = (*client)->CreateSession();
  ASSERT_TRUE(session.ok()) << session.status();
  auto lib = (*session)->OpenLibrary("hostile", {"i32 h_malloc_bomb()"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status status = (*lib)->Call<int32_t>("h_malloc_bomb").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_EQ(ErrorReason(status), "WORKER_RESOURCE_LIMIT");
  EXPECT_TRUE(ErrorMetadataOf(status).count("signal")) << status;
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
