"""Everything a process records is in the store when it exits normally."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.sdk.conftest import Store


def _run(code: str, tmp_path: Path, store: Store) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HEADWATER_HOME": str(tmp_path / "home"),
        "HEADWATER_DATABASE_URL": store.url,
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_record_is_durable_at_exit(tmp_path: Path, store: Store) -> None:
    result = _run(
        """
        from headwater import flow, task, get_run_logger

        @task
        def inc(x):
            return x + 1

        @flow
        def many():
            for i in range(2000):
                inc(i)
            inc.map(range(500)).wait()
            get_run_logger().info("last words")

        many()
        """,
        tmp_path,
        store,
    )
    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr
    (run,) = store.flow_runs()
    assert run["state_type"] == "COMPLETED"
    tasks = store.task_runs(flow_run_id=run["id"])
    assert len(tasks) == 2500
    assert all(t["state_type"] == "COMPLETED" for t in tasks)
    assert len(store.states()) == 3 * 2501
    assert store.logs()[-1]["message"] == "Finished in state Completed()"


def test_task_runs_outside_flows_are_flushed_at_exit(tmp_path: Path, store: Store) -> None:
    result = _run(
        """
        from headwater import task

        @task
        def alone(x):
            return x

        for i in range(300):
            alone(i)
        """,
        tmp_path,
        store,
    )
    assert result.returncode == 0, result.stderr
    assert len(store.task_runs()) == 300
