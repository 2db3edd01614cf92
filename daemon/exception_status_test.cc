// ExceptionStatus: each kind of exception becomes its status.
#include "daemon/exception_status.h"

#include <new>
#include <stdexcept>

#include "gtest/gtest.h"

namespace ffibroker {
namespace {

absl::Status StatusOf(void (*thrower)()) {
  try {
    thrower();
  } catch (...) {
    return ExceptionStatus("starting the worker");
  }
  return absl::OkStatus();
}

TEST(ExceptionStatusTest, EachKindBecomesItsStatus) {
  absl::Status oom = StatusOf([] { throw std::bad_alloc(); });
  EXPECT_EQ(oom.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(oom.message(), "the daemon ran out of memory starting the worker");
  absl::Status std_error = StatusOf([] { throw std::runtime_error("boom"); });
  EXPECT_EQ(std_error.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(std_error.message(), "internal error starting the worker: boom");
  absl::Status other = StatusOf([] { throw 42; });
  EXPECT_EQ(other.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(other.message(), "internal error starting the worker");
}

}  // namespace
}  // namespace ffibroker
