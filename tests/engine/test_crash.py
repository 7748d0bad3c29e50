"""Processes that die mid-run: their runs end up Crashed, finished work stays recorded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.sdk.conftest import Store

SCRIPT = textwrap.dedent(
    """
    import sys, time, pathlib
    from headwater import flow, task

    @task
    def step(i: int) -> int:
        if i == 3:
            pathlib.Path(sys.argv[1]).write_text("started")
            time.sleep(60)
        return i

    @flow
    def long_job() -> None:
        for i in range(5):
            step(i)

    long_job()
    """
)


def _start(tmp_path: Path, store: Store) -> tuple[subprocess.Popen[bytes], Path]:
    # An existing store, as in real use: a first-ever run spends its first
    # second creating the schema, before which nothing can be written.
    _run_another_flow(tmp_path, store)
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    marker = tmp_path / "marker"
    env = {
        **os.environ,
        "HEADWATER_HOME": str(tmp_path / "home"),
        "HEADWATER_DATABASE_URL": store.url,
    }
    process = subprocess.Popen(
        [sys.executable, str(script), str(marker)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert process.poll() is None, process.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the job never reached task 3"
        time.sleep(0.02)
    time.sleep(0.3)  # well past the recorder's 10 ms flush interval
    return process, script


def _run_another_flow(tmp_path: Path, store: Store) -> None:
    """Any Headwater process that opens the store checks for dead runs."""
    code = "from headwater import flow\nflow(lambda: None, name='other', flow_run_name='other')()\n"
    env = {
        **os.environ,
        "HEADWATER_HOME": str(tmp_path / "home"),
        "HEADWATER_DATABASE_URL": store.url,
    }
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)


def test_sigkill_mid_run_shows_crashed_after_next_start(tmp_path: Path, store: Store) -> None:
    process, _ = _start(tmp_path, store)
    process.kill()
    process.wait()
    run = next(r for r in store.flow_runs() if r["name"] != "other")
    assert run["state_type"] == "RUNNING"  # nobody has noticed yet

    _run_another_flow(tmp_path, store)

    run = store.flow_run(id=run["id"])
    assert run["state_type"] == "CRASHED"
    assert "exited without reporting a final state" in run["state_message"]
    tasks = {t["name"]: t["state_type"] for t in store.task_runs(flow_run_id=run["id"])}
    assert tasks == {
        "step-0": "COMPLETED",
        "step-1": "COMPLETED",
        "step-2": "COMPLETED",
        "step-3": "CRASHED",
    }
    assert store.states(flow_run_id=run["id"], task_run_id=None)[-1] == ("CRASHED", "Crashed")


def test_sigterm_marks_the_run_crashed_before_exiting(tmp_path: Path, store: Store) -> None:
    process, _ = _start(tmp_path, store)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) != 0
    run = next(r for r in store.flow_runs() if r["name"] != "other")
    assert run["state_type"] == "CRASHED"
    assert "TerminationSignal" in run["state_message"]
    step_3 = store.task_runs(name="step-3")[0]
    assert step_3["state_type"] == "CRASHED"


def test_a_live_run_of_another_process_is_not_marked_crashed(tmp_path: Path, store: Store) -> None:
    process, _ = _start(tmp_path, store)
    try:
        _run_another_flow(tmp_path, store)
        job = next(r for r in store.flow_runs() if r["name"] != "other")
        assert job["state_type"] == "RUNNING"
    finally:
        process.kill()
        process.wait()
