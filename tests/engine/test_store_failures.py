"""The recorder survives a database that drops connections, and concurrent writers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.sdk.conftest import Store

from headwater import flow, task


def _terminate_other_connections(url: str) -> int:
    import psycopg

    libpq = "postgresql://" + url.split("://", 1)[1].split("?", 1)[0]
    with psycopg.connect(libpq, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = ''"
        ).fetchall()
    return len(rows)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_records_survive_dropped_database_connections(store: Store) -> None:
    @task
    def step(i: int) -> int:
        return i

    @flow
    def pipeline() -> int:
        for i in range(200):
            step(i)
        assert _terminate_other_connections(store.url) >= 1  # like a database restart
        for i in range(200, 400):
            step(i)
        return 400

    assert pipeline() == 400
    (run,) = store.flow_runs()
    assert run["state_type"] == "COMPLETED"
    tasks = store.task_runs(flow_run_id=run["id"])
    assert len(tasks) == 400
    assert all(t["state_type"] == "COMPLETED" for t in tasks)


def test_two_processes_write_one_store_at_once(tmp_path: Path, store: Store) -> None:
    code = textwrap.dedent(
        """
        import sys
        from headwater import flow, task

        @task
        def step(i):
            return i

        @flow(flow_run_name=sys.argv[1])
        def pipeline():
            for i in range(3000):
                step(i)

        pipeline()
        """
    )
    env = {
        **os.environ,
        "HEADWATER_HOME": str(tmp_path / "home"),
        "HEADWATER_DATABASE_URL": store.url,
    }
    processes = [
        subprocess.Popen([sys.executable, "-c", code, name], env=env, stderr=subprocess.PIPE)
        for name in ("first", "second")
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read().decode()  # type: ignore[union-attr]
    for name in ("first", "second"):
        run = store.flow_run(name=name)
        assert run["state_type"] == "COMPLETED"
        assert len(store.task_runs(flow_run_id=run["id"])) == 3000
