"""`headwater run -- <command>` records any program as a flow run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from headwater.store import tables
from headwater.store.engine import create_engine

HEADWATER = str(Path(sys.executable).parent / "headwater")


def _env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {**os.environ, "HEADWATER_HOME": str(tmp_path), "HEADWATER_DATABASE_URL": database_url}


def _runs(database_url: str) -> list[dict]:  # type: ignore[type-arg]
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            runs = [dict(r._mapping) for r in conn.execute(sa.select(tables.flow_run))]
            for run in runs:
                run["logs"] = [
                    (log.level, log.message)
                    for log in conn.execute(
                        sa.select(tables.log)
                        .where(tables.log.c.flow_run_id == run["id"])
                        .order_by(tables.log.c.timestamp)
                    )
                ]
            return runs
    finally:
        engine.dispose()


def test_failing_command_is_recorded_with_output_and_status(
    tmp_path: Path, database_url: str
) -> None:
    script = (
        "import sys; print('copied 3 files'); "
        "print('disk almost full', file=sys.stderr); sys.exit(3)"
    )
    result = subprocess.run(
        [
            HEADWATER,
            "run",
            "--name",
            "nightly-backup",
            "--tag",
            "ops",
            "--",
            sys.executable,
            "-c",
            script,
        ],
        env=_env(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "copied 3 files" in result.stdout
    assert "disk almost full" in result.stderr
    (run,) = _runs(database_url)
    assert run["state_type"] == "FAILED"
    assert "Command exited with status 3." in run["state_message"]
    assert run["tags"] == ["ops"]
    assert run["parameters"]["command"][-1] == script
    assert (20, "copied 3 files") in run["logs"]
    assert (30, "disk almost full") in run["logs"]


def test_successful_command_completes(tmp_path: Path, database_url: str) -> None:
    result = subprocess.run(
        [HEADWATER, "run", "--", sys.executable, "-c", "print('ok')"],
        env=_env(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    (run,) = _runs(database_url)
    assert run["state_type"] == "COMPLETED"


def test_missing_program_is_one_line_and_status_127(tmp_path: Path, database_url: str) -> None:
    result = subprocess.run(
        [HEADWATER, "run", "--", "no-such-program-here"],
        env=_env(tmp_path, database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 127
    assert "Cannot start 'no-such-program-here': No such file or directory." in result.stderr
    assert "Traceback" not in result.stderr
    assert _runs(database_url)[0]["state_type"] == "FAILED"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sigterm_is_forwarded_to_the_command(tmp_path: Path, database_url: str) -> None:
    marker = tmp_path / "started"
    script = f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(30)"
    process = subprocess.Popen(
        [HEADWATER, "run", "--", sys.executable, "-c", script],
        env=_env(tmp_path, database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 128 + signal.SIGTERM
    (run,) = _runs(database_url)
    assert run["state_type"] == "FAILED"
    assert "Command was stopped by SIGTERM." in run["state_message"]
