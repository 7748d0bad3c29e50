"""Start latency: from `run_deployment` to the first line of the flow body, N times.

Usage: BENCH_PKG=headwater|prefect python start_latency.py DEPLOYMENT N

Prints one JSON line: the latencies in seconds, and their median. The
deployment's flow is latency_flow.py; the harness (start_latency_bench.py)
serves it, or runs a worker of its pool, before calling this.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

pkg = importlib.import_module(os.environ.get("BENCH_PKG", "headwater"))
run_deployment = importlib.import_module(f"{pkg.__name__}.deployments").run_deployment


def once(name: str, directory: Path, index: int, timeout: float = 60.0) -> float:
    marker = directory / f"started-{index}"
    t0 = time.time()
    run_deployment(name, parameters={"marker": str(marker)}, timeout=0)
    deadline = time.monotonic() + timeout
    while not marker.exists() or not marker.read_text():
        if time.monotonic() > deadline:
            raise SystemExit(f"run {index} did not start within {timeout} s")
        time.sleep(0.002)
    return float(marker.read_text()) - t0


def main() -> None:
    name, n = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        once(name, Path(tmp), -1)  # warm-up: the first run also imports the client here
        samples = []
        for index in range(n):
            samples.append(once(name, Path(tmp), index))
            time.sleep(1.0)  # let the previous run finish, and the next spare process warm up
    print(json.dumps({"latencies_s": samples, "median_s": statistics.median(samples)}))


if __name__ == "__main__":
    main()
