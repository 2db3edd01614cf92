// worker_lifecycle: how long it takes to start a confined worker (an
// OpenLibrary: sandboxed spawn, dlopen, seccomp) and to replace one that
// crashed (the first call after a segfault), next to a call on a live worker,
// through a real daemon started for the run (tests' TestDaemon, with the
// in-tree hostile library). The start is also measured with every namespace
// layer disabled, to show what the namespaces cost.
//
// Usage: worker_lifecycle [--iterations=N]   (default 50)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/median.h"
#include "common/cli_flags.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker {
namespace {

struct Figures {
  double call = -1, start = -1, replace = -1;
};

absl::StatusOr<Figures> Measure(int iterations, const std::vector<std::string>& flags) {
  auto daemon = testing::TestDaemon::StartWithPolicy(testing::HostilePolicy(), flags);
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
    auto start = std::chrono::steady_clock::now();
    if (!(*lib)->Call<int32_t>("healthy", 1).ok()) return absl::InternalError("no restart");
    us.push_back(std::chrono::duration<double, std::micro>(
                     std::chrono::steady_clock::now() - start).count());
  }
  std::sort(us.begin(), us.end());
  f.replace = us[us.size() / 2];
  return f;
}

int Run(int iterations) {
  absl::StatusOr<Figures> full = Measure(iterations, {});
  absl::StatusOr<Figures> bare = Measure(
      iterations, {"--disable-layers=user_namespace,mount_namespace,pid_namespace,"
                   "net_namespace,ipc_namespace,uts_namespace"});
  for (const auto* f : {&full, &bare}) {
    if (!f->ok()) return std::fprintf(stderr, "%s\n", f->status().ToString().c_str()), 1;
  }
  std::printf("call on a live worker                   median %9.1f us\n", full->call);
  std::printf("start a worker (OpenLibrary+Close)      median %9.1f us  (%.1fx a call)\n",
              full->start, full->start / full->call);
  std::printf("replace a crashed worker (next call)    median %9.1f us  (%.1fx a call)\n",
              full->replace, full->replace / full->call);
  std::printf("start, namespaces disabled              median %9.1f us  (%.1fx a call)\n",
              bare->start, bare->start / bare->call);
  std::printf("replace, namespaces disabled            median %9.1f us  (%.1fx a call)\n",
              bare->replace, bare->replace / bare->call);
  return 0;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  CLI::App app("Start and replacement time of a confined worker.", "worker_lifecycle");
  int iterations = 50;
  app.add_option("--iterations", iterations, "workers started and replaced per measurement")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  return ffibroker::Run(iterations);
}
