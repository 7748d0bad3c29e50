"""Event-to-run latency: from an event arriving at the API to the first line of the flow
run an automation starts for it, Headwater and (optionally) Prefect side by side.

    python bench/event_latency.py [--n 20] [--database sqlite|postgresql]
                                  [--prefect-python PATH] [--prefect-n 5]

Headwater: a server (with its services) on SQLite or PostgreSQL, a process worker
on pool `bench`, deployment `latency/latency-worker` (workloads/latency_flow.py),
and an automation "on `bench.go`, run that deployment with
marker={{ event.payload.marker }}". Each sample posts one event to
`POST /api/events` and waits for the flow body to stamp the marker file: the
figure includes the automations service, the run's creation, the worker's
claim and the flow process start.

Prefect (when --prefect-python is given): the same automation on its own
server (port 4299), the flow served with `serve`, events posted to its
`POST /api/events`.

Target (issue 6): median <= 0.5 s including the worker start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import free_port, recreate_database, start_prefect_server, start_process, stop_process
from start_latency_bench import (
    _background,
    _request,
    _stop,
    _wait_ready,
    deploy_on_worker_pool,
)

TARGET_S = 0.5


def _post(api_url: str, path: str, body: object) -> object:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        api_url + path, data=data, method="POST", headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def _event(marker: Path, prefix: str) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": dt.datetime.now(dt.UTC).isoformat(),
        "event": "bench.go",
        "resource": {f"{prefix}.resource.id": f"bench.{marker.name}"},
        "payload": {"marker": str(marker)},
    }


def _samples(api_url: str, prefix: str, n: int, directory: Path, pause: float) -> list[float]:
    samples = []
    for index in range(-1, n):  # -1: a warm-up sample, not counted
        marker = directory / f"started-{index}"
        t0 = time.time()
        _post(api_url, "/events", [_event(marker, prefix)])
        deadline = time.monotonic() + 120
        while not marker.exists() or not marker.read_text():
            if time.monotonic() > deadline:
                raise SystemExit(f"sample {index}: no flow run started within 120 s")
            time.sleep(0.002)
        if index >= 0:
            samples.append(float(marker.read_text()) - t0)
        time.sleep(pause)  # the previous run finishes; the worker's spare process warms up
    return samples


def headwater(n: int, database: str, scratch: Path) -> list[float]:
    python = sys.executable
    cli = str(Path(python).with_name("headwater"))
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_HOME=str(scratch / "headwater"), HEADWATER_API_URL=api_url)
    server_env = {k: v for k, v in env.items() if k != "HEADWATER_API_URL"}
    if database == "postgresql":
        url = os.environ.get(
            "HEADWATER_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
        url = url.rsplit("/", 1)[0] + "/hw_bench_events"
        recreate_database(url)
        server_env["HEADWATER_DATABASE_URL"] = url
    server = start_process(
        [cli, "server", "start", "--port", str(port)],
        server_env,
        scratch / "server.log",
        api_url,
        "Headwater server",
    )
    try:
        deploy_on_worker_pool(api_url)
        _request(
            api_url,
            "POST",
            "/automations",
            {
                "name": "bench-go",
                "trigger": {"type": "event", "expect": ["bench.go"]},
                "actions": [
                    {
                        "type": "run-deployment",
                        "deployment": "latency/latency-worker",
                        "parameters": {"marker": "{{ event.payload.marker }}"},
                    }
                ],
            },
        )
        worker = _background(
            [cli, "worker", "start", "--pool", "bench"],
            {**env, "BENCH_PKG": "headwater"},
            scratch / "worker.log",
        )
        try:
            _wait_ready(
                api_url,
                "/deployments/name/latency/latency-worker",
                lambda d: d["status"] == "READY",
            )
            directory = scratch / f"markers-{database}"
            directory.mkdir()
            return _samples(api_url, "headwater", n, directory, pause=1.0)
        finally:
            _stop(worker)
    finally:
        stop_process(server)


def prefect(python: str, api_url: str, home: str, n: int, scratch: Path) -> list[float]:
    server = start_prefect_server(python, api_url, home)
    env = {**os.environ, "PREFECT_API_URL": api_url, "BENCH_PKG": "prefect"}
    try:
        serving = _background([python, "latency_flow.py", "serve"], env, scratch / "prefect.log")
        try:
            _wait_ready(
                api_url, "/deployments/name/latency/latency", lambda d: bool(d["id"]), timeout=180
            )
            deployment = _request(api_url, "GET", "/deployments/name/latency/latency")
            assert isinstance(deployment, dict)
            name = f"bench-go-{uuid.uuid4().hex[:8]}"
            _post(
                api_url,
                "/automations/",
                {
                    "name": name,
                    "trigger": {
                        "type": "event",
                        "posture": "Reactive",
                        "expect": ["bench.go"],
                        "threshold": 1,
                        "within": 0,
                    },
                    "actions": [
                        {
                            "type": "run-deployment",
                            "source": "selected",
                            "deployment_id": deployment["id"],
                            "parameters": {
                                "marker": {
                                    "__prefect_kind": "jinja",
                                    "template": "{{ event.payload.marker }}",
                                }
                            },
                        }
                    ],
                },
            )
            time.sleep(5)  # its automation cache and runner polling settle
            directory = scratch / "markers-prefect"
            directory.mkdir()
            return _samples(api_url, "prefect", n, directory, pause=2.0)
        finally:
            _stop(serving)
    finally:
        stop_process(server)


def _row(name: str, samples: list[float], reference: float | None) -> str:
    median = statistics.median(samples)
    ratio = f"{reference / median:.0f}x" if reference and not name.startswith("prefect") else ""
    p95 = sorted(samples)[max(0, int(len(samples) * 0.95) - 1)]
    target = f"<= {TARGET_S} s" if name.startswith("headwater") else ""
    return (
        f"{name:<30} {median:>8.3f}s {min(samples):>7.3f}s {p95:>7.3f}s {max(samples):>7.3f}s "
        f"{ratio:>11}  {target}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="samples per system (default 20)")
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--prefect-python", default=os.environ.get("BENCH_PREFECT_PYTHON"))
    parser.add_argument("--prefect-n", type=int, default=5, help="samples for Prefect (slow)")
    parser.add_argument("--prefect-api-url", default="http://127.0.0.1:4299/api")
    parser.add_argument("--prefect-home", default=str(Path.home() / "prefect-home"))
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="hw-event-latency-") as tmp:
        scratch = Path(tmp)
        databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
        for database in databases:
            run_dir = scratch / database
            run_dir.mkdir()
            results[f"headwater ({database})"] = headwater(args.n, database, run_dir)
        if args.prefect_python:
            run_dir = scratch / "prefect"
            run_dir.mkdir()
            results["prefect serve (sqlite)"] = prefect(
                args.prefect_python,
                args.prefect_api_url,
                args.prefect_home,
                args.prefect_n,
                run_dir,
            )
    reference = (
        statistics.median(results["prefect serve (sqlite)"]) if args.prefect_python else None
    )
    print(
        f"{'event -> flow body starts':<30} {'median':>9} {'min':>8} {'p95':>8} {'max':>8} "
        f"{'vs Prefect':>11}  target"
    )
    for name, samples in results.items():
        print(_row(name, samples, reference))


if __name__ == "__main__":
    main()
