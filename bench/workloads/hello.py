"""Hello world: one flow calling one task. Timed whole-process by run.py.

Usage: BENCH_PKG=headwater|prefect python hello.py
"""
from __future__ import annotations

import importlib
import json
import os
import time

pkg = importlib.import_module(os.environ.get("BENCH_PKG", "headwater"))


@pkg.task
def greet(name: str) -> str:
    """Trivial task."""
    return f"hello {name}"


@pkg.flow
def hello() -> str:
    """One flow, one task."""
    return greet("world")


if __name__ == "__main__":
    t0 = time.perf_counter()
    result = hello()
    flow_s = time.perf_counter() - t0
    error = "" if result == "hello world" else f"wrong result {result!r}"
    print(json.dumps({"flow_s": flow_s, "first_error": error}))
