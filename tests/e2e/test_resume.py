"""Resume from the last checkpoint: a killed run, retried, does not redo completed tasks."""

from __future__ import annotations

import os
import signal
import subprocess

from tests.server.helpers import headwater_command

from .conftest import Stack, alive, eventually


def test_a_killed_run_retried_reuses_the_tasks_that_completed(stack: Stack) -> None:
    deployment = stack.deploy("five")
    stack.start_worker()
    run = stack.run(deployment)
    started = stack.wait_for_mark(f"step-{run['id']}-4-")[0]
    pid = int(started.name.split("-")[-2])

    os.kill(pid, signal.SIGKILL)  # the flow's process, between task 3 and task 5
    eventually(lambda: not alive(pid))
    crashed = stack.wait_for_state(run["id"], "CRASHED", "COMPLETED", "FAILED")
    assert crashed["state_type"] == "CRASHED"
    (stack.marks / "go-on").touch()

    retried = subprocess.run(
        [*headwater_command(), "flow-run", "retry", run["id"][:13]],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert retried.returncode == 0, retried.stderr
    assert "AwaitingRetry" in retried.stdout and "attempt 2 due now" in retried.stdout

    done = stack.wait_for_state(run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert done["state_type"] == "COMPLETED", done["state_message"]
    assert done["run_count"] == 2
    executions = {i: len(list(stack.marks.glob(f"step-{run['id']}-{i}-*"))) for i in range(1, 6)}
    assert executions == {1: 1, 2: 1, 3: 1, 4: 2, 5: 1}
    tasks = stack.request("GET", "/task_runs", params={"flow_run_id": run["id"], "limit": 100})
    cached = [t for t in tasks["items"] if t["state_name"] == "Cached"]
    assert len(cached) == 3
