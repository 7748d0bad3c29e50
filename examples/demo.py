"""The quick start's main job: flows run embedded, then a server, a worker and a deployment.

    python examples/demo.py          # `make demo`

1. Runs the example flows on the embedded SQLite store (no server).
2. Starts `headwater server start` on the same store, creates the work pool
   `demo`, and starts `headwater worker start --pool demo`.
3. Deploys examples/etl.py's flow on the pool with a nightly schedule, runs the
   deployment now and watches it finish on the worker.
4. Applies examples/automations.yaml and emits an event that runs the deployment.
5. Checks that the web UI answers at the server's address.
6. Keeps the server (and its UI) and the worker running until Ctrl-C when run from
   a terminal (set DEMO_EXIT=1 to stop here instead); otherwise stops them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
HEADWATER = str(BIN / "headwater")
PORT = os.environ.get("DEMO_PORT", "4200")
API_URL = f"http://127.0.0.1:{PORT}/api"


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def headwater(*args: str, check: bool = True, env: dict[str, str] | None = None) -> None:
    print(f"$ headwater {' '.join(args)}", flush=True)
    result = subprocess.run([HEADWATER, *args], cwd=ROOT, env=env, check=False)
    if check and result.returncode != 0:
        raise SystemExit(f"`headwater {' '.join(args)}` failed ({result.returncode})")


def wait_healthy(process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{API_URL}/health", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server did not answer at {API_URL} within {timeout:g} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    step("Flows on the embedded store: no server")
    for example in ("hello.py", "etl.py", "fan_out.py"):
        subprocess.run([sys.executable, str(ROOT / "examples" / example)], check=True)
    headwater("flow-run", "ls", "--limit", "5")

    step(f"A server on the same store, at {API_URL}")
    env = {**os.environ, "HEADWATER_API_URL": API_URL}
    server = subprocess.Popen([HEADWATER, "server", "start", "--port", PORT], cwd=ROOT)
    processes = [server]
    try:
        wait_healthy(server)
        headwater("work-pool", "create", "demo", "--type", "process", check=False, env=env)
        processes.append(
            subprocess.Popen([HEADWATER, "worker", "start", "--pool", "demo"], cwd=ROOT, env=env)
        )
        step("A deployment on the pool, run now on the worker")
        headwater(
            "deploy",
            "examples/etl.py:etl",
            "--name",
            "nightly",
            "--pool",
            "demo",
            "--cron",
            "0 2 * * *",
            "--param",
            'urls=["a", "b", "c"]',
            env=env,
        )
        headwater("deployment", "run", "etl/nightly", "--watch", "--timeout", "120", env=env)
        step("An automation: when files land, run the deployment with their names")
        headwater("automation", "apply", "examples/automations.yaml", env=env)
        headwater(
            "event",
            "emit",
            "demo.files.landed",
            "--resource-id",
            "bucket.demo",
            "--payload",
            '{"urls": ["d", "e"]}',
            env=env,
        )
        time.sleep(3)  # the automation fires and the worker runs the flow
        headwater("automation", "firings", "etl-on-files-landed", env=env)
        headwater("deployment", "ls", env=env)
        headwater("flow-run", "ls", "--limit", "5", env=env)
        ui_url = API_URL.removesuffix("/api")
        step(f"The web UI at {ui_url}")
        for page in ("/", "/flow-runs", "/deployments", "/automations"):
            with urllib.request.urlopen(ui_url + page, timeout=30) as answer:
                print(f"GET {page}: {answer.status} {answer.headers['content-type']}")
        if sys.stdin.isatty() and not os.environ.get("DEMO_EXIT"):
            step(
                f"Server at {ui_url} (open it in a browser) and worker running; try "
                f"`HEADWATER_API_URL={API_URL} headwater deployment run etl/nightly --watch`. "
                "Ctrl-C stops them."
            )
            with contextlib.suppress(KeyboardInterrupt):
                server.wait()
    finally:
        for process in reversed(processes):
            stop(process)


if __name__ == "__main__":
    main()
