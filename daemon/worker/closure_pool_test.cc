// ClosurePool: trampolines made once, bound and unbound without new
// mappings, never writable and executable at once.
#include "daemon/worker/closure_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "common/limits.h"
#include "common/signature.h"
#include "common/type_table.h"
#include "gtest/gtest.h"

namespace ffibroker {
namespace {

// The callback type of parameter 0 of `decl`, kept alive by `holder`.
TypeRef CallbackTypeOf(const std::string& decl, ResolvedSignature* holder) {
  absl::StatusOr<Declaration> d = ParseDeclaration(decl);
  EXPECT_TRUE(d.ok()) << d.status();
  absl::StatusOr<ResolvedSignature> sig = ResolveSignature(d->signature, ClassTable());
  EXPECT_TRUE(sig.ok()) << sig.status();
  *holder = *sig;
  return holder->params[0];
}

// Answers i32(i32) callbacks with x * 10 + id, f64(f64, i32) with x * k.
class FakeSink : public CallbackSink {
 public:
  void Invoke(uint64_t id, const TypeDesc& type, void* ret, void** args) override {
    ++invocations;
    last_id = id;
    if (type.callback->sig.result->size == 8) {  // f64(f64 x, i32 k)
      double x;
      int32_t k;
      std::memcpy(&x, args[0], 8);
      std::memcpy(&k, args[1], 4);
      *static_cast<double*>(ret) = x * k;
      return;
    }
    int32_t x;
    std::memcpy(&x, args[0], 4);
    *static_cast<ffi_arg*>(ret) = static_cast<ffi_arg>(x * 10 + static_cast<int32_t>(id));
  }
  [[noreturn]] void Unbound(uint64_t last) override {
    ::_exit(static_cast<int>(40 + last));  // the death test reads the id
  }
  int invocations = 0;
  uint64_t last_id = 0;
};

using IntFn = int32_t (*)(int32_t);
using DoubleFn = double (*)(double, int32_t);

// The permissions of the mapping holding `address` ("r-xp"), from /proc.
std::string PermissionsOf(const void* address) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const uintptr_t a = reinterpret_cast<uintptr_t>(address);
  while (std::getline(maps, line)) {
    uintptr_t lo = 0, hi = 0;
    char perms[5] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) == 3 && a >= lo && a < hi) {
      return perms;
    }
  }
  return "";
}

TEST(ClosurePoolTest, BoundClosuresRunTheSinkWithTheirIdAndType) {
  FakeSink sink;
  absl::StatusOr<std::unique_ptr<ClosurePool>> pool = ClosurePool::Create(4, &sink);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ResolvedSignature h1, h2;
  TypeRef int_fn = CallbackTypeOf("void f(fn(i32 x) -> i32 cb)", &h1);
  TypeRef double_fn = CallbackTypeOf("void f(fn(f64 x, i32 k) -> f64 cb)", &h2);
  absl::StatusOr<void*> a = (*pool)->Bind(7, *int_fn, false);
  absl::StatusOr<void*> b = (*pool)->Bind(9, *double_fn, true);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(reinterpret_cast<IntFn>(*a)(5), 57);
  EXPECT_DOUBLE_EQ(reinterpret_cast<DoubleFn>(*b)(1.25, 4), 5.0);
  EXPECT_EQ(sink.invocations, 2);
  EXPECT_EQ((*pool)->bound(), 2u);
  // The same id again in a nested call shares the slot.
  absl::StatusOr<void*> again = (*pool)->Bind(7, *int_fn, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *a);
  (*pool)->EndCall(7);
  EXPECT_EQ((*pool)->bound(), 2u);
  (*pool)->EndCall(7);
  EXPECT_EQ((*pool)->bound(), 1u);
  // A persistent binding stays after calls until released.
  (*pool)->EndCall(9);
  EXPECT_EQ((*pool)->bound(), 1u);
  EXPECT_TRUE((*pool)->Release(9));
  EXPECT_FALSE((*pool)->Release(9));
  EXPECT_EQ((*pool)->bound(), 0u);
}

TEST(ClosurePoolTest, TrampolinesAreExecutableButNeverWritable) {
  FakeSink sink;
  absl::StatusOr<std::unique_ptr<ClosurePool>> pool = ClosurePool::Create(200, &sink);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ResolvedSignature h;
  TypeRef int_fn = CallbackTypeOf("void f(fn(i32 x) -> i32 cb)", &h);
  absl::StatusOr<void*> code = (*pool)->Bind(1, *int_fn, false);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(PermissionsOf(*code), "r-xp");
  // Binding again (rewriting libffi's part of the closure) maps nothing and
  // changes no protection.
  (*pool)->EndCall(1);
  code = (*pool)->Bind(2, *int_fn, false);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(PermissionsOf(*code), "r-xp");
  EXPECT_EQ(reinterpret_cast<IntFn>(*code)(1), 12);
}

TEST(ClosurePoolTest, AnUnboundClosureReportsItsLastIdInsteadOfJumping) {
  EXPECT_EXIT(
      {
        FakeSink sink;
        auto pool = ClosurePool::Create(2, &sink);
        ResolvedSignature h;
        TypeRef int_fn = CallbackTypeOf("void f(fn(i32 x) -> i32 cb)", &h);
        void* code = *(*pool)->Bind(3, *int_fn, false);
        (*pool)->EndCall(3);
        reinterpret_cast<IntFn>(code)(1);
      },
      ::testing::ExitedWithCode(43), "");
  EXPECT_EXIT(
      {
        FakeSink sink;
        auto pool = ClosurePool::Create(2, &sink);
        ResolvedSignature h;
        TypeRef int_fn = CallbackTypeOf("void f(fn(i32 x) -> i32 cb)", &h);
        void* code = *(*pool)->Bind(5, *int_fn, true);
        reinterpret_cast<IntFn>(code)(1);  // bound: answered
        (*pool)->Release(5);
        reinterpret_cast<IntFn>(code)(1);
      },
      ::testing::ExitedWithCode(45), "");
}

TEST(ClosurePoolTest, CountIsLimitedAndExhaustionIsAnError) {
  FakeSink sink;
  absl::StatusOr<std::unique_ptr<ClosurePool>> too_many =
      ClosurePool::Create(kMaxCallbackClosures + 1, &sink);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(too_many.status().message().find("1024"), std::string::npos);
  absl::StatusOr<std::unique_ptr<ClosurePool>> pool = ClosurePool::Create(1, &sink);
  ASSERT_TRUE(pool.ok());
  ResolvedSignature h;
  TypeRef int_fn = CallbackTypeOf("void f(fn(i32 x) -> i32 cb)", &h);
  ASSERT_TRUE((*pool)->Bind(1, *int_fn, false).ok());
  absl::StatusOr<void*> second = (*pool)->Bind(2, *int_fn, false);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*pool)->Bind(0, *int_fn, false).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<ClosurePool>> none = ClosurePool::Create(0, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)->Bind(1, *int_fn, false).status().code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace ffibroker
