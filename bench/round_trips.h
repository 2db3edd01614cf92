// Round trips between this process and a forked child, the floors under
// every hop of a broker call (bench/wakeup, bench/channel_hop).
#ifndef FFIBROKER_BENCH_ROUND_TRIPS_H_
#define FFIBROKER_BENCH_ROUND_TRIPS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "bench/median.h"

namespace ffibroker {

// Where the two processes run: both on CPU 0, on CPUs 0 and 1, wherever
// the scheduler puts them, or free with the caller asleep for 100 us
// between round trips.
enum class Placement { kOneCpu, kTwoCpus, kFree, kApart };

void Place(Placement placement, int cpu);
void Unplace();
// Between round trips: nothing, or a 100 us sleep (kApart).
void Pause(Placement placement);

// Round trips through two futex words in shared memory; the caller spins
// for up to `spin` on the reply before it sleeps.
std::optional<Stats> FutexTrips(int iterations, Placement placement,
                                std::chrono::microseconds spin);

}  // namespace ffibroker

#endif  // FFIBROKER_BENCH_ROUND_TRIPS_H_
