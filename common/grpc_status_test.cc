#include "common/grpc_status.h"

#include <string>

#include "common/error_reason.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

TEST(BoundedStatusTextTest, ShortTextIsKeptAsIs) {
  EXPECT_EQ(BoundedStatusText("symbol 'cos' … not found\n\tin libm", 100),
            "symbol 'cos' … not found\n\tin libm");
}

TEST(BoundedStatusTextTest, ControlCharactersAreWrittenOut) {
  EXPECT_EQ(BoundedStatusText(std::string("a\0b\x1b[31m\x7f", 9), 100), "a\\x00b\\x1b[31m\\x7f");
}

TEST(BoundedStatusTextTest, BytesThatAreNotUtf8AreWrittenOut) {
  // A stray continuation byte, a truncated sequence, an overlong '/', a
  // surrogate: each would make the client's parser refuse the message.
  EXPECT_EQ(BoundedStatusText("a\x80" "b\xc3", 100), "a\\x80b\\xc3");
  EXPECT_EQ(BoundedStatusText("\xc0\xaf \xed\xa0\x80", 100), "\\xc0\\xaf \\xed\\xa0\\x80");
  EXPECT_EQ(BoundedStatusText("\x01\x80", 4), "\\x01... (1 more bytes)");
}

TEST(BoundedStatusTextTest, LongTextIsCutAtACharacterStart) {
  // "é" is two bytes: a cut after 5 bytes would split the third one.
  const std::string text = "ééééé";
  EXPECT_EQ(BoundedStatusText(text, 5), "éé... (6 more bytes)");
  EXPECT_EQ(BoundedStatusText(std::string(5000, 'x'), 1024),
            std::string(1024, 'x') + "... (3976 more bytes)");
}

TEST(ToGrpcStatusTest, MessageMetadataAndViolationsAreBounded) {
  const std::string name(10000, 'n');
  absl::Status status = WithFieldViolation(
      WithReason(absl::NotFoundError("symbol '" + name + "' not found"), "SYMBOL_NOT_FOUND",
                 {{"symbol", name}}),
      "symbol", "'" + name + "' is not exported");
  grpc::Status out = ToGrpcStatus(status);
  EXPECT_EQ(out.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_LT(out.error_message().size(), kMaxStatusMessageBytes + 40);
  EXPECT_LT(out.error_details().size(), 2 * kMaxStatusMessageBytes);
  // The client reads the same reason back, its metadata cut.
  absl::Status back = FromGrpcStatus(out);
  EXPECT_EQ(ErrorReason(back), "SYMBOL_NOT_FOUND");
  EXPECT_LT(ErrorMetadataOf(back).at("symbol").size(), 300u);
  ASSERT_EQ(FieldViolationsOf(back).size(), 1u);
}

}  // namespace
}  // namespace ffibroker
