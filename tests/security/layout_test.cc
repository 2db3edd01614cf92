// Finding 1 of issue 9: layout arithmetic. A class definition can no longer
// describe a layout whose sizes overflow, nest without bound or cost the
// daemon unbounded descriptor memory; every such request is a precise error
// and the daemon keeps serving.
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ffibroker/instance.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

using ::testing::HasSubstr;

// A field type u8[l0][l1]...: lengths[0] is the outermost.
v1::Type NestedArray(const std::vector<uint32_t>& lengths, v1::Scalar scalar = v1::SCALAR_U8) {
  v1::Type type;
  type.set_scalar(scalar);
  for (auto it = lengths.rbegin(); it != lengths.rend(); ++it) {
    v1::Type outer;
    *outer.mutable_array()->mutable_element() = type;
    outer.mutable_array()->set_length(*it);
    type = outer;
  }
  return type;
}

v1::ClassDefinition ClassOf(const std::string& name,
                            const std::vector<std::pair<std::string, v1::Type>>& fields) {
  v1::ClassDefinition def;
  def.set_name(name);
  for (const auto& [field, type] : fields) {
    v1::FieldDefinition* f = def.add_fields();
    f->set_name(field);
    *f->mutable_type() = type;
    f->set_mutable_(true);
  }
  return def;
}

v1::Type U8() {
  v1::Type t;
  t.set_scalar(v1::SCALAR_U8);
  return t;
}

// Resident memory of `pid` in KiB (VmRSS in /proc/PID/status), or -1.
long RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class LayoutTest : public DaemonSessionTest {
 protected:
  // The daemon is alive and answers the next request of the same session.
  void ExpectServing() {
    ASSERT_TRUE(daemon_->alive());
    auto layout = session_->RegisterClass(
        absl::StrCat("After", ++after_, " { u8 a; u64 b; }"));
    ASSERT_TRUE(layout.ok()) << layout.status();
    EXPECT_EQ(layout->size(), 16u);
  }
  void ExpectError(const absl::Status& status, absl::StatusCode code,
                   const std::vector<std::string>& fragments) {
    EXPECT_EQ(status.code(), code) << status;
    for (const std::string& f : fragments) {
      EXPECT_THAT(std::string(status.message()), HasSubstr(f)) << status;
    }
  }
  int after_ = 0;
};

// The reproduction: u8[15][4096]^5 is 15 * 2^60 bytes; a field after
// it sits at an offset past 2^64 (wrapped), the class reported size 64.
TEST_F(LayoutTest, NestedArraysWhoseSizeOverflowsAreRejected) {
  for (const std::vector<uint32_t>& lengths :
       std::vector<std::vector<uint32_t>>{{15, 4096, 4096, 4096, 4096, 4096},
                                          {16, 4096, 4096, 4096, 4096, 4096},
                                          {4096, 4096, 4096, 4096, 4096, 4096, 4096, 4096}}) {
    auto layout = session_->RegisterClass(
        ClassOf("Wrapped", {{"big", NestedArray(lengths)}, {"tail", U8()}}));
    ExpectError(layout.status(), absl::StatusCode::kInvalidArgument,
                {"class 'Wrapped', field 'big'", "limit"});
    ExpectServing();
  }
}

// Fields whose sizes add up to 2^64 - 64, then `tail` (u8[128]): tail's
// offset wraps to -64 and the class reported size 64. NewInstance wrote the
// client's 128 tail bytes from 64 bytes before the daemon's buffer (heap
// corruption), ReadFields threw std::out_of_range; both aborted the daemon.
v1::ClassDefinition WrappedClass() {
  return ClassOf("Wrapped", {{"f0", NestedArray({15, 4096, 4096, 4096, 4096, 4096})},
                             {"f1", NestedArray({4095, 4096, 4096, 4096, 4096})},
                             {"f2", NestedArray({4095, 4096, 4096, 4096})},
                             {"f3", NestedArray({4095, 4096, 4096})},
                             {"f4", NestedArray({4095, 4096})},
                             {"f5", NestedArray({4032})},
                             {"tail", NestedArray({128})}});
}

TEST_F(LayoutTest, AClassWithAWrappedOffsetCannotBeInstantiatedOrRead) {
  auto layout = session_->RegisterClass(WrappedClass());
  EXPECT_FALSE(layout.ok()) << layout->DebugString();
  ExpectError(layout.status(), absl::StatusCode::kInvalidArgument,
              {"field 'f0'", "limit of"});
  auto lib = session_->OpenLibrary("classes", {"void fill(out u8[n] buf, u64 n, u8 v)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  v1::Value tail;
  for (int i = 0; i < 128; ++i) *tail.mutable_array_value()->add_elements() = ToValue(uint8_t{0xee});
  v1::Value fields;
  v1::FieldValue* f = fields.mutable_struct_value()->add_fields();
  f->set_name("tail");
  *f->mutable_value() = tail;
  ExpectError((*lib)->NewInstance("Wrapped", fields).status(), absl::StatusCode::kNotFound,
              {"'Wrapped' is not registered"});
  auto zeroed = (*lib)->NewInstance("Wrapped");
  ExpectError(zeroed.status(), absl::StatusCode::kNotFound, {"'Wrapped' is not registered"});
  if (zeroed.ok()) (void)(*zeroed)->Read();
  ExpectServing();
}

// u8[4096][4096] is 16 MiB, u8[4096][4096][2] 32 MiB: NewInstance of the
// latter threw std::bad_alloc past the buffer limit, now the class is
// rejected naming the limit.
TEST_F(LayoutTest, ClassSizeAndValueCountAreCapped) {
  ExpectError(session_->RegisterClass(
                         ClassOf("Huge", {{"a", NestedArray({4096, 4096}, v1::SCALAR_F64)}}))
                  .status(),
              absl::StatusCode::kInvalidArgument, {"16777216"});
  ExpectError(session_->RegisterClass(ClassOf("Many", {{"a", NestedArray({4096, 32})}}))
                  .status(),
              absl::StatusCode::kInvalidArgument, {"65536"});
  ExpectServing();
}

TEST_F(LayoutTest, ArrayNestingIsCapped) {
  std::vector<uint32_t> deep(9, 1);
  ExpectError(session_->RegisterClass(ClassOf("Deep", {{"a", NestedArray(deep)}})).status(),
              absl::StatusCode::kInvalidArgument, {"nesting", "8"});
  deep.pop_back();
  auto ok = session_->RegisterClass(ClassOf("Deep", {{"a", NestedArray(deep)}}));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->size(), 1u);
  ExpectServing();
}

// ReadFields of a class at the value-count limit returns every value; of
// the wrapped class it threw std::out_of_range (the class no longer
// registers, see above).
TEST_F(LayoutTest, ReadFieldsOfTheLargestClassWorks) {
  auto layout = session_->RegisterClass(
      ClassOf("Big", {{"head", U8()}, {"body", NestedArray({16, 4096})}, {"tail", U8()}}));
  ASSERT_FALSE(layout.ok());  // 65538 values, the limit is 65536
  layout = session_->RegisterClass(
      ClassOf("Big", {{"body", NestedArray({16, 4095})}, {"tail", NestedArray({16}, v1::SCALAR_U64)}}));
  ASSERT_TRUE(layout.ok()) << layout.status();
  EXPECT_EQ(layout->size(), 16u * 4095 + 128);
  auto lib = session_->OpenLibrary("classes", {"void fill(out u8[n] buf, u64 n, u8 v)"});
  ASSERT_TRUE(lib.ok()) << lib.status();
  v1::Value tail;
  for (int i = 0; i < 16; ++i) {
    v1::Value v;
    v.set_uint_value(~uint64_t{0} - i);
    *tail.mutable_array_value()->add_elements() = v;
  }
  v1::Value fields;
  v1::FieldValue* f = fields.mutable_struct_value()->add_fields();
  f->set_name("tail");
  *f->mutable_value() = tail;
  auto instance = (*lib)->NewInstance("Big", fields);
  ASSERT_TRUE(instance.ok()) << instance.status();
  auto read = (*instance)->Read();
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->struct_value().fields_size(), 2);
  EXPECT_EQ(read->struct_value().fields(0).value().array_value().elements_size(), 16);
  EXPECT_EQ(read->struct_value().fields(1).value().array_value().elements(15).uint_value(),
            ~uint64_t{0} - 15);
  ExpectServing();
}

// One ~70 KB RegisterClass (256 fields, each 45 nested arrays of 4095:
// odd lengths, so the wrapped sizes never reach 0, which libffi refused;
// deeper ones hit protobuf's recursion limit) allocated 32 KiB per nesting
// level: +370 MB for the session's life.
// Now it is refused before anything is allocated, and what a session may
// hold in descriptors is capped.
TEST_F(LayoutTest, RegisterClassCannotGrowTheDaemon) {
  long before = RssKib(daemon_->pid());
  ASSERT_GT(before, 0);
  std::vector<std::pair<std::string, v1::Type>> fields;
  for (int i = 0; i < 256; ++i) {
    fields.emplace_back(absl::StrCat("f", i), NestedArray(std::vector<uint32_t>(45, 4095)));
  }
  v1::ClassDefinition deep = ClassOf("Deep", fields);
  ASSERT_GT(deep.ByteSizeLong(), 60000u);
  for (int i = 0; i < 3; ++i) {
    ExpectError(session_->RegisterClass(deep).status(), absl::StatusCode::kInvalidArgument,
                {"nesting"});
  }
  // Legal classes, each as costly in descriptors as the limits allow, until
  // the session's descriptor memory is used up.
  fields.clear();
  for (int i = 0; i < 256; ++i) {
    fields.emplace_back(absl::StrCat("f", i), NestedArray(std::vector<uint32_t>(8, 2)));
  }
  absl::Status last;
  int registered = 0;
  for (int i = 0; i < 200 && last.ok(); ++i) {
    last = session_->RegisterClass(ClassOf(absl::StrCat("C", i), fields)).status();
    if (last.ok()) ++registered;
  }
  ExpectError(last, absl::StatusCode::kResourceExhausted, {"descriptor memory", "4194304"});
  EXPECT_GT(registered, 0);
  long after = RssKib(daemon_->pid());
  EXPECT_LT(after - before, 64 * 1024) << "daemon RSS grew from " << before << " to " << after
                                       << " KiB";
  ASSERT_TRUE(daemon_->alive());
  // Another session is unaffected.
  auto other = client_->CreateSession();
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_TRUE((*other)->RegisterClass(ClassOf("C0", fields)).ok());
}

}  // namespace
}  // namespace ffibroker::testing
