// Callbacks (issue 12): what one callback round trip (library -> client ->
// library) costs next to a plain call on the same stream, and how many
// callbacks per second one call gets (a heap sort with
// its comparator in the client; glibc's qsort cannot sort more than 1 KiB
// under the strict profile, see docs/callbacks.md). Starts its own daemon on the in-tree callbacks library.
//
//   build/bench/callbacks [--iterations=N] [--elements=N (default 1000)]
//
// Rounds alternate (100 plain calls, then 100 calls that each make one
// callback), so both see the same machine load. The ratio divides the
// callback call's time by the plain call's: what one callback adds.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/median.h"
#include "common/cli_flags.h"
#include "ffibroker/call_stream.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker {
namespace {

using Clock = std::chrono::steady_clock;

double Micros(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

int Run(int iterations, int elements) {
  auto daemon = testing::TestDaemon::StartWithPolicy(absl::StrCat(
      testing::TestDaemon::Catalogue(), "libraries { name: \"callbacks\" path: \"",
      FFIBROKER_CALLBACKS_LIB, "\" }\n", "limits { max_call_millis: 600000 }\n",
      "principals { name: \"bench\" uids: ", ::getuid(),
      " permission { libraries { library: \"callbacks\" } operations: [OPEN_LIBRARY, CALLBACKS]"
      " } }\n"));
  if (!daemon.ok()) return std::fprintf(stderr, "%s\n", daemon.status().ToString().c_str()), 1;
  auto client = (*daemon)->Connect();
  if (!client.ok()) return 1;
  auto session = (*client)->CreateSession();
  if (!session.ok()) return 1;
  auto lib = (*session)->OpenLibrary(
      "callbacks", {"i32 cb_maybe(fn(i32 x)? -> i32 f, i32 x)",
                    "void cb_heapsort4(inout u8[len] base, usize len, "
                    "fn(in u8[4] a, in u8[4] b) -> i32 cmp)"});
  if (!lib.ok()) return std::fprintf(stderr, "%s\n", lib.status().ToString().c_str()), 1;
  auto stream = (*session)->OpenStream();
  if (!stream.ok()) return 1;
  CallStream& s = **stream;
  auto id = s.RegisterCallback(
      Callback<int32_t(int32_t)>("i32 f(i32 x)", [](int32_t x) { return x + 1; }));
  if (!id.ok()) return std::fprintf(stderr, "%s\n", id.status().ToString().c_str()), 1;

  // cb_maybe(NULL, x) returns -1 without a callback; cb_maybe(f, x) makes one.
  const std::vector<v1::Value> plain = {NullValue(), ToValue(int32_t{1})};
  const std::vector<v1::Value> with = {CallbackValue(*id), ToValue(int32_t{1})};
  std::vector<double> plain_us, callback_us;
  for (int done = 0; done < iterations; done += 100) {
    for (auto [args, out] : {std::make_pair(&plain, &plain_us), std::make_pair(&with, &callback_us)}) {
      for (int i = 0; i < 100; ++i) {
        auto start = Clock::now();
        auto r = s.Call(**lib, "cb_maybe", *args);
        if (!r.ok()) return std::fprintf(stderr, "%s\n", r.status().ToString().c_str()), 1;
        if (done > 0) out->push_back(Micros(start));  // the first round warms up
      }
    }
  }
  Stats p = Of(plain_us), c = Of(callback_us);
  std::printf("call     plain median %8.1f us  p99 %8.1f us | with one callback median %8.1f us"
              "  p99 %8.1f us | ratio median %.2fx  p99 %.2fx | one round trip adds %.1f us\n",
              p.median_us, p.p99_us, c.median_us, c.p99_us, c.median_us / p.median_us,
              c.p99_us / p.p99_us, c.median_us - p.median_us);

  // A heap sort of `elements` u32 values with the comparator in this process.
  uint64_t compared = 0;
  auto cmp = s.RegisterCallback(Callback<int32_t(std::string, std::string)>(
      "i32 cmp(in u8[4] a, in u8[4] b)", [&](std::string a, std::string b) {
        ++compared;
        uint32_t x, y;
        std::memcpy(&x, a.data(), 4);
        std::memcpy(&y, b.data(), 4);
        return x < y ? -1 : x > y ? 1 : 0;
      }));
  if (!cmp.ok()) return 1;
  std::vector<uint32_t> values(static_cast<size_t>(elements));
  std::mt19937 random(42);
  for (uint32_t& v : values) v = random();
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  auto start = Clock::now();
  auto sorted = s.Call(**lib, "cb_heapsort4",
                       {BytesValue(bytes), ToValue(uint64_t{bytes.size()}), CallbackValue(*cmp)},
                       absl::Seconds(600));
  const double us = Micros(start);
  if (!sorted.ok()) return std::fprintf(stderr, "%s\n", sorted.status().ToString().c_str()), 1;
  std::printf("heapsort %d elements: %llu callbacks in %.0f ms = %.0f callbacks/s "
              "(%.1f us each)\n",
              elements, static_cast<unsigned long long>(compared), us / 1000,
              compared / us * 1e6, us / compared);
  return (*stream)->Close().ok() ? 0 : 1;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  CLI::App app("Callback round trips next to plain calls, and callbacks per second in a sort");
  int iterations = 2000;
  int elements = 1000;
  app.add_option("--iterations", iterations, "Calls of each kind measured")->check(CLI::Range(100, 1000000));
  app.add_option("--elements", elements, "u32 values the sort sorts")->check(CLI::Range(2, 10000000));
  CLI11_PARSE(app, argc, argv);
  return ffibroker::Run(iterations, elements);
}
