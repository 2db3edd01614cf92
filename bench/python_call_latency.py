#!/usr/bin/python3
"""python_call_latency: cos(0.5) through ffibrokerd from the Python package,
to set beside call_latency's C++ client figure measured in the same run
(bench/run runs both against one daemon).

Usage: PYTHONPATH=build/client/python bench/python_call_latency.py \\
           --address=unix:/path/to.sock [--iterations=N]
Prints the median and p90 in microseconds.
"""
import argparse
import statistics
import time

import ffibroker


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    with ffibroker.connect(args.address) as broker, broker.session() as s:
        libm = s.dlopen("libm.so.6", {"cos": "f64 cos(f64)"})
        cos = libm.cos
        for _ in range(args.iterations // 10 + 1):  # warm up
            cos(0.5)
        samples = []
        for _ in range(args.iterations):
            start = time.perf_counter()
            cos(0.5)
            samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    print(f"python   cos(0.5) via the ffibroker package   median {statistics.median(samples):8.1f} us"
          f"   p90 {samples[int(len(samples) * 0.9)]:8.1f} us   ({args.iterations} calls)")


if __name__ == "__main__":
    main()
