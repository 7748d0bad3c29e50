"""`headwater database upgrade|reset` and the background services (crash detection, lease)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from headwater.cli.app import create_app as create_cli
from headwater.engine.crash import host
from headwater.settings import reset_settings
from headwater.store import migrate
from headwater.store.schema import HEAD_REVISION

from .conftest import TestClient
from .helpers import run_batch

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def configured(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI pointed at the test's store."""
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_DATABASE_URL", database_url)
    reset_settings()
    yield database_url
    reset_settings()


def _headwater(*args: str, input: str | None = None) -> Result:
    reset_settings()
    return CliRunner().invoke(create_cli(), list(args), input=input, prog_name="headwater")


def test_database_upgrade_then_reset(configured: str, client: TestClient) -> None:
    upgraded = _headwater("database", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"revision {HEAD_REVISION}" in upgraded.output
    client.post("/records", json=run_batch(tasks=1))

    declined = _headwater("database", "reset", input="n\n")
    assert declined.exit_code == 1
    assert client.get("/flow_runs").json()["total"] == 1

    reset = _headwater("database", "reset", "--yes")
    assert reset.exit_code == 0, reset.output
    assert migrate.current_revision(configured) == HEAD_REVISION
    assert client.get("/flow_runs").json()["total"] == 0


def test_crash_detection_marks_runs_whose_process_is_gone(
    database_url: str, client: TestClient
) -> None:
    from headwater.server.services import run_once

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    body = run_batch(tasks=1, process=f"{host()}:{gone.pid}:1")
    body["task_runs"][0] |= {"state_type": "RUNNING", "state_name": "Running", "end_time": None}
    client.post("/records", json=body)

    assert (run_once(database_url) or {})["crashed"] == 1

    run_id = str(uuid.UUID(body["flow_runs"][0]["id"]))
    assert client.get(f"/flow_runs/{run_id}").json()["state_type"] == "CRASHED"
    task = client.get("/task_runs", params={"flow_run_id": run_id}).json()["items"][0]
    assert task["state_type"] == "CRASHED"
    assert (run_once(database_url) or {})["crashed"] == 0


def test_a_round_is_skipped_while_another_process_holds_the_lease(
    database_url: str, client: TestClient
) -> None:
    from headwater.server.services import lease, run_once

    with lease(database_url) as held:
        assert held
        assert run_once(database_url) is None
    assert (run_once(database_url) or {})["crashed"] == 0
