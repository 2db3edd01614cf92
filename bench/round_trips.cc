#include "bench/round_trips.h"

#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <new>
#include <vector>

namespace ffibroker {
namespace {

using Clock = std::chrono::steady_clock;

long Futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  return ::syscall(SYS_futex, word, op, value, nullptr, nullptr, 0);
}

// Waits until `*word` is 1, then sets it back to 0; spins first for up to
// `spin` (zero: none).
void Take(std::atomic<uint32_t>* word, std::chrono::microseconds spin) {
  if (spin.count() > 0) {
    const auto until = Clock::now() + spin;
    while (word->load(std::memory_order_acquire) == 0 && Clock::now() < until) {
    }
  }
  while (word->load(std::memory_order_acquire) == 0) Futex(word, FUTEX_WAIT, 0);
  word->store(0, std::memory_order_relaxed);
}

void Give(std::atomic<uint32_t>* word) {
  word->store(1, std::memory_order_release);
  Futex(word, FUTEX_WAKE, 1);
}

}  // namespace

void Place(Placement placement, int cpu) {
  if (placement == Placement::kFree || placement == Placement::kApart) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(placement == Placement::kOneCpu ? 0 : cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

void Unplace() {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &set);
  ::sched_setaffinity(0, sizeof set, &set);
}

// Between round trips: nothing, or a 100 us sleep ("apart").
void Pause(Placement placement) {
  if (placement != Placement::kApart) return;
  timespec pause = {0, 100 * 1000};
  ::nanosleep(&pause, nullptr);
}

// Round trips through two futex words in shared memory.
std::optional<Stats> FutexTrips(int iterations, Placement placement,
                                std::chrono::microseconds spin) {
  void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return std::nullopt;
  auto* request = new (page) std::atomic<uint32_t>(0);
  auto* reply = new (static_cast<char*>(page) + 64) std::atomic<uint32_t>(0);
  const int total = iterations + iterations / 10;
  pid_t child = ::fork();
  if (child == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    Place(placement, 1);
    for (int i = 0; i < total; ++i) {
      Take(request, std::chrono::microseconds(0));
      Give(reply);
    }
    ::_exit(0);
  }
  Place(placement, 0);
  std::vector<double> us;
  for (int i = 0; child > 0 && i < total; ++i) {
    Pause(placement);
    const auto start = Clock::now();
    Give(request);
    Take(reply, spin);
    if (i >= iterations / 10) {
      us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
  }
  if (child > 0) ::waitpid(child, nullptr, 0);
  ::munmap(page, 4096);
  Unplace();
  if (child <= 0) return std::nullopt;
  return Of(std::move(us));
}

}  // namespace ffibroker
