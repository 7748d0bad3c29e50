"""The flow the start-latency benchmark deploys: its first line stamps the time it started.

Usage (serve mode): BENCH_PKG=headwater|prefect python latency_flow.py serve
"""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path

pkg = importlib.import_module(os.environ.get("BENCH_PKG", "headwater"))


@pkg.flow
def latency(marker: str = "") -> None:
    """Writes the wall-clock time its body started to `marker`."""
    Path(marker).write_text(repr(time.time()))


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    latency.serve(name="latency")
