"""Builders of request bodies for the server tests, and a real server process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from headwater.core.ids import flow_id, uuid7_hex

#: Epoch seconds with microsecond precision (what both databases keep exactly).
T0 = 1_700_000_000.25


def flow_record(name: str = "etl") -> dict[str, Any]:
    return {"id": flow_id(name), "name": name, "created": T0}


def flow_run_record(flow: str = "etl", **values: Any) -> dict[str, Any]:
    run_id = values.pop("id", uuid7_hex())
    record: dict[str, Any] = {
        "id": run_id,
        "flow_id": flow_id(flow),
        "name": f"run-{run_id[-6:]}",
        "state_type": "RUNNING",
        "state_name": "Running",
        "state_message": None,
        "state_timestamp": T0 + 1,
        "parameters": {"x": 1},
        "tags": ["etl"],
        "run_count": 1,
        "parent_flow_run_id": None,
        "root_flow_run_id": run_id,
        "parent_task_run_id": None,
        "deployment_id": None,
        "expected_start_time": T0,
        "start_time": T0 + 1,
        "end_time": None,
        "created": T0,
        "updated": T0 + 1,
        "process": None,
    }
    return record | values


def task_run_record(flow_run_id: str | None, index: int = 0, **values: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": uuid7_hex(),
        "flow_run_id": flow_run_id,
        "task_key": "tasks.double-1a2b3c",
        "dynamic_key": str(index),
        "name": f"double-{index}",
        "state_type": "COMPLETED",
        "state_name": "Completed",
        "state_message": None,
        "state_timestamp": T0 + 3 + index,
        "tags": [],
        "run_count": 1,
        "task_inputs": {"x": []},
        "start_time": T0 + 2 + index,
        "end_time": T0 + 3 + index,
        "created": T0 + 2 + index,
        "updated": T0 + 3 + index,
    }
    return record | values


def state_record(
    flow_run_id: str | None, task_run_id: str | None, state_type: str, timestamp: float
) -> dict[str, Any]:
    return {
        "id": uuid7_hex(),
        "flow_run_id": flow_run_id,
        "task_run_id": task_run_id,
        "type": state_type,
        "name": state_type.title(),
        "message": None,
        "timestamp": timestamp,
    }


def log_record(
    flow_run_id: str | None,
    message: str,
    *,
    task_run_id: str | None = None,
    level: int = 20,
    timestamp: float = T0 + 5,
) -> dict[str, Any]:
    return {
        "id": uuid7_hex(),
        "flow_run_id": flow_run_id,
        "task_run_id": task_run_id,
        "level": level,
        "name": "headwater.task_runs",
        "message": message,
        "timestamp": timestamp,
    }


def run_batch(
    flow: str = "etl", *, tasks: int = 3, logs: int = 2, **run_values: Any
) -> dict[str, list[dict[str, Any]]]:
    """What the recorder sends for one flow run: its flow, the run, task runs, states, logs."""
    run = flow_run_record(flow, **run_values)
    body: dict[str, list[dict[str, Any]]] = {
        "flows": [flow_record(flow)],
        "flow_runs": [run],
        "task_runs": [],
        "states": [state_record(run["id"], None, "RUNNING", T0 + 1)],
        "logs": [],
    }
    for index in range(tasks):
        task = task_run_record(run["id"], index)
        body["task_runs"].append(task)
        for offset, state_type in enumerate(("PENDING", "RUNNING", "COMPLETED")):
            body["states"].append(state_record(run["id"], task["id"], state_type, T0 + 2 + offset))
    for index in range(logs):
        body["logs"].append(log_record(run["id"], f"line {index}", timestamp=T0 + 5 + index))
    return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def headwater_command() -> list[str]:
    return [str(Path(sys.executable).with_name("headwater"))]


def server_env(home: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_HOME=str(home), HEADWATER_DATABASE_URL=database_url, **extra)
    return env


@contextlib.contextmanager
def running_server(
    home: Path, database_url: str, *args: str, **env: str
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`headwater server start` on a free port; yields (base URL of the API, the process)."""
    port = free_port()
    argv = [*headwater_command(), "server", "start", "--port", str(port), *args]
    with serving(argv, port, home, server_env(home, database_url, **env)) as running:
        yield running


@contextlib.contextmanager
def serving(
    argv: list[str], port: int, home: Path, env: dict[str, str]
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Start a server process with `argv`, wait for /api/health, stop it afterwards."""
    log = home / f"server-{port}.log"
    home.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"server exited {process.returncode}: {log.read_text()}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {log.read_text()}")
            time.sleep(0.05)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def listen_to_every_event(client: Any) -> None:
    """Create an automation whose trigger may count any event, so that events go to the
    inbox (with no automation listening, the writers leave them out of it)."""
    response = client.post(
        "/automations",
        json={
            "name": "every-event",
            "trigger": {"type": "event"},
            "actions": [{"type": "do-nothing"}],
        },
    )
    assert response.status_code == 201, response.text
