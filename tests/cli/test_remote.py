"""The run commands against a real `headwater server start` process (HEADWATER_API_URL set).

A real flow runs in its own process with HEADWATER_API_URL set, so every record
reaches the server's SQLite store through the API; the CLI then reads it back
through the API, and must print what it prints when it reads that store directly.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.server.helpers import free_port, running_server
from typer.testing import Result

from .helpers import FLOW_SCRIPT, assert_one_line_error, invoke, run_headwater


class Server:
    """A running server, its store's URL, and a way to run flows against it."""

    def __init__(self, api_url: str, database_url: str, root: Path) -> None:
        self.api_url = api_url
        self.database_url = database_url
        self.script = root / "etl_demo.py"
        self.script.write_text(FLOW_SCRIPT)
        self.home = root / "flow-home"

    def start_flow(self, name: str, n: int, pause: float) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        env.update(HEADWATER_API_URL=self.api_url, HEADWATER_HOME=str(self.home), FLOW_NAME=name)
        return subprocess.Popen(
            [sys.executable, str(self.script), str(n), str(pause)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server on a SQLite store for the module, with one finished run of `etl-demo`."""
    root = tmp_path_factory.mktemp("remote")
    database_url = f"sqlite:///{root / 'server.db'}"
    with running_server(root / "server-home", database_url) as (api_url, _):
        served = Server(api_url, database_url, root)
        process = served.start_flow("etl-demo", 5, 0)
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert stdout.strip() == "5"
        yield served


@pytest.fixture
def remote(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """The CLI pointed at the server (and at no database)."""
    monkeypatch.setenv("HEADWATER_API_URL", server.api_url)
    return server


def _finished_run_id() -> str:
    listed = invoke("flow-run", "ls", "--json", "--flow", "etl-demo")
    assert listed.exit_code == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert len(runs) == 1
    run_id: str = runs[0]["id"]
    return run_id


def _same_layout(text: str) -> str:
    """`text` with digits blanked: times and durations may differ below a microsecond."""
    # Each run of digits, not each digit: a duration computed from the API's
    # microsecond-rounded times can print with fewer digits.
    return re.sub(r"\d+", "0", text)


def test_ls_inspect_logs_and_task_runs_through_the_server(remote: Server) -> None:
    listed = invoke("flow-run", "ls", "--json", "--flow", "etl-demo")
    assert listed.exit_code == 0, listed.stderr
    runs = json.loads(listed.stdout)
    assert [(r["flow_name"], r["state_type"], r["parameters"]) for r in runs] == [
        ("etl-demo", "COMPLETED", {"n": 5, "pause": 0.0})
    ]
    run_id = runs[0]["id"]

    table = invoke("flow-run", "ls", "--flow", "etl-demo")
    assert table.exit_code == 0, table.stderr
    assert run_id[:18] in table.stdout and "Completed" in table.stdout
    assert "1 of 1 flow run (1 Completed)." in table.stdout

    inspected = invoke("flow-run", "inspect", run_id)
    assert inspected.exit_code == 0, inspected.stderr
    assert "Task runs: 2 (2 Completed)" in inspected.stdout
    assert "extract-0" in inspected.stdout and "load-0" in inspected.stdout
    history = inspected.stdout[inspected.stdout.index("State history") :]
    assert history.index("Pending") < history.index("Running") < history.index("Completed")
    document = json.loads(invoke("flow-run", "inspect", run_id, "--json").stdout)
    assert [task["name"] for task in document["task_runs"]] == ["extract-0", "load-0"]
    assert [state["type"] for state in document["state_history"]] == [
        "PENDING",
        "RUNNING",
        "COMPLETED",
    ]

    logs = invoke("flow-run", "logs", run_id)
    assert logs.exit_code == 0, logs.stderr
    messages = [line.split(" | ", 2)[2] for line in logs.stdout.splitlines()]
    assert messages.index("flow - starting") < messages.index("extract-0 - extracting 5 rows")
    assert messages.index("extract-0 - extracting 5 rows") < messages.index(
        "load-0 - loading 5 rows"
    )
    warnings = invoke("flow-run", "logs", run_id, "--level", "warning")
    assert [line.split(" | ", 2)[2] for line in warnings.stdout.splitlines()] == [
        "load-0 - loading 5 rows"
    ]

    task_runs = invoke("task-run", "ls", "--flow-run", run_id, "--json")
    assert task_runs.exit_code == 0, task_runs.stderr
    assert [
        (t["name"], t["flow_run_name"], t["state_type"]) for t in task_runs_json(task_runs)
    ] == [
        ("extract-0", runs[0]["name"], "COMPLETED"),
        ("load-0", runs[0]["name"], "COMPLETED"),
    ]
    completed = invoke("task-run", "ls", "--state", "completed")
    assert "load-0" in completed.stdout and runs[0]["name"] in completed.stdout


def task_runs_json(result: Result) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


@pytest.mark.parametrize(
    "args",
    [
        ("flow-run", "ls", "--flow", "etl-demo"),
        ("flow-run", "ls", "--flow", "etl-demo", "--json"),
        ("flow-run", "inspect", "{id}"),
        ("flow-run", "inspect", "{id}", "--json"),
        ("flow-run", "logs", "{id}"),
        ("task-run", "ls", "--flow-run", "{id}"),
        ("task-run", "ls", "--flow-run", "{id}", "--json"),
    ],
    ids=lambda args: " ".join(args),
)
def test_remote_output_is_the_embedded_output(
    remote: Server, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    run_id = _finished_run_id()
    command = [arg.format(id=run_id) for arg in args]
    through_server = invoke(*command)

    monkeypatch.delenv("HEADWATER_API_URL")
    monkeypatch.setenv("HEADWATER_DATABASE_URL", remote.database_url)
    from_store = invoke(*command)

    assert through_server.exit_code == from_store.exit_code == 0, through_server.stderr
    assert _same_layout(through_server.stdout) == _same_layout(from_store.stdout)
    assert through_server.stdout.count("\n") > 0


def test_follow_a_running_flow_until_it_finishes(remote: Server) -> None:
    process = remote.start_flow("etl-follow", 2, 2.0)
    try:
        deadline = time.monotonic() + 30
        runs: list[dict[str, str]] = []
        while not runs and time.monotonic() < deadline:
            listed = invoke("flow-run", "ls", "--json", "--flow", "etl-follow", "-s", "running")
            runs = json.loads(listed.stdout) if listed.exit_code == 0 else []
            time.sleep(0.1)
        assert runs, "the flow run did not show as Running through the server"
        follower = run_headwater("flow-run", "logs", runs[0]["id"], "--follow")
        process.wait(timeout=60)
    finally:
        process.kill()

    assert follower.returncode == 0, follower.stderr
    messages = [line.split(" - ", 1)[1] for line in follower.stdout.splitlines()]
    assert [m for m in messages if m.startswith("waiting")] == [f"waiting {i}" for i in range(4)]
    assert messages.index("waiting 3") < messages.index("loading 2 rows")
    assert messages[-1].startswith("Finished in state Completed")
    assert len(messages) == len(set(messages))  # no line printed twice


def test_short_ids_resolve_through_the_server(remote: Server) -> None:
    run_id = _finished_run_id()
    short = invoke("flow-run", "inspect", run_id[:18], "--json")
    assert short.exit_code == 0, short.output
    assert json.loads(short.stdout)["id"] == run_id
    listed = invoke("task-run", "ls", "--flow-run", run_id.replace("-", "")[:14])
    assert listed.exit_code == 0, listed.output
    # a prefix every run shares (the uuid7 time part) is ambiguous: the candidates are named
    assert_one_line_error(invoke("flow-run", "inspect", run_id[:4]), "matches", run_id[:18])


def test_an_unknown_id_is_one_line(remote: Server) -> None:
    assert_one_line_error(invoke("flow-run", "logs", "0" * 32), "No flow run found", remote.api_url)
    assert_one_line_error(invoke("task-run", "ls", "--flow-run", "0" * 32), "No flow run found")


def test_an_unreachable_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("HEADWATER_API_URL", url)
    result = run_headwater("flow-run", "ls")
    assert_one_line_error(
        result,
        f"Cannot reach the Headwater server at {url}: connection refused;",
        "`headwater server start`",
    )
    assert_one_line_error(invoke("task-run", "ls"), "Cannot reach the Headwater server")


def test_a_server_with_an_api_key_needs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database_url = f"sqlite:///{tmp_path / 'keyed.db'}"
    with running_server(tmp_path / "keyed", database_url, HEADWATER_API_KEY="s3cret") as (url, _):
        monkeypatch.setenv("HEADWATER_API_URL", url)
        assert_one_line_error(invoke("flow-run", "ls"), "401 Unauthorized", "set HEADWATER_API_KEY")
        monkeypatch.setenv("HEADWATER_API_KEY", "wrong")
        assert_one_line_error(invoke("flow-run", "inspect", "0" * 32), "401")
        monkeypatch.setenv("HEADWATER_API_KEY", "s3cret")
        listed = invoke("flow-run", "ls")
        assert listed.exit_code == 0, listed.stderr
        assert listed.stdout.strip() == "No flow runs found."


def test_remote_mode_does_not_open_a_database(remote: Server, home: Path) -> None:
    # HEADWATER_HOME has no store, and the CLI must not create one to read a server.
    assert invoke("task-run", "ls").exit_code == 0
    assert not (home / "headwater.db").exists()


def test_embedded_mode_is_unchanged_without_an_api_url(home: Path) -> None:
    result = run_headwater("flow-run", "ls")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No flow runs found."
    assert (home / "headwater.db").exists()
