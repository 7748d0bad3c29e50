"""Deployment start latency, Headwater and Prefect side by side.

    python bench/start_latency_bench.py [--n 20] [--prefect-python PATH] [--prefect-api-url URL]

Measures the time from `run_deployment(...)` to the first line of the flow
body (workloads/start_latency.py), median of N runs, for:

- Headwater `serve` (the flow's process serves its deployment), server on SQLite;
- Headwater process worker (`headwater worker start --pool`), server on SQLite;
- Prefect `serve`, against its own server (started here on port 4299 unless one
  answers), when --prefect-python is given.

Target (shared/BENCHMARKS.md, issue 4): median <= 0.25 s; Prefect measured 7.5 s here.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import free_port, start_prefect_server, start_process, stop_process

WORKLOADS = Path(__file__).resolve().parent / "workloads"
TARGET_S = 0.25


def _request(api_url: str, method: str, path: str, body: object = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        api_url + path, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _wait_ready(api_url: str, path: str, ready: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready(_request(api_url, "GET", path)):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{path} not ready after {timeout} s")


def _driver(python: str, pkg: str, deployment: str, n: int, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [python, str(WORKLOADS / "start_latency.py"), deployment, str(n)],
        env={**env, "BENCH_PKG": pkg},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"driver failed: {result.stderr[-2000:]}")
    figures: dict = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"{pkg} {deployment}: median {figures['median_s']:.3f} s", file=sys.stderr, flush=True)
    return figures


def _background(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        return subprocess.Popen(
            argv,
            env=env,
            cwd=WORKLOADS,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def deploy_on_worker_pool(api_url: str) -> None:
    """Work pool `bench` (process) and deployment `latency/latency-worker` on it."""
    _request(api_url, "POST", "/work_pools", {"name": "bench", "type": "process"})
    _request(
        api_url,
        "POST",
        "/deployments",
        {
            "name": "latency-worker",
            "flow_name": "latency",
            "entrypoint": "latency_flow.py:latency",
            "path": str(WORKLOADS),
            "work_pool_name": "bench",
        },
    )


def headwater(n: int, scratch: Path) -> dict[str, dict]:
    python = sys.executable
    headwater_cli = str(Path(python).with_name("headwater"))
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_HOME=str(scratch / "headwater"), HEADWATER_API_URL=api_url)
    server_env = {k: v for k, v in env.items() if k != "HEADWATER_API_URL"}
    server = start_process(
        [headwater_cli, "server", "start", "--port", str(port)],
        server_env,
        scratch / "server.log",
        api_url,
        "Headwater server",
    )
    results = {}
    try:
        serving = _background(
            [python, "latency_flow.py", "serve"],
            {**env, "BENCH_PKG": "headwater"},
            scratch / "serve.log",
        )
        try:
            _wait_ready(
                api_url, "/deployments/name/latency/latency", lambda d: d["status"] == "READY"
            )
            results["headwater serve"] = _driver(python, "headwater", "latency/latency", n, env)
        finally:
            _stop(serving)
        deploy_on_worker_pool(api_url)
        worker = _background(
            [headwater_cli, "worker", "start", "--pool", "bench"],
            {**env, "BENCH_PKG": "headwater"},
            scratch / "worker.log",
        )
        try:
            _wait_ready(
                api_url,
                "/deployments/name/latency/latency-worker",
                lambda d: d["status"] == "READY",
            )
            results["headwater process worker"] = _driver(
                python, "headwater", "latency/latency-worker", n, env
            )
        finally:
            _stop(worker)
    finally:
        stop_process(server)
    return results


def prefect(python: str, api_url: str, home: str, n: int, scratch: Path) -> dict[str, dict]:
    server = start_prefect_server(python, api_url, home)
    env = {**os.environ, "PREFECT_API_URL": api_url, "BENCH_PKG": "prefect"}
    try:
        serving = _background([python, "latency_flow.py", "serve"], env, scratch / "prefect.log")
        try:
            _wait_ready(
                api_url, "/deployments/name/latency/latency", lambda d: bool(d["id"]), timeout=180
            )
            time.sleep(2)  # its runner polls every few seconds: let it start
            return {"prefect serve": _driver(python, "prefect", "latency/latency", n, env)}
        finally:
            _stop(serving)
    finally:
        stop_process(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="runs per system (default 20)")
    parser.add_argument("--prefect-python", default=os.environ.get("BENCH_PREFECT_PYTHON"))
    parser.add_argument("--prefect-n", type=int, default=5, help="runs for Prefect (slow)")
    parser.add_argument("--prefect-api-url", default="http://127.0.0.1:4299/api")
    parser.add_argument("--prefect-home", default=str(Path.home() / "prefect-home"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hw-latency-") as tmp:
        scratch = Path(os.environ.get("BENCH_SCRATCH") or tmp)
        results = headwater(args.n, scratch)
        if args.prefect_python:
            results.update(
                prefect(
                    args.prefect_python,
                    args.prefect_api_url,
                    args.prefect_home,
                    args.prefect_n,
                    scratch,
                )
            )
    prefect_median = results.get("prefect serve", {}).get("median_s")
    print(f"{'system':<28} {'median':>9} {'min':>8} {'max':>8} {'vs Prefect':>11}  target")
    for name, figures in results.items():
        samples = figures["latencies_s"]
        ratio = (
            f"{prefect_median / figures['median_s']:.0f}x"
            if prefect_median and not name.startswith("prefect")
            else ""
        )
        target = f"<= {TARGET_S} s" if name.startswith("headwater") else ""
        print(
            f"{name:<28} {figures['median_s']:>8.3f}s {min(samples):>7.3f}s "
            f"{max(samples):>7.3f}s {ratio:>11}  {target}"
        )


if __name__ == "__main__":
    main()
