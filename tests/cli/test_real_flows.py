"""The CLI over runs made by the real engine: a flow script run in its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .helpers import FLOW_SCRIPT, HEADWATER, invoke, run_headwater


@pytest.fixture
def flow_script(tmp_path: Path) -> Path:
    path = tmp_path / "etl_demo.py"
    path.write_text(FLOW_SCRIPT)
    return path


@pytest.fixture
def configured_store(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the flow process and the CLI at the same fresh store (each database)."""
    monkeypatch.setenv("HEADWATER_DATABASE_URL", database_url)
    return database_url


def _start_flow(script: Path, n: int, pause: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), str(n), str(pause)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _wait_for_run(state: str, timeout: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = invoke("flow-run", "ls", "--json", "--state", state)
        runs = json.loads(result.stdout) if result.exit_code == 0 else []
        if runs:
            run: dict[str, object] = runs[0]
            return run
        time.sleep(0.1)
    raise AssertionError(f"no {state} flow run appeared within {timeout} s")


def test_a_finished_flow_shows_in_ls_inspect_and_logs(
    configured_store: str, flow_script: Path
) -> None:
    process = _start_flow(flow_script, 5, 0)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stdout.strip() == "5"

    listed = run_headwater("flow-run", "ls", "--json")
    runs = json.loads(listed.stdout)
    assert [(r["flow_name"], r["state_type"], r["parameters"]) for r in runs] == [
        ("etl-demo", "COMPLETED", {"n": 5, "pause": 0.0})
    ]
    run_id = runs[0]["id"]

    inspected = run_headwater("flow-run", "inspect", run_id[:18])
    assert inspected.returncode == 0, inspected.stderr
    assert "Task runs: 2 (2 Completed)" in inspected.stdout
    assert "extract-0" in inspected.stdout and "load-0" in inspected.stdout
    history = inspected.stdout[inspected.stdout.index("State history") :]
    assert history.index("Pending") < history.index("Running") < history.index("Completed")

    logs = run_headwater("flow-run", "logs", run_id)
    messages = [line.split(" | ", 2)[2] for line in logs.stdout.splitlines()]
    assert messages.index("flow - starting") < messages.index("extract-0 - extracting 5 rows")
    assert messages.index("extract-0 - extracting 5 rows") < messages.index(
        "load-0 - loading 5 rows"
    )
    assert "WARNING" in logs.stdout


def test_follow_a_running_flow_until_it_finishes(configured_store: str, flow_script: Path) -> None:
    process = _start_flow(flow_script, 2, 2.0)
    try:
        run = _wait_for_run("RUNNING")
        follower = subprocess.run(
            [str(HEADWATER), "flow-run", "logs", str(run["id"]), "--follow"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        process.wait(timeout=60)
    finally:
        process.kill()

    assert follower.returncode == 0, follower.stderr
    messages = [line.split(" - ", 1)[1] for line in follower.stdout.splitlines()]
    waits = [m for m in messages if m.startswith("waiting")]
    assert waits == [f"waiting {i}" for i in range(4)]
    assert messages.index("waiting 3") < messages.index("loading 2 rows")
    assert messages[-1].startswith("Finished in state Completed")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="crash detection reads /proc")
def test_a_killed_flow_shows_as_crashed(configured_store: str, flow_script: Path) -> None:
    process = _start_flow(flow_script, 2, 30.0)
    try:
        run = _wait_for_run("RUNNING")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    listed = json.loads(run_headwater("flow-run", "ls", "--json").stdout)
    inspected = run_headwater("flow-run", "inspect", str(run["id"]))

    assert [(r["id"], r["state_type"]) for r in listed] == [(run["id"], "CRASHED")]
    assert "Crashed" in inspected.stdout
