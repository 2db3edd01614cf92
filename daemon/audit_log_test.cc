#include "daemon/audit_log.h"

#include <random>
#include <string>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

// Parses `line` (without its "\n") with protobuf's JSON parser.
google::protobuf::Struct ParseLine(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  google::protobuf::Struct parsed;
  auto status = google::protobuf::util::JsonStringToMessage(line.substr(0, line.size() - 1),
                                                            &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << line;
  return parsed;
}

TEST(ValidUtf8Test, KeepsWellFormedText) {
  for (const std::string& s : std::vector<std::string>{"", "plain", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80",
                              "\xEF\xBF\xBD", std::string("nul\0inside", 10)}) {
    EXPECT_EQ(ValidUtf8(s), s);
  }
}

TEST(ValidUtf8Test, ReplacesEachBadByte) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(ValidUtf8("a\xFF" "b"), "a" + r + "b");
  EXPECT_EQ(ValidUtf8("\xC0\xAF"), r + r);              // overlong '/'
  EXPECT_EQ(ValidUtf8("\xED\xA0\x80"), r + r + r);      // a surrogate
  EXPECT_EQ(ValidUtf8("\xF4\x90\x80\x80"), r + r + r + r);  // past U+10FFFF
  EXPECT_EQ(ValidUtf8("\xE2\x82"), r + r);              // cut short
  EXPECT_EQ(ValidUtf8("\x80x"), r + "x");               // a stray continuation
}

TEST(AuditLogTest, LineHasTheDocumentedFieldNames) {
  v1::AuditRecord record;
  record.set_event("grant_token");
  record.set_principal("host");
  record.set_session(SessionField(3));
  record.set_token_id("9f00");
  record.set_expires_unix_seconds("1767225600");
  google::protobuf::Struct line = ParseLine(AuditLog::FormatLine(record));
  EXPECT_EQ(line.fields().at("event").string_value(), "grant_token");
  EXPECT_EQ(line.fields().at("principal").string_value(), "host");
  EXPECT_EQ(line.fields().at("session").string_value(), "s3");
  EXPECT_EQ(line.fields().at("token_id").string_value(), "9f00");
  EXPECT_EQ(line.fields().at("expires_unix_seconds").string_value(), "1767225600");
  EXPECT_EQ(line.fields().count("library"), 0u);  // unset fields are left out
}

// A field quotes what a client sent, which may be megabytes (a 16 MiB
// token_id made a 32 MiB line): each is cut, and the line stays valid.
TEST(AuditLogTest, AHugeFieldIsCut) {
  v1::AuditRecord record;
  record.set_event("deny_revoke_token");
  record.set_token_id(std::string(1 << 20, 'a'));
  record.set_library(std::string(3 * kMaxAuditFieldBytes, '\xff'));
  const std::string text = AuditLog::FormatLine(record);
  EXPECT_LT(text.size(), 3 * kMaxAuditFieldBytes);
  google::protobuf::Struct line = ParseLine(text);
  const std::string token_id = line.fields().at("token_id").string_value();
  EXPECT_EQ(token_id.substr(0, 10), "aaaaaaaaaa");
  EXPECT_NE(token_id.find("more bytes)"), std::string::npos) << token_id.substr(4090);
  EXPECT_LT(line.fields().at("library").string_value().size(), kMaxAuditFieldBytes + 64);
}

TEST(AuditLogTest, EveryLineIsValidJsonWhateverTheBytes) {
  std::mt19937 random(14);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(1 + random() % 40, '\0');
    for (char& c : bytes) c = static_cast<char>(random() % 256);
    v1::AuditRecord record;
    record.set_event("deny_open_library");
    record.set_library(bytes);
    record.set_reason(bytes + "\"\\\n");
    google::protobuf::Struct line = ParseLine(AuditLog::FormatLine(record));
    EXPECT_EQ(line.fields().at("library").string_value(), ValidUtf8(bytes));
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace ffibroker
