// wakeup: what waking another process costs on this machine, the floor
// under every hop of a broker call (client -> daemon -> worker -> daemon
// -> client: four wake-ups of another process, where a bare gRPC echo has
// two). One request/reply round trip between this process and a child:
//
//   socketpair  a 16-byte SOCK_SEQPACKET packet each way, both blocking
//               (the daemon<->worker channel)
//   futex       a flag in shared memory and FUTEX_WAKE/FUTEX_WAIT each way
//               (what a shared-memory channel would wait with)
//   spin        the futex, but the caller spins on the reply flag for up to
//               50 us before it sleeps (an adaptive spin on one side)
//
// each with both processes on CPU 0 ("one cpu"), on CPUs 0 and 1 ("two
// cpus"), and wherever the scheduler puts them ("free"), back to back;
// and free with the caller asleep for 100 us between round trips ("apart":
// as a daemon's requests to one worker are, a client's round trip apart,
// so the worker is asleep when each comes). Prints medians and p99 and the
// free lines' ratios to the free socketpair.
// Usage: build/bench/wakeup [--iterations=N]
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <new>
#include <optional>
#include <vector>

#include "bench/median.h"
#include "bench/round_trips.h"
#include "common/cli_flags.h"

namespace ffibroker {
namespace {

using Clock = std::chrono::steady_clock;

// Round trips over a socketpair; the child answers every packet.
std::optional<Stats> Socketpair(int iterations, Placement placement) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return std::nullopt;
  pid_t child = ::fork();
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::close(fds[0]);
    Place(placement, 1);
    char packet[64];
    for (;;) {
      ssize_t n = ::recv(fds[1], packet, sizeof packet, 0);
      if (n <= 0 || ::send(fds[1], packet, static_cast<size_t>(n), 0) != n) ::_exit(0);
    }
  }
  ::close(fds[1]);
  Place(placement, 0);
  std::vector<double> us;
  bool ok = child > 0;
  for (int i = 0; ok && i < iterations + iterations / 10; ++i) {
    char packet[16] = {1};
    Pause(placement);
    const auto start = Clock::now();
    ok = ::send(fds[0], packet, sizeof packet, 0) == sizeof packet &&
         ::recv(fds[0], packet, sizeof packet, 0) == sizeof packet;
    if (i >= iterations / 10) {
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
  }
  ::close(fds[0]);
  if (child > 0) ::waitpid(child, nullptr, 0);
  Unplace();
  if (!ok) return std::nullopt;
  return Of(std::move(us));
}

int Run(int iterations) {
  const char* names[] = {"one cpu", "two cpus", "free", "apart"};
  const Placement placements[] = {Placement::kOneCpu, Placement::kTwoCpus, Placement::kFree,
                                  Placement::kApart};
  std::optional<Stats> free_socketpair;
  for (int p = 0; p < 4; ++p) {
    struct Line {
      const char* what;
      std::optional<Stats> stats;
    } lines[] = {
        {"socketpair", Socketpair(iterations, placements[p])},
        {"futex", FutexTrips(iterations, placements[p], std::chrono::microseconds(0))},
        {"spin", FutexTrips(iterations, placements[p], std::chrono::microseconds(50))},
    };
    for (const Line& line : lines) {
      if (!line.stats.has_value()) {
        std::fprintf(stderr, "%s (%s) failed\n", line.what, names[p]);
        return 1;
      }
      if (placements[p] == Placement::kFree && free_socketpair == std::nullopt) {
        free_socketpair = line.stats;
      }
      std::printf("%-10s %-8s median %7.1f us  p99 %7.1f us", line.what, names[p],
                  line.stats->median_us, line.stats->p99_us);
      if (placements[p] == Placement::kFree || placements[p] == Placement::kApart) {
        std::printf(" | ÷ free socketpair median %.2fx",
                    line.stats->median_us / free_socketpair->median_us);
      }
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace
}  // namespace ffibroker

int main(int argc, char** argv) {
  CLI::App app("What waking another process costs: socketpair and futex round trips.",
               "wakeup");
  int iterations = 20000;
  app.add_option("--iterations", iterations, "round trips per line")
      ->check(CLI::Range(100, 10000000))
      ->capture_default_str();
  if (std::optional<int> exit_code = ffibroker::ParseFlags(app, argc, argv)) return *exit_code;
  return ffibroker::Run(iterations);
}
