"""One flow doing `task.map(range(N))` and waiting for every result.

Usage: BENCH_PKG=headwater|prefect python map.py N
Prints ms per task measured inside the flow (map + wait + results), and whole-flow seconds.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import time

name = os.environ.get("BENCH_PKG", "headwater")
pkg = importlib.import_module(name)
wait = importlib.import_module(f"{name}.futures").wait


@pkg.task
def double(i: int) -> int:
    """Trivial task."""
    return i * 2


@pkg.flow
def mapped(n: int) -> tuple[float, list[str]]:
    """Map `double` over range(n), wait for all; return (seconds, error texts)."""
    t0 = time.perf_counter()
    futures = double.map(range(n))
    wait(futures)
    errors: list[str] = []
    for i, fut in enumerate(futures):
        try:
            result = fut.result()
            if result != i * 2:
                errors.append(f"task {i}: wrong result {result!r}")
        except Exception as exc:  # count, don't crash
            errors.append(f"task {i}: {exc!r}")
    return time.perf_counter() - t0, errors


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    t0 = time.perf_counter()
    loop_s, errors = mapped(n)
    flow_s = time.perf_counter() - t0
    print(json.dumps({"n": n, "ms_per_task": loop_s * 1000 / n, "loop_s": loop_s, "flow_s": flow_s,
                      "errors": len(errors), "first_error": errors[0][:500] if errors else ""}))
