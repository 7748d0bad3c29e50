"""Fixtures for client tests: a fake server, and the SDK pointed at it (or at nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.client.fake_server import FakeServer, free_port

import headwater.client._http as http_module
from headwater.client import HttpBackend, spool_directory
from headwater.core.ids import flow_id, uuid7_hex
from headwater.core.records import Batch
from headwater.core.states import StateType
from headwater.engine.recorder import close_recorder
from headwater.settings import reset_settings

#: Retry budget in tests: long enough for a retry or two, short enough to wait for.
RETRY_SECONDS = 1.0

#: Put at the top of child scripts: the same short retry budget as the tests.
PROLOGUE = f"""
import headwater.client._http
headwater.client._http.RETRY_SECONDS = {RETRY_SECONDS}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[FakeServer]:
    with FakeServer(tmp_path / "server.db") as fake:
        yield fake


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def spool_of(home: Path, api_url: str) -> Path:
    return spool_directory(home, api_url)


@pytest.fixture
def remote(server: FakeServer, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeServer]:
    """Run flows in this process against the fake server."""
    _point_at(server.api_url, home, monkeypatch)
    yield server
    close_recorder()
    reset_settings()


@pytest.fixture
def unreachable(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run flows in this process against a port where nothing listens; yields the API URL."""
    api_url = f"http://127.0.0.1:{free_port()}/api"
    _point_at(api_url, home, monkeypatch)
    yield api_url
    close_recorder()
    reset_settings()


def _point_at(api_url: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    monkeypatch.setenv("HEADWATER_API_URL", api_url)
    monkeypatch.delenv("HEADWATER_DATABASE_URL", raising=False)
    monkeypatch.setattr(http_module, "RETRY_SECONDS", RETRY_SECONDS)
    close_recorder()
    reset_settings()


def backend_for(api_url: str, home: Path, **options: Any) -> HttpBackend:
    options.setdefault("retry_seconds", RETRY_SECONDS)
    return HttpBackend(api_url, spool_directory=spool_of(home, api_url), **options)


def make_batch(tasks: int, *, final: StateType | None = None, name: str = "batch") -> Batch:
    """Records of one root flow run with `tasks` completed task runs (three states each)."""
    now = time.time()
    run_id = uuid7_hex()
    flow = flow_id("client-tests")
    state = final or StateType.RUNNING
    batch = Batch()
    batch.flows[flow] = (flow, "client-tests", now)
    batch.flow_runs[run_id] = (
        run_id, flow, name, state, state.value.title(), None, now, {"n": tasks}, ["t"], 1,
        None, run_id, None, None, now, now, now if final else None, now, now, "host:1:1",
    )  # fmt: skip
    batch.states.append((uuid7_hex(), run_id, None, state, state.value.title(), None, now))
    for i in range(tasks):
        task_id = uuid7_hex()
        batch.task_runs[task_id] = (
            task_id, run_id, "tests.step", str(i), f"step-{i}", StateType.COMPLETED,
            "Completed", None, now, [], 1, {"x": []}, now, now, now, now,
        )  # fmt: skip
        for kind in (StateType.PENDING, StateType.RUNNING, StateType.COMPLETED):
            batch.states.append((uuid7_hex(), run_id, task_id, kind, kind.title(), None, now))
    batch.logs.append((uuid7_hex(), run_id, None, 20, "tests", f"{tasks} tasks", now))
    return batch


def run_script(
    code: str, home: Path, api_url: str, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """Run `code` (after PROLOGUE) in a new Python process pointed at `api_url`."""
    return subprocess.run(
        [sys.executable, "-c", PROLOGUE + textwrap.dedent(code)],
        env=script_env(home, api_url),
        capture_output=True,
        text=True,
        timeout=120,
        **popen,
    )


def script_env(home: Path, api_url: str) -> dict[str, str]:
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_API_URL": api_url}
    env.pop("HEADWATER_DATABASE_URL", None)
    return env


def wait_until(condition: Any, timeout: float = 20.0, message: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(0.02)
