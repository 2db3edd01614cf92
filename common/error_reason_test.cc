#include "common/error_reason.h"

#include "common/grpc_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

TEST(ErrorReasonTest, DefaultReasonIsTheCodesName) {
  EXPECT_EQ(ErrorReason(absl::NotFoundError("x")), "NOT_FOUND");
  EXPECT_EQ(ErrorReason(absl::OkStatus()), "");
  EXPECT_TRUE(ErrorMetadataOf(absl::NotFoundError("x")).empty());
}

TEST(ErrorReasonTest, ReasonAndMetadataSurviveNewMessages) {
  absl::Status s = WithReason(absl::InvalidArgumentError("300 is out of range"),
                              "ARGUMENT_OUT_OF_RANGE", {{"type", "u8"}});
  s = WithMetadata(WithMessagePrefix(s, "argument 1: "), {{"argument", "1"}});
  s = WithNewMessage(s, "call failed: argument 1: 300 is out of range");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "call failed: argument 1: 300 is out of range");
  EXPECT_EQ(ErrorReason(s), "ARGUMENT_OUT_OF_RANGE");
  EXPECT_THAT(ErrorMetadataOf(s), ElementsAre(Pair("argument", "1"), Pair("type", "u8")));
  // A later reason replaces the earlier one; metadata keys are replaced.
  s = WithReason(s, "OTHER", {{"type", "u16"}});
  EXPECT_EQ(ErrorReason(s), "OTHER");
  EXPECT_EQ(ErrorMetadataOf(s)["type"], "u16");
}

TEST(ErrorReasonTest, OkStaysOk) {
  EXPECT_TRUE(WithReason(absl::OkStatus(), "X").ok());
  EXPECT_TRUE(WithFieldViolation(absl::OkStatus(), "f", "d").ok());
  EXPECT_TRUE(WithNewMessage(absl::OkStatus(), "m").ok());
}

TEST(ErrorReasonTest, RoundTripsThroughGrpcStatusDetails) {
  absl::Status s = WithFieldViolation(
      WithReason(absl::InvalidArgumentError("bad"), "ARGUMENT_OUT_OF_RANGE",
                 {{"argument", "2"}}),
      "args[1]", "300 is out of range for u8");
  grpc::Status wire = ToGrpcStatus(s);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(wire.error_message(), "bad");
  EXPECT_FALSE(wire.error_details().empty());
  absl::Status back = FromGrpcStatus(wire);
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(back), "ARGUMENT_OUT_OF_RANGE");
  EXPECT_THAT(ErrorMetadataOf(back), ElementsAre(Pair("argument", "2")));
  EXPECT_THAT(FieldViolationsOf(back), ElementsAre(Pair("args[1]", "300 is out of range for u8")));
}

TEST(ErrorReasonTest, UntaggedStatusGetsItsDefaultReasonOnTheWire) {
  absl::Status back = FromGrpcStatus(ToGrpcStatus(absl::UnavailableError("down")));
  EXPECT_EQ(ErrorReason(back), "UNAVAILABLE");
  // Without details (e.g. from gRPC itself) the default applies too.
  EXPECT_EQ(ErrorReason(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x"))),
            "UNAVAILABLE");
  EXPECT_TRUE(FieldViolationsOf(back).empty());
}

}  // namespace
}  // namespace ffibroker
