"""End-to-end fixtures: a real server (with its services), real workers, real flow processes.

`stack` starts `headwater server start` on the test's store (SQLite, and
PostgreSQL when HEADWATER_TEST_DATABASE_URL is set) with services every half
second, writes the flows of FLOWS into a project directory, and starts
workers (`headwater worker start`) on demand. Flows leave marker files in
`stack.marks`, so tests can tell how many times a body ran and when.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.helpers import headwater_command, running_server, server_env

FLOWS = """
import os
import pathlib
import time

from headwater import flow, get_run_logger, runtime, task

MARKS = pathlib.Path(os.environ["E2E_MARKS"])


def _mark(name):
    (MARKS / name).write_text(repr(time.time()))


@flow
def quick(tag: str = "x", n: int = 1) -> int:
    _mark(f"quick-{runtime.flow_run.id}-{os.getpid()}-{time.time_ns()}")
    get_run_logger().info("quick %s for deployment %s", tag, runtime.deployment.name)
    return n * 2


def _on_cancel(flow, run, state):
    _mark(f"cancelled-{run.id}")


@flow(on_cancellation=[_on_cancel])
def slow(seconds: float = 120.0) -> None:
    _mark(f"slow-started-{runtime.flow_run.id}-{os.getpid()}")
    time.sleep(seconds)


@flow(retries=1)
def fragile(seconds: float = 120.0) -> str:
    attempt = runtime.flow_run.run_count
    _mark(f"fragile-{runtime.flow_run.id}-attempt-{attempt}-{os.getpid()}")
    if attempt == 1:
        time.sleep(seconds)
    return f"attempt {attempt}"


@task
def step(i: int) -> int:
    _mark(f"step-{runtime.flow_run.id}-{i}-{os.getpid()}-{time.time_ns()}")
    if i == 4 and not (MARKS / "go-on").exists():
        time.sleep(120)  # the first attempt is killed here, after tasks 1-3 completed
    return i


@flow(persist_result=True)
def five() -> int:
    return sum(step(i) for i in range(1, 6))


@flow
def where() -> None:
    _mark(f"where-{os.environ.get('GREETING')}-{pathlib.Path.cwd().name}-{os.getpid()}")


@flow
def etl(fail: bool = False) -> str:
    if fail:
        raise ValueError("the input file is empty")
    return "loaded"


@flow
def onboard(emails: list[str]) -> int:
    _mark(f"onboard-{runtime.flow_run.id}-{len(emails)}")
    return len(emails)


@flow
def upstream() -> str:
    return "done"


@flow
def merge() -> None:
    _mark(f"merge-{runtime.flow_run.id}")


@flow
def land(path: str = "raw/2026-11-21.csv") -> None:
    from headwater.events import emit_event

    emit_event("files.landed", resource={"headwater.resource.id": f"bucket.{path}"})


@flow
def nightly(seconds: float = 0.0) -> None:
    time.sleep(seconds)


if __name__ == "__main__":
    import sys

    quick.serve(name=sys.argv[1] if len(sys.argv) > 1 else "served")
"""


class Stack:
    """A running server, its project directory, and the workers started so far."""

    def __init__(self, api_url: str, home: Path, project: Path, env: dict[str, str]) -> None:
        self.api_url = api_url
        self.home = home
        self.project = project
        self.marks = project / "marks"
        self.marks.mkdir()
        self.env = env
        self.http = httpx.Client(base_url=api_url, timeout=30)
        self.processes: list[subprocess.Popen[str]] = []

    def request(self, method: str, path: str, **options: Any) -> Any:
        response = self.http.request(method, path, **options)
        assert response.status_code < 400, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def deploy(self, flow: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {
            "name": name or flow,
            "flow_name": flow,
            "entrypoint": f"flows.py:{flow}",
            "path": str(self.project),
            "work_pool_name": "etl",
            **fields,
        }
        found: dict[str, Any] = self.request("POST", "/deployments", json=body)
        return found

    def run(self, deployment: dict[str, Any], **parameters: Any) -> dict[str, Any]:
        found: dict[str, Any] = self.request(
            "POST",
            f"/deployments/{deployment['id']}/create_flow_run",
            json={"parameters": parameters},
        )
        return found

    def flow_run(self, run_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.request("GET", f"/flow_runs/{run_id}")
        return found

    def wait_for_state(self, run_id: str, *types: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.flow_run(run_id)
            if run["state_type"] in types:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"run {run_id} is {run['state_type']} ({run['state_message']}), not "
                    f"{types} after {timeout} s; logs: {self.logs()}"
                )
            time.sleep(0.1)

    def wait_for_mark(self, prefix: str, timeout: float = 30.0) -> list[Path]:
        deadline = time.monotonic() + timeout
        while True:
            found = sorted(self.marks.glob(f"{prefix}*"))
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no mark {prefix!r} after {timeout} s; {self.logs()}")
            time.sleep(0.05)

    def start_worker(self, *args: str, name: str | None = None) -> subprocess.Popen[str]:
        label = name or f"worker-{len(self.processes)}"
        argv = [*headwater_command(), "worker", "start", "--pool", "etl", "--name", label, *args]
        return self.start(argv, label)

    def start(self, argv: list[str], label: str, **env: str) -> subprocess.Popen[str]:
        log = (self.home / f"{label}.log").open("w")
        process = subprocess.Popen(
            argv,
            env={**self.env, **env},
            cwd=self.project,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}" for path in self.home.glob("*.log")
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        self.http.close()


@contextlib.contextmanager
def _stack(database_url: str, tmp_path: Path, *server_args: str) -> Iterator[Stack]:
    home = tmp_path / "home"
    project = tmp_path / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOWS)
    with running_server(
        home,
        database_url,
        *server_args,
        HEADWATER_SERVER_SERVICES_INTERVAL="0.5",
        # The tests' SMTP server and webhook receiver listen on loopback.
        HEADWATER_SERVER_AUTOMATIONS_ALLOWED_HOSTS="127.0.0.1,localhost",
    ) as (api_url, _server):
        env = server_env(
            home,
            database_url,
            HEADWATER_API_URL=api_url,
            HEADWATER_SERVER_SERVICES_INTERVAL="0.5",
        )
        env["E2E_MARKS"] = str(project / "marks")
        stack = Stack(api_url, home, project, env)
        stack.request("POST", "/work_pools", json={"name": "etl", "type": "process"})
        try:
            yield stack
        finally:
            stack.stop()


@pytest.fixture
def stack(database_url: str, tmp_path: Path) -> Iterator[Stack]:
    """A server with its services, on the test's store."""
    with _stack(database_url, tmp_path) as running:
        yield running


@pytest.fixture
def stack_without_services(database_url: str, tmp_path: Path) -> Iterator[Stack]:
    """A server started with --no-services: tests run `headwater services start` themselves."""
    with _stack(database_url, tmp_path, "--no-services") as running:
        yield running


def alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)
