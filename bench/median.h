// MedianUs: the median duration of `op` in microseconds, after a warm-up of
// a tenth of the iterations; -1 if `op` fails once.
#ifndef FFIBROKER_BENCH_MEDIAN_H_
#define FFIBROKER_BENCH_MEDIAN_H_

#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace ffibroker {

inline double MedianUs(int iterations, const std::function<bool()>& op) {
  for (int i = 0; i < iterations / 10 + 1; ++i) {
    if (!op()) return -1;
  }
  std::vector<double> us;
  for (int i = 0; i < iterations; ++i) {
    auto start = std::chrono::steady_clock::now();
    if (!op()) return -1;
    us.push_back(std::chrono::duration<double, std::micro>(
                     std::chrono::steady_clock::now() - start).count());
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

// The median and p99 of samples in microseconds.
struct Stats {
  double median_us = 0;
  double p99_us = 0;
};

inline Stats Of(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  if (us.empty()) return {};
  return {us[us.size() / 2], us[std::min(us.size() - 1, us.size() * 99 / 100)]};
}

}  // namespace ffibroker

#endif  // FFIBROKER_BENCH_MEDIAN_H_
