"""`headwater worker start`: real worker processes, against a server or the embedded store.

Each test starts `headwater worker start` as a process (it installs signal
handlers and runs until stopped, so it does not run inside pytest) and stops
it with SIGTERM, as a service manager would: it must exit 0, without a
traceback. These tests take a few seconds each.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.client import api as client_api

from .helpers import HEADWATER, assert_one_line_error, invoke, run_headwater

FLOW = """
from headwater import flow, get_run_logger


@flow
def greet(name: str = "world") -> str:
    get_run_logger().info("hello %s", name)
    return name
"""


def worker_env(**settings: str) -> dict[str, str]:
    """This process's environment without HEADWATER_* settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(settings)
    return env


@contextlib.contextmanager
def running_worker(log: Path, env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[str]]:
    """`headwater worker start --pool etl ARGS` until the block ends, then SIGTERM: the worker
    must stop within seconds with exit code 0 and no traceback in its log."""
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(HEADWATER), "worker", "start", "--pool", "etl", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + 30
        while "waiting for runs of work pool 'etl'" not in log.read_text():
            assert process.poll() is None, f"worker exited {process.returncode}: {log.read_text()}"
            assert time.monotonic() < deadline, f"worker did not start: {log.read_text()}"
            time.sleep(0.05)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
            raise AssertionError(f"worker did not stop on SIGTERM: {log.read_text()}") from None
    text = log.read_text()
    assert code == 0, text
    assert "Traceback" not in text, text
    assert text.rstrip().endswith("Worker stopped."), text


@pytest.fixture
def embedded(store: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project with flows.py (the current directory) and a pool 'etl' on the test's store,
    with no server configured."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "flows.py").write_text(FLOW)
    monkeypatch.chdir(root)
    created = invoke("work-pool", "create", "etl", "--type", "process")
    assert created.exit_code == 0, created.stderr
    yield root
    with client_api._clients_lock:  # one client per store and process: close this test's
        for client in client_api._clients.values():
            client.close()
        client_api._clients.clear()


def test_worker_start_needs_an_existing_pool(store: Any) -> None:
    result = run_headwater("worker", "start", "--pool", "nowhere")
    assert_one_line_error(
        result, "No work pool named 'nowhere'", "headwater work-pool create nowhere"
    )


def test_worker_start_needs_existing_queues(embedded: Path) -> None:
    result = run_headwater("worker", "start", "--pool", "etl", "--queue", "urgent")
    assert_one_line_error(
        result, "No work queue named 'urgent'", "headwater work-queue create urgent --pool etl"
    )


def test_worker_without_a_server_runs_deployments_of_the_embedded_store(
    embedded: Path, tmp_path: Path
) -> None:
    """The issue's example with no server: the worker serves the store's API itself."""
    env = worker_env(
        HEADWATER_HOME=os.environ["HEADWATER_HOME"],
        HEADWATER_DATABASE_URL=os.environ["HEADWATER_DATABASE_URL"],
    )
    log = tmp_path / "worker.log"
    with running_worker(log, env, "--name", "local-worker", "--limit", "2"):
        deployed = invoke("deploy", "flows.py:greet", "--name", "hello", "--pool", "etl")
        assert deployed.exit_code == 0, deployed.stderr
        watched = invoke(
            "deployment", "run", "greet/hello", "--param", "name=Ada", "--watch", "--timeout", "60"
        )
        assert watched.exit_code == 0, (watched.stdout, watched.stderr, log.read_text())
        assert "hello Ada" in watched.stdout
        assert "| Completed" in watched.stdout
    text = log.read_text()
    assert "No server configured (HEADWATER_API_URL): serving the API of" in text
    assert "Worker 'local-worker' started" in text
    assert "Started flow run" in text
    assert "process exited with code 0" in text
