// worker_lifecycle: how long it takes to start a confined worker (an
// OpenLibrary: sandboxed spawn, dlopen, seccomp) and to replace one that
// crashed (the first call after a segfault), next to a call on a live worker,
// through a real daemon started for the run (tests' TestDaemon, with the
// in-tree hostile library and libm).
//
// Each figure is measured twice in the same run: "before", with no
// pre-started workers (--prestart-workers=0: every open and replacement
// starts a worker), and "after", with the pool (--prestart-workers=N):
//   - OpenLibrary of libm (the RPC alone; the library is closed untimed);
//   - replacing a crashed worker (the call after the crash);
//   - both with the pool refilled before each (the daemon's children are
//     watched until N are idle, untimed), and the open also back to back
//     (as fast as the client can: the pool runs dry and opens start
//     workers on demand while it refills);
// medians and 99th percentiles. The layers in force are printed: every one
// the kernel grants here. The start is also measured with every namespace
// layer disabled, to show what the namespaces cost.
//
// Usage: worker_lifecycle [--iterations=N] [--pool=N]   (defaults 50, 2)
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/median.h"
#include "common/cli_flags.h"
#include "common/layer_name.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker {
namespace {

struct Sample {
  double p50 = -1, p99 = -1;
};

Sample Stats(std::vector<double> us) {
  if (us.empty()) return {};
  std::sort(us.begin(), us.end());
  size_t p99 = std::min(us.size() - 1, (us.size() * 99 + 99) / 100 - 1);
  return {us[us.size() / 2], us[p99]};
}

template <typename F>
double TimeUs(F op) {
  auto start = std::chrono::steady_clock::now();
  op();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
      .count();
}

struct Figures {
  double call = -1, start = -1;
  long idle_kib = -1, serving_kib = -1;  // private memory of an idle / a libm worker
  Sample open_libm, replace, open_burst;
  std::string layers;
};

int SeccompFilters(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    int n = 0;
    if (line.rfind("Seccomp_filters:", 0) == 0 &&
        absl::SimpleAtoi(line.substr(sizeof("Seccomp_filters:") - 1), &n)) {
      return n;
    }
  }
  return -1;
}

// Waits until `n` of the daemon's children are idle pre-started workers
// (under the loading filter only), at most 10 s.
void WaitPool(const testing::TestDaemon& daemon, int n) {
  if (n == 0) return;
  const int base = SeccompFilters(daemon.pid());
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    int idle = 0;
    for (pid_t child : daemon.Children()) idle += SeccompFilters(child) == base + 1 ? 1 : 0;
    if (idle >= n) return;
    absl::SleepFor(absl::Milliseconds(2));
  }
}

// Private_Clean + Private_Dirty of `pid` (/proc/PID/smaps_rollup), in KiB;
// -1 if it cannot be read.
long PrivateKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/smaps_rollup"));
  long total = -1;
  for (std::string line; std::getline(in, line);) {
    for (const char* field : {"Private_Clean:", "Private_Dirty:"}) {
      if (line.rfind(field, 0) != 0) continue;
      long kib = 0;
      std::istringstream(line.substr(std::strlen(field))) >> kib;
      total = std::max(total, 0L) + kib;
    }
  }
  return total;
}

std::string Describe(const v1::WorkerLayers& layers) {
  std::vector<std::string> in, out;
  for (int layer : layers.in_force()) in.push_back(LayerName(static_cast<v1::Layer>(layer)));
  for (const v1::RefusedLayer& r : layers.refused()) {
    out.push_back(absl::StrCat(LayerName(r.layer()), " (", r.reason(), ")"));
  }
  return absl::StrCat("in force: ", absl::StrJoin(in, ", "),
                      out.empty() ? "" : absl::StrCat("; refused: ", absl::StrJoin(out, ", ")));
}

absl::StatusOr<Figures> Measure(int iterations, int pool, std::vector<std::string> flags,
                                bool lifecycle_only) {
  flags.push_back(absl::StrCat("--prestart-workers=", pool));
  auto daemon = testing::TestDaemon::StartWithPolicy(
      testing::HostilePolicy("libraries { library: \"libm\" }",
                             "libraries { name: \"libm\" path: \"/lib/x86_64-linux-gnu/libm.so.6\" }"),
      flags);
  if (!daemon.ok()) return daemon.status();
  auto client = (*daemon)->Connect();
  if (!client.ok()) return client.status();
  auto session = (*client)->CreateSession();
  if (!session.ok()) return session.status();
  const std::vector<std::string> decls = {"i32 healthy(i32)", "i32 h_segfault()"};
  auto lib = (*session)->OpenLibrary("hostile", decls);
  if (!lib.ok()) return lib.status();
  Figures f;
  f.call = MedianUs(iterations * 10, [&] { return (*lib)->Call<int32_t>("healthy", 1).ok(); });
  f.start = MedianUs(iterations, [&] {
    auto opened = (*session)->OpenLibrary("hostile", decls);
    return opened.ok() && (*opened)->Close().ok();
  });
  // Crash the worker outside the timed part; time the call that replaces it.
  std::vector<double> us;
  for (int i = 0; i < iterations; ++i) {
    if ((*lib)->Call<int32_t>("h_segfault").ok()) return absl::InternalError("no crash");
    WaitPool(**daemon, pool);
    bool ok = false;
    us.push_back(TimeUs([&] { ok = (*lib)->Call<int32_t>("healthy", 1).ok(); }));
    if (!ok) return absl::InternalError("no restart");
  }
  f.replace = Stats(us);
  if (lifecycle_only) return f;

  us.clear();
  for (int i = 0; i < iterations + iterations / 10 + 1; ++i) {
    WaitPool(**daemon, pool);
    absl::StatusOr<std::unique_ptr<Library>> libm = absl::UnknownError("not run");
    double t = TimeUs([&] { libm = (*session)->OpenLibrary("libm", {"f64 cos(f64)"}); });
    if (!libm.ok()) return libm.status();
    if (f.layers.empty()) {
      f.layers = Describe((*libm)->layers());
      f.serving_kib = PrivateKiB((*libm)->worker_pid());
      const int base = SeccompFilters((*daemon)->pid());
      for (pid_t child : (*daemon)->Children()) {
        if (SeccompFilters(child) == base + 1) f.idle_kib = PrivateKiB(child);
      }
    }
    if (!(*libm)->Call<double>("cos", 0.0).ok()) return absl::InternalError("cos failed");
    if (!(*libm)->Close().ok()) return absl::InternalError("close failed");
    if (i > iterations / 10) us.push_back(t);  // after a warm-up
  }
  f.open_libm = Stats(us);
  us.clear();
  WaitPool(**daemon, pool);
  for (int i = 0; i < iterations; ++i) {
    absl::StatusOr<std::unique_ptr<Library>> libm = absl::UnknownError("not run");
    us.push_back(TimeUs([&] { libm = (*session)->OpenLibrary("libm", {"f64 cos(f64)"}); }));
    if (!libm.ok()) return libm.status();
    if (!(*libm)->Close().ok()) return absl::InternalError("close failed");
  }
  f.open_burst = Stats(us);
  return f;
}

void Row(const char* what, Sample before, Sample after) {
  std::printf("%-44s p50 %8.1f us  p99 %8.1f us | p50 %8.1f us  p99 %8.1f us  (p50 %.2fx)\n",
              what, before.p50, before.p99, after.p50, after.p99,
              after.p50 > 0 ? before.p50 / after.p50 : 0.0);
}

int Run(int iterations, int pool) {
  absl::StatusOr<Figures> before = Measure(iterations, 0, {}, false);
  absl::StatusOr<Figures> after = Measure(iterations, pool, {}, false);
  absl::StatusOr<Figures> bare = Measure(
      iterations, 0,
      {"--disable-layers=user_namespace,mount_namespace,pid_namespace,"
       "net_namespace,ipc_namespace,uts_namespace"},
      true);
  for (const auto* f : {&before, &after, &bare}) {
    if (!f->ok()) return std::fprintf(stderr, "%s\n", f->status().ToString().c_str()), 1;
  }
  std::printf("layers (before): %s\n", before->layers.c_str());
  std::printf("layers (after):  %s\n", after->layers.c_str());
  std::printf("%-44s %-35s | after: --prestart-workers=%d\n", "", "before: --prestart-workers=0",
              pool);
  Row("OpenLibrary of libm (pool refilled)", before->open_libm, after->open_libm);
  Row("OpenLibrary of libm, back to back", before->open_burst, after->open_burst);
  Row("replace a crashed worker (next call)", before->replace, after->replace);
  std::printf("private memory: worker serving libm %ld KiB (on demand), %ld KiB (pre-started); "
              "idle pre-started worker %ld KiB\n",
              before->serving_kib, after->serving_kib, after->idle_kib);
  std::printf("call on a live worker                   median %9.1f us\n", before->call);
  std::printf("start a worker (OpenLibrary+Close)      median %9.1f us  (%.1fx a call)\n",
              before->start, before->start / before->call);
  std::printf("start, namespaces disabled              median %9.1f us  (%.1fx a call)\n",
              bare->start, bare->start / bare->call);
  std::printf("replace, namespaces disabled            median %9.1f us  (%.1fx a call)\n",
              bare->replace.p50, bare->replace.p50 / bare->call);
  return 0;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  CLI::App app("Start and replacement time of a confined worker, without and with "
               "pre-started workers.",
               "worker_lifecycle");
  int iterations = 50;
  int pool = 2;
  app.add_option("--iterations", iterations, "workers started and replaced per measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--pool", pool, "--prestart-workers of the 'after' daemon")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  return ffibroker::Run(iterations, pool);
}
