#include "daemon/metrics.h"

#include <seccomp.h>
#include <string.h>

#include <array>
#include <map>
#include <tuple>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "daemon/worker_process.h"

namespace ffibroker::metrics {
namespace {

constexpr std::array<double, 16> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                             1,      2.5,     5,      10};

struct Histogram {
  std::array<uint64_t, kBuckets.size()> counts = {};  // per bucket, not cumulative
  uint64_t count = 0;
  double sum = 0;
};

struct Registry {
  absl::Mutex mu;
  std::map<std::tuple<std::string, std::string, std::string>, uint64_t> calls ABSL_GUARDED_BY(mu);
  std::map<std::string, Histogram> latency ABSL_GUARDED_BY(mu);
  uint64_t worker_starts ABSL_GUARDED_BY(mu) = 0;
  uint64_t worker_restarts ABSL_GUARDED_BY(mu) = 0;
  std::map<std::string, uint64_t> worker_ends ABSL_GUARDED_BY(mu);
  std::map<std::string, uint64_t> crashes ABSL_GUARDED_BY(mu);
  std::map<std::string, uint64_t> violations ABSL_GUARDED_BY(mu);
  std::map<std::string, uint64_t> tokens ABSL_GUARDED_BY(mu);
  std::function<InUse()> in_use ABSL_GUARDED_BY(mu);
};

Registry& Get() {
  static Registry* registry = new Registry();  // never destroyed: hooks may run at exit
  return *registry;
}

// A label value escaped for the text format (backslash, quote, newline).
std::string Escape(absl::string_view value) {
  return absl::StrReplaceAll(value, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

std::string SyscallName(int nr) {
  if (nr < 0) return "unknown";
  char* name = ::seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  std::string out = name != nullptr ? name : absl::StrCat("#", nr);
  ::free(name);
  return out;
}

std::string SignalName(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? absl::StrCat("SIG", abbrev) : absl::StrCat(sig);
}

void Header(std::string* out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void LabeledCounter(std::string* out, absl::string_view name, absl::string_view label,
                    const std::map<std::string, uint64_t>& values) {
  for (const auto& [value, count] : values) {
    absl::StrAppend(out, name, "{", label, "=\"", Escape(value), "\"} ", count, "\n");
  }
}

}  // namespace

void CallsDone(absl::string_view library, absl::string_view symbol, absl::StatusCode code,
               uint64_t count, absl::Duration latency) {
  if (count == 0) return;
  Registry& r = Get();
  std::string code_name = absl::StatusCodeToString(code);
  double seconds = absl::ToDoubleSeconds(latency);
  absl::MutexLock lock(&r.mu);
  auto key = std::make_tuple(std::string(library), std::string(symbol), code_name);
  auto it = r.calls.find(key);
  if (it == r.calls.end() && r.calls.size() >= kMaxCallSeries) {
    std::get<1>(key) = "_other";
    it = r.calls.find(key);
  }
  if (it == r.calls.end()) it = r.calls.emplace(key, 0).first;
  it->second += count;
  // One histogram per library; libraries come from the policy, but cap them too.
  std::string lib(library);
  if (r.latency.count(lib) == 0 && r.latency.size() >= kMaxCallSeries) lib = "_other";
  Histogram& h = r.latency[lib];
  size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  if (bucket < kBuckets.size()) h.counts[bucket] += count;
  h.count += count;
  h.sum += seconds * static_cast<double>(count);
}

void WorkerStarted() {
  Registry& r = Get();
  absl::MutexLock lock(&r.mu);
  ++r.worker_starts;
}

void WorkerRestarted() {
  Registry& r = Get();
  absl::MutexLock lock(&r.mu);
  ++r.worker_restarts;
}

void WorkerEnded(const WorkerOutcome& outcome) {
  Registry& r = Get();
  absl::MutexLock lock(&r.mu);
  switch (outcome.kind) {
    case WorkerOutcome::Kind::kRunning: return;
    case WorkerOutcome::Kind::kExited: ++r.worker_ends["exited"]; break;
    case WorkerOutcome::Kind::kSignaled:
      ++r.worker_ends["crashed"];
      ++r.crashes[SignalName(outcome.code)];
      break;
    case WorkerOutcome::Kind::kTimedOut: ++r.worker_ends["deadline_kill"]; break;
    case WorkerOutcome::Kind::kStopped: ++r.worker_ends["stopped"]; break;
    case WorkerOutcome::Kind::kProtocolViolation: ++r.worker_ends["protocol_violation"]; break;
    case WorkerOutcome::Kind::kViolation:
      ++r.worker_ends["violation"];
      ++r.violations[SyscallName(outcome.code)];
      break;
    case WorkerOutcome::Kind::kResourceLimit: ++r.worker_ends["resource_limit"]; break;
  }
}

void Token(TokenEvent event) {
  static constexpr const char* kNames[] = {"grant", "exchange", "revoke", "deny"};
  Registry& r = Get();
  absl::MutexLock lock(&r.mu);
  ++r.tokens[kNames[static_cast<int>(event)]];
}

void SetInUseSource(std::function<InUse()> source) {
  Registry& r = Get();
  absl::MutexLock lock(&r.mu);
  r.in_use = std::move(source);
}

std::string Render() {
  Registry& r = Get();
  std::string out;
  absl::MutexLock lock(&r.mu);
  Header(&out, "ffibroker_calls_total", "counter",
         "Calls that reached a worker, by library, symbol and status code.");
  for (const auto& [key, count] : r.calls) {
    const auto& [library, symbol, code] = key;
    absl::StrAppend(&out, "ffibroker_calls_total{library=\"", Escape(library), "\",symbol=\"",
                    Escape(symbol), "\",code=\"", code, "\"} ", count, "\n");
  }
  Header(&out, "ffibroker_call_duration_seconds", "histogram",
         "Latency of calls that reached a worker, by library.");
  for (const auto& [library, h] : r.latency) {
    std::string lib = Escape(library);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += h.counts[i];
      absl::StrAppend(&out, "ffibroker_call_duration_seconds_bucket{library=\"", lib,
                      "\",le=\"", kBuckets[i], "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "ffibroker_call_duration_seconds_bucket{library=\"", lib,
                    "\",le=\"+Inf\"} ", h.count, "\n");
    absl::StrAppend(&out, "ffibroker_call_duration_seconds_sum{library=\"", lib, "\"} ", h.sum,
                    "\n");
    absl::StrAppend(&out, "ffibroker_call_duration_seconds_count{library=\"", lib, "\"} ",
                    h.count, "\n");
  }
  Header(&out, "ffibroker_worker_starts_total", "counter", "Worker processes started.");
  absl::StrAppend(&out, "ffibroker_worker_starts_total ", r.worker_starts, "\n");
  Header(&out, "ffibroker_worker_restarts_total", "counter",
         "Workers started to replace one of the same library that had died.");
  absl::StrAppend(&out, "ffibroker_worker_restarts_total ", r.worker_restarts, "\n");
  Header(&out, "ffibroker_worker_ends_total", "counter", "Worker processes ended, by how.");
  LabeledCounter(&out, "ffibroker_worker_ends_total", "how", r.worker_ends);
  Header(&out, "ffibroker_worker_crashes_total", "counter", "Workers killed by a signal.");
  LabeledCounter(&out, "ffibroker_worker_crashes_total", "signal", r.crashes);
  Header(&out, "ffibroker_worker_violations_total", "counter",
         "Workers stopped for a forbidden system call, by call.");
  LabeledCounter(&out, "ffibroker_worker_violations_total", "syscall", r.violations);
  Header(&out, "ffibroker_token_events_total", "counter",
         "Capability token grants, exchanges, revocations and denials.");
  LabeledCounter(&out, "ffibroker_token_events_total", "event", r.tokens);
  InUse in_use = r.in_use ? r.in_use() : InUse{};
  for (const auto& [name, help, value] :
       {std::make_tuple("ffibroker_sessions", "Sessions open now.", in_use.sessions),
        std::make_tuple("ffibroker_workers", "Worker processes held now.", in_use.workers),
        std::make_tuple("ffibroker_calls_in_flight", "Calls running now.",
                        in_use.calls_in_flight),
        std::make_tuple("ffibroker_instances", "Instance handles held now.",
                        in_use.instances)}) {
    Header(&out, name, "gauge", help);
    absl::StrAppend(&out, name, " ", value, "\n");
  }
  return out;
}

}  // namespace ffibroker::metrics
