// class_latency: medians of a struct-by-value call and of a handle field
// read, next to a scalar call, through a real daemon started for the run
// (tests' TestDaemon, with the in-tree classes library).
//
// Usage: class_latency [--iterations=N]   (default 2000)
#include <cstdio>
#include <functional>
#include <vector>

#include "bench/median.h"
#include "common/cli_flags.h"
#include "ffibroker/instance.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker {
namespace {

int Run(int iterations) {
  auto daemon = testing::TestDaemon::Start();
  if (!daemon.ok()) return std::fprintf(stderr, "%s\n", daemon.status().ToString().c_str()), 1;
  auto client = (*daemon)->Connect();
  auto session = (*client)->CreateSession();
  if (!(*session)->RegisterClass("Point { mut f64 x; f64 y; } ~point_free").ok()) return 1;
  auto lib = (*session)->OpenLibrary(
      "classes", {"f64 point_norm2(Point p)", "f64 point_sum(Point*? p)", "u64 str_len(cstr? s)"});
  if (!lib.ok()) return std::fprintf(stderr, "%s\n", lib.status().ToString().c_str()), 1;
  auto p = (*lib)->NewInstance("Point", StructOf({{"x", ToValue(3.0)}, {"y", ToValue(4.0)}}));
  v1::Value point = StructOf({{"x", ToValue(3.0)}, {"y", ToValue(4.0)}});
  double scalar = MedianUs(iterations, [&] { return (*lib)->Call<uint64_t>("str_len", NullValue()).ok(); });
  double by_value = MedianUs(iterations, [&] { return (*lib)->Call<double>("point_norm2", point).ok(); });
  double by_handle = MedianUs(iterations, [&] { return (*lib)->Call<double>("point_sum", **p).ok(); });
  double read = MedianUs(iterations, [&] { return (*p)->Read().ok(); });
  std::printf("scalar call (u64 str_len(NULL))     median %8.1f us\n", scalar);
  std::printf("struct by value (f64 point_norm2)   median %8.1f us  (%.2fx scalar)\n", by_value, by_value / scalar);
  std::printf("handle argument (f64 point_sum)     median %8.1f us  (%.2fx scalar)\n", by_handle, by_handle / scalar);
  std::printf("ReadFields of a Point handle        median %8.1f us  (%.2fx scalar)\n", read, read / scalar);
  return 0;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  CLI::App app("Struct-by-value call and handle field read next to a scalar call.",
               "class_latency");
  int iterations = 2000;
  app.add_option("--iterations", iterations, "calls per measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  return ffibroker::Run(iterations);
}
