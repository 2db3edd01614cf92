#!/usr/bin/python3
"""Parses ffibrokerd's metrics with prometheus_client's parser and checks
them against what tests/ops/metrics_test.cc did.

usage: check_metrics.py (URL | --file PATH) SCALARS_LIB CRASHY_LIB
Exit 0 if every check holds; prints the failed checks otherwise."""
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

source, scalars, crashy = sys.argv[1], sys.argv[-2], sys.argv[-1]
if source == "--file":
    text = open(sys.argv[2], encoding="utf-8").read()
else:
    with urllib.request.urlopen(source, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode("utf-8")

samples = {}
types = {}
for family in text_string_to_metric_families(text):  # raises on a malformed line
    types[family.name] = family.type
    for s in family.samples:
        samples[(s.name, tuple(sorted(s.labels.items())))] = s.value


def value(name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


failures = []


def check(what, ok):
    if not ok:
        failures.append(what)


check("calls_total is a counter", types.get("ffibroker_calls") == "counter")
check("call_duration is a histogram", types.get("ffibroker_call_duration_seconds") == "histogram")
check("9 OK calls of neg_i8 (5, and 4 in a batch)",
      value("ffibroker_calls_total", library=scalars, symbol="neg_i8", code="OK") == 9)
check("2 OK calls of f64_next_up (in the batch)",
      value("ffibroker_calls_total", library=scalars, symbol="f64_next_up", code="OK") == 2)
check("1 UNAVAILABLE call of crash_segv",
      value("ffibroker_calls_total", library=crashy, symbol="crash_segv", code="UNAVAILABLE") == 1)
check("1 DEADLINE_EXCEEDED call of hang",
      value("ffibroker_calls_total", library=crashy, symbol="hang", code="DEADLINE_EXCEEDED") == 1)
check("histogram counts the 11 scalars calls",
      value("ffibroker_call_duration_seconds_count", library=scalars) == 11 and
      value("ffibroker_call_duration_seconds_bucket", library=scalars, le="+Inf") == 11)
check("histogram buckets are cumulative",
      value("ffibroker_call_duration_seconds_bucket", library=scalars, le="10") == 11)
check("at least 4 workers started", value("ffibroker_worker_starts_total") >= 4)
check("restarts_total is a counter", types.get("ffibroker_worker_restarts") == "counter")
check("one worker restarted after the crash", value("ffibroker_worker_restarts_total") == 1)
check("a SIGSEGV crash", value("ffibroker_worker_crashes_total", signal="SIGSEGV") == 1)
check("a crash end", value("ffibroker_worker_ends_total", how="crashed") == 1)
check("no SIGKILL crash (the daemon's own stops are not crashes)",
      value("ffibroker_worker_crashes_total", signal="SIGKILL") == 0)
check("stopped ends: at least the failed open's and the status probe's",
      value("ffibroker_worker_ends_total", how="stopped") >= 2)
check("a deadline kill", value("ffibroker_worker_ends_total", how="deadline_kill") == 1)
check("a token grant", value("ffibroker_token_events_total", event="grant") == 1)
check("a token exchange", value("ffibroker_token_events_total", event="exchange") == 1)
check("a token revocation", value("ffibroker_token_events_total", event="revoke") == 1)
check("two token denials (a revoke, an open with a revoked token)",
      value("ffibroker_token_events_total", event="deny") == 2)
check("one session open", value("ffibroker_sessions") == 1)
check("workers in use", value("ffibroker_workers") >= 1)
check("no call in flight", value("ffibroker_calls_in_flight") == 0)

if failures:
    print("metrics checks failed:", *failures, sep="\n  ")
    print("---\n" + text)
    sys.exit(1)
print("metrics OK:", len(samples), "samples")
