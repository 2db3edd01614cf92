// The daemon's metrics, in one place: counters and histograms bumped by
// one-line hooks where events happen, gauges read at scrape time, and
// their rendering in the Prometheus text exposition format (0.0.4).
//
//   ffibroker_calls_total{library,symbol,code}            calls that reached a worker
//   ffibroker_call_duration_seconds{library}              their latency (histogram)
//   ffibroker_worker_starts_total                         workers started
//   ffibroker_worker_restarts_total                       of them, replacing a dead one
//   ffibroker_worker_ends_total{how}                      exited, crashed, violation,
//                                                         deadline_kill, resource_limit,
//                                                         protocol_violation, stopped
//   ffibroker_worker_crashes_total{signal}                by signal
//   ffibroker_worker_violations_total{syscall}            by forbidden system call
//   ffibroker_token_events_total{event}                   grant, exchange, revoke, deny
//   ffibroker_{sessions,workers,calls_in_flight,instances}  in use now (gauges)
//
// Process-wide on purpose (like a Prometheus client's default registry):
// the hooks sit in many modules that should not have to carry a registry.
// Distinct (library, symbol, code) series are capped at kMaxCallSeries;
// later ones count under symbol="_other" so a client cannot grow the
// scrape without bound. Thread-safe.
//
//   metrics::CallDone(library->path(), request.symbol(), status.code(), elapsed);
//   std::string text = metrics::Render();
#ifndef FFIBROKER_DAEMON_METRICS_H_
#define FFIBROKER_DAEMON_METRICS_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ffibroker {
struct WorkerOutcome;
}

namespace ffibroker::metrics {

inline constexpr size_t kMaxCallSeries = 2000;

// `count` calls that reached a worker ended with `code`, each after
// `latency` (a batch counts each of its calls with its share of the time).
void CallsDone(absl::string_view library, absl::string_view symbol, absl::StatusCode code,
               uint64_t count, absl::Duration latency);
// One call that reached a worker ended with `code` after `latency`.
inline void CallDone(absl::string_view library, absl::string_view symbol, absl::StatusCode code,
                     absl::Duration latency) {
  CallsDone(library, symbol, code, 1, latency);
}
void WorkerStarted();
// A worker was started in the place of one of the same library that had
// died (Library::StartWorker); it also counts as a start.
void WorkerRestarted();
// A worker's first recorded outcome (WorkerProcess::Record).
void WorkerEnded(const WorkerOutcome& outcome);
enum class TokenEvent { kGrant, kExchange, kRevoke, kDeny };
void Token(TokenEvent event);

// What is in use now, read when the metrics are rendered.
struct InUse {
  uint64_t sessions = 0, workers = 0, calls_in_flight = 0, instances = 0;
};
// Sets (or, with nullptr, clears) where Render() reads the gauges; the
// function must stay callable until cleared.
void SetInUseSource(std::function<InUse()> source);

// Everything, in the Prometheus text format.
std::string Render();

}  // namespace ffibroker::metrics

#endif  // FFIBROKER_DAEMON_METRICS_H_
