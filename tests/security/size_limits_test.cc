// Finding 11 of issue 9: one table of size limits (common/limits.h,
// docs/limits.md). Every buffer size up to the documented maximum works end
// to end, in every direction; one byte more is RESOURCE_EXHAUSTED naming
// the limit; the same worker serves the next call.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

class SizeLimitsTest : public DaemonSessionTest {
 protected:
  void SetUp() override {
    // Generous call time: 16 MiB each way on a loaded 2-core machine.
    Adopt(TestDaemon::Start("limits { max_call_millis: 300000 }"));
    if (HasFatalFailure()) return;
    auto lib = session_->OpenLibrary(
        "classes", {"u32 sum_bytes(in u8[n] buf, u64 n)", "void fill(out u8[n] buf, u64 n, u8 v)",
                    "u64 xor_bytes(inout u8[n] buf, u64 n, u8 v)"});
    ASSERT_TRUE(lib.ok()) << lib.status();
    lib_ = std::move(*lib);
  }
  static std::string Pattern(uint64_t size) {
    std::string bytes(size, '\0');
    for (uint64_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 7 + i / 4099) & 0xff);
    return bytes;
  }
  std::unique_ptr<Library> lib_;
};

class BufferSizes : public SizeLimitsTest, public ::testing::WithParamInterface<uint64_t> {};

TEST_P(BufferSizes, InOutAndInoutBuffersWork) {
  const uint64_t size = GetParam();
  const pid_t worker = lib_->worker_pid();
  std::string data = Pattern(size);
  uint32_t sum = 0;
  for (unsigned char c : data) sum += c;
  auto in = lib_->CallValues("sum_bytes", {BytesValue(data), ToValue(size)});
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->result().uint_value(), sum);

  auto out = lib_->CallValues("fill", {BytesValue(""), ToValue(size), ToValue(uint8_t{0x5a})});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->outputs_size(), 1);
  EXPECT_EQ(out->outputs(0).value().bytes_value(), std::string(size, '\x5a'));

  auto inout = lib_->CallValues("xor_bytes", {BytesValue(data), ToValue(size), ToValue(uint8_t{0xff})});
  ASSERT_TRUE(inout.ok()) << inout.status();
  EXPECT_EQ(inout->result().uint_value(), size);
  ASSERT_EQ(inout->outputs_size(), 1);
  std::string expected = data;
  for (char& c : expected) c = static_cast<char>(~c);
  EXPECT_TRUE(inout->outputs(0).value().bytes_value() == expected);

  EXPECT_TRUE(daemon_->alive());
  EXPECT_EQ(lib_->worker_pid(), worker);
  EXPECT_TRUE(ProcessExists(worker));
}

INSTANTIATE_TEST_SUITE_P(Sizes, BufferSizes,
                         ::testing::Values(1 * kMiB, 2 * kMiB, 8 * kMiB, 16 * kMiB),
                         [](const auto& info) { return absl::StrCat(info.param >> 20, "MiB"); });

TEST_F(SizeLimitsTest, OneByteOverTheLimitIsResourceExhausted) {
  const uint64_t size = 16 * kMiB + 1;
  for (auto call : {lib_->CallValues("sum_bytes", {BytesValue(std::string(size, 'a')), ToValue(size)}),
                    lib_->CallValues("fill", {BytesValue(""), ToValue(size), ToValue(uint8_t{1})}),
                    lib_->CallValues("xor_bytes",
                                     {BytesValue(std::string(size, 'a')), ToValue(size), ToValue(uint8_t{1})})}) {
    EXPECT_EQ(call.status().code(), absl::StatusCode::kResourceExhausted) << call.status();
    EXPECT_THAT(std::string(call.status().message()), HasSubstr("limits.max_buffer_bytes 16777216"));
  }
  auto next = lib_->CallValues("sum_bytes", {BytesValue("\x01\x02"), ToValue(uint64_t{2})});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->result().uint_value(), 3u);
}

}  // namespace
}  // namespace ffibroker::testing
