"""Per-task cost of persisting a small result and of a cache hit.

Usage: BENCH_PKG=headwater|prefect python cache_overhead.py N
(HEADWATER_HOME picks Headwater's store; Prefect needs PREFECT_API_URL, see bench/README.md)
One flow run calls a trivial task N times in each of three ways, sequentially:
  plain    no persistence (the baseline)
  persist  cache_policy=INPUTS with N distinct inputs: a cache miss, then a record written
  hit      the same N inputs again: each call reads its record and ends "Cached"
Prints ms per task for each and the overhead over `plain`, as JSON. Results go to a
temporary local directory, removed at the end.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tempfile
import time

PKG = os.environ.get("BENCH_PKG", "headwater")
pkg = importlib.import_module(PKG)
INPUTS = importlib.import_module(f"{PKG}.cache_policies").INPUTS
flow, task = pkg.flow, pkg.task

storage_path = tempfile.mkdtemp(prefix="headwater-cache-bench-")
if PKG == "prefect":  # Prefect takes a storage block saved on its server, not a path
    block = importlib.import_module("prefect.filesystems").LocalFileSystem(basepath=storage_path)
    block.save("headwater-cache-bench", overwrite=True)
    storage = "local-file-system/headwater-cache-bench"
else:
    storage = storage_path


@task
def plain(i: int) -> dict[str, int]:
    return {"i": i, "square": i * i}


@task(cache_policy=INPUTS, result_storage=storage)
def cached(i: int) -> dict[str, int]:
    return {"i": i, "square": i * i}


def _loop(fn, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - t0


@flow
def cache_overhead(n: int) -> dict[str, float]:
    _loop(plain, min(n, 200))  # warm-up: imports and first-call costs
    plain_s = _loop(plain, n)
    persist_s = _loop(cached, n)
    hit_s = _loop(cached, n)
    return {"plain_s": plain_s, "persist_s": persist_s, "hit_s": hit_s}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    try:
        t0 = time.perf_counter()
        loops = cache_overhead(n)
        flow_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(storage_path, ignore_errors=True)
    ms = {name: loops[f"{name}_s"] * 1000 / n for name in ("plain", "persist", "hit")}
    print(json.dumps({
        "n": n,
        "ms_per_task_plain": round(ms["plain"], 4),
        "ms_per_task_persist": round(ms["persist"], 4),
        "ms_per_task_hit": round(ms["hit"], 4),
        "persist_overhead_ms": round(ms["persist"] - ms["plain"], 4),
        "hit_overhead_ms": round(ms["hit"] - ms["plain"], 4),
        "flow_s": round(flow_s, 3),
    }))
