"""One flow calling a trivial task N times, sequentially.

Usage: BENCH_PKG=headwater|prefect python sequential.py N
Prints ms per task measured inside the flow around the loop, and whole-flow seconds.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import time

pkg = importlib.import_module(os.environ.get("BENCH_PKG", "headwater"))


@pkg.task
def inc(i: int) -> int:
    """Trivial task."""
    return i + 1


@pkg.flow
def sequential(n: int) -> float:
    """Call `inc` n times; return the loop's wall time in seconds."""
    t0 = time.perf_counter()
    for i in range(n):
        inc(i)
    return time.perf_counter() - t0


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    t0 = time.perf_counter()
    loop_s = sequential(n)
    flow_s = time.perf_counter() - t0
    print(json.dumps({"n": n, "ms_per_task": loop_s * 1000 / n, "loop_s": loop_s,
                      "flow_s": flow_s}))
