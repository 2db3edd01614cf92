// soak: 64 concurrent clients keep a real daemon busy with sessions, opens,
// calls, instances and token grants for a while (default 10 minutes), and
// report how the daemon holds up. Not part of ctest; docs/testing.md.
//
// Every --report-seconds (default 60) it prints the call rate, the errors
// by code, and the daemon's RSS and descriptor count. At the end: the RSS
// growth since the end of the warm-up (the first report interval) and the
// unexpected errors. Exit status 0 only with no unexpected error and RSS
// growth <= --max-rss-growth-percent (default 5).
//
// Usage: soak [--clients=64] [--seconds=600] [--report-seconds=60]
//             [--max-rss-growth-percent=5]
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/cli_flags.h"
#include "ffibroker/instance.h"
#include "tests/integration/test_daemon.h"

namespace ffibroker {
namespace {

struct Counters {
  std::atomic<long long> ops{0};
  std::mutex mu;
  std::map<std::string, long long> errors;  // "CODE (operation)"
  std::string first_error;
};

void Count(Counters* c, const char* what, const absl::Status& status) {
  c->ops.fetch_add(1);
  if (status.ok()) return;
  std::lock_guard<std::mutex> lock(c->mu);
  ++c->errors[absl::StrCat(absl::StatusCodeToString(status.code()), " (", what, ")")];
  if (c->first_error.empty()) c->first_error = absl::StrCat(what, ": ", status.ToString());
}

// One client: a session at a time (a new one every few dozen rounds), a
// library opened and closed now and then, calls, instance operations and,
// every so often, a token granted, inspected and revoked.
void Client(const testing::TestDaemon& daemon, int index, const std::atomic<bool>& stop,
            Counters* c) {
  std::mt19937 rng(index);
  auto client = daemon.Connect();
  if (!client.ok()) return Count(c, "connect", client.status());
  while (!stop.load()) {
    auto session = (*client)->CreateSession();
    Count(c, "create session", session.status());
    if (!session.ok()) continue;
    Count(c, "register class",
          (*session)->RegisterClass("Point { mut f64 x; f64 y; } ~point_free").status());
    int libraries = 1 + static_cast<int>(rng() % 4);
    for (int l = 0; l < libraries && !stop.load(); ++l) {
      auto lib = (*session)->OpenLibrary(
          "classes", {"Point* point_new(f64 x, f64 y)", "f64 point_sum(Point*? p)",
                      "f64 point_norm2(Point p)", "u64 str_len(cstr? s)"});
      Count(c, "open", lib.status());
      if (!lib.ok()) continue;
      int rounds = 10 + static_cast<int>(rng() % 20);
      for (int r = 0; r < rounds && !stop.load(); ++r) {
        Count(c, "call", (*lib)->Call<uint64_t>("str_len", StringValue("soak")).status());
        Count(c, "call struct",
              (*lib)->Call<double>("point_norm2", StructOf({{"x", ToValue(3.0)}, {"y", ToValue(4.0)}}))
                  .status());
        auto p = (*lib)->CallInstance("point_new", 1.0, 2.0);
        Count(c, "call instance", p.status());
        if (p.ok() && *p != nullptr) {
          Count(c, "write fields", (*p)->Set("x", ToValue(5.0)));
          Count(c, "read fields", (*p)->Read().status());
          Count(c, "call with instance", (*lib)->Call<double>("point_sum", **p).status());
          Count(c, "free instance", (*p)->Free().status());
        }
      }
      if (rng() % 4 == 0) {
        auto granted = (*session)->GrantToken();
        Count(c, "grant token", granted.status());
        if (granted.ok()) {
          Count(c, "inspect token", (*session)->InspectToken(granted->token()).status());
          Count(c, "revoke token", (*session)->RevokeToken(granted->claims().token_id()));
        }
      }
      Count(c, "close library", (*lib)->Close());
    }
    Count(c, "close session", (*session)->Close());
  }
}

// VmRSS of `pid` in KiB, and its open descriptors.
long long RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
      long long kib = 0;
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) return kib;
    }
  }
  return 0;
}

int Fds(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fd"), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return n;
}

int Run(int clients, int seconds, int report_seconds, double max_growth) {
  auto daemon = testing::TestDaemon::Start(absl::StrCat(
      "limits { max_workers: ", clients * 2, " max_sessions: ", clients * 2,
      " per_principal { max_sessions: ", clients * 2, " max_workers: ", clients * 2,
      " max_calls_in_flight: ", clients, " } }\n"));
  if (!daemon.ok()) return std::fprintf(stderr, "%s\n", daemon.status().ToString().c_str()), 1;
  const pid_t pid = (*daemon)->pid();
  Counters counters;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] { Client(**daemon, i, stop, &counters); });
  }
  std::printf("soak: %d clients for %d s, daemon pid %d\n", clients, seconds, pid);
  std::printf("%8s %10s %8s %10s %6s  errors\n", "time_s", "ops", "ops/s", "rss_kib", "fds");
  absl::Time start = absl::Now();
  long long last_ops = 0, warm_rss = 0, rss = 0;
  for (int t = report_seconds; t <= seconds; t += report_seconds) {
    absl::SleepFor(start + absl::Seconds(t) - absl::Now());
    long long ops = counters.ops.load();
    rss = RssKib(pid);
    if (warm_rss == 0) warm_rss = rss;  // the end of the warm-up interval
    std::string errors;
    {
      std::lock_guard<std::mutex> lock(counters.mu);
      for (const auto& [what, n] : counters.errors) absl::StrAppend(&errors, " ", what, "=", n);
    }
    std::printf("%8d %10lld %8.0f %10lld %6d %s\n", t, ops,
                static_cast<double>(ops - last_ops) / report_seconds, rss, Fds(pid),
                errors.empty() ? " none" : errors.c_str());
    std::fflush(stdout);
    last_ops = ops;
    if (!(*daemon)->alive()) break;
  }
  stop.store(true);
  for (std::thread& t : threads) t.join();
  bool alive = (*daemon)->alive();
  long long total_errors = 0;
  for (const auto& [what, n] : counters.errors) total_errors += n;
  double growth = warm_rss > 0 ? 100.0 * static_cast<double>(rss - warm_rss) / warm_rss : 0;
  std::printf("soak: %lld operations, %lld unexpected errors, RSS %lld KiB after warm-up -> %lld "
              "KiB at the end (%+.1f%%), daemon %s\n",
              counters.ops.load(), total_errors, warm_rss, rss, growth, alive ? "alive" : "DEAD");
  if (!counters.first_error.empty()) std::printf("first error: %s\n", counters.first_error.c_str());
  return alive && total_errors == 0 && growth <= max_growth ? 0 : 1;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  CLI::App app("Soak: concurrent clients over sessions, opens, calls, instances and tokens.",
               "soak");
  int clients = 64, seconds = 600, report = 60, growth = 5;
  app.add_option("--clients", clients, "concurrent clients")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--seconds", seconds, "how long to run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--report-seconds", report, "seconds between reports (the first is the warm-up)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-rss-growth-percent", growth,
                 "largest RSS growth after warm-up that passes")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  if (report > seconds) {
    std::fprintf(stderr, "soak: --report-seconds must not exceed --seconds\n");
    return ffibroker::kExitUsageError;
  }
  return ffibroker::Run(clients, seconds, report, static_cast<double>(growth));
}
