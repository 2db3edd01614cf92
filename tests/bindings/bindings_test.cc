// The C++ header `ffibroker bindgen` writes for tests/bindings/classes.textproto,
// compiled and used against the real daemon (issue 13 item 5): typed
// parameters and results, the iroha_ffi-style class with its constructor,
// property, method, trait method and destructor, FfiReturn errors.
#include "classes_bindings.h"

#include "ffibroker/error.h"
#include "gtest/gtest.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker::testing {
namespace {

class BindingsTest : public DaemonSessionTest {};

TEST_F(BindingsTest, ModuleFunctionsHaveRealTypes) {
  auto lib = classes_bindings::Library::Open(*session_);
  ASSERT_TRUE(lib.ok()) << lib.status();
  std::string hello = "héllo";
  absl::StatusOr<uint64_t> n = (*lib)->str_len(&hello);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 6u);
  EXPECT_EQ(*(*lib)->str_len(nullptr), 999u);
  absl::StatusOr<std::optional<std::string>> greeting = (*lib)->greet();
  ASSERT_TRUE(greeting.ok()) << greeting.status();
  EXPECT_EQ(greeting->value(), "héllo");
  EXPECT_EQ(*(*lib)->sum_bytes(std::string("\x01\x02\x03", 3), 3), 6u);
  std::string buf = "abcd";
  ASSERT_TRUE((*lib)->reverse4(&buf).ok());
  EXPECT_EQ(buf, "dcba");
}

TEST_F(BindingsTest, IrohaStyleClassMapsOntoMethodsAndProperties) {
  auto lib = classes_bindings::Library::Open(*session_);
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::StatusOr<std::unique_ptr<classes_bindings::Counter>> counter =
      classes_bindings::Counter::New(**lib, 41);
  ASSERT_TRUE(counter.ok()) << counter.status();
  classes_bindings::Counter& c = **counter;
  ASSERT_TRUE(c.increment().ok());
  EXPECT_EQ(*c.value(), 42);
  ASSERT_TRUE(c.set_value(7).ok());
  EXPECT_EQ(*c.value(), 7);
  EXPECT_EQ(*c.Doubled_twice(), 14);
  absl::StatusOr<bool> destroyed = c.Free();  // Counter__drop ran
  ASSERT_TRUE(destroyed.ok()) << destroyed.status();
  EXPECT_TRUE(*destroyed);
}

TEST_F(BindingsTest, FfiReturnStatusIsAnError) {
  auto lib = classes_bindings::Library::Open(*session_);
  ASSERT_TRUE(lib.ok()) << lib.status();
  absl::Status status = classes_bindings::Counter::New(**lib, -1).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;  // ConversionFailed
  EXPECT_EQ(ErrorReason(status), "FFI_RETURN_ERROR");
  EXPECT_EQ(ErrorMetadataOf(status)["ffi_return"], "ConversionFailed");
}

}  // namespace
}  // namespace ffibroker::testing
