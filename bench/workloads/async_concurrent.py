"""N concurrent async subflows, each awaiting 10 async tasks in turn, in an async parent flow.

Usage: BENCH_PKG=headwater|prefect python async_concurrent.py N
Prints total seconds, subflow runs per second, the number of failed subflows, and the
CPU seconds this process used for them (all its threads).
"""
from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time

pkg = importlib.import_module(os.environ.get("BENCH_PKG", "headwater"))
TASKS_PER_FLOW = 10


@pkg.task
async def step(i: int) -> int:
    """Trivial async task."""
    return i + 1


@pkg.flow
async def child(k: int) -> int:
    """One subflow: 10 async tasks, awaited one after another."""
    total = 0
    for i in range(TASKS_PER_FLOW):
        total += await step(i)
    return total


@pkg.flow
async def parent(n: int) -> list[str]:
    """Run n child subflows concurrently; return the error texts of those that failed."""
    results = await asyncio.gather(*(child(k) for k in range(n)), return_exceptions=True)
    expected = sum(range(1, TASKS_PER_FLOW + 1))
    return [repr(r) if isinstance(r, BaseException) else f"wrong result {r!r}"
            for r in results if r != expected]


def main(n: int) -> dict[str, object]:
    """Run the parent flow once and summarise."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        errors = asyncio.run(parent(n))
        parent_error = ""
    except Exception as exc:  # report, don't crash
        errors, parent_error = [], f"parent flow failed: {exc!r}"
    total_s = time.perf_counter() - t0
    ok_runs = n - len(errors) if not parent_error else 0
    first = parent_error or (errors[0] if errors else "")
    return {"n": n, "total_s": total_s, "runs_per_s": ok_runs / total_s,
            "errors": len(errors) if not parent_error else n, "first_error": first[:500],
            "cpu_s": time.process_time() - cpu0}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)))
