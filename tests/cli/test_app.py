"""The `headwater` script as a whole: help, version, real processes, store errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

import headwater
from headwater.cli.app import create_app

from .helpers import HEADWATER, StoreBuilder, assert_one_line_error, invoke, run_headwater


def test_every_command_and_option_has_help_text() -> None:
    def walk(command: object, path: str) -> None:
        assert getattr(command, "help", None) or getattr(command, "short_help", None), path
        for param in getattr(command, "params", []):
            if param.name not in {"help", "install_completion", "show_completion"}:
                assert getattr(param, "help", None), f"{path} {param.name}"
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    root = get_command(create_app())
    assert set(root.commands) == {  # type: ignore[attr-defined]
        "version",
        "flow-run",
        "task-run",
        "config",
        "run",
        "server",
        "services",
        "database",
        "spool",
        "work-pool",
        "work-queue",
        "worker",
        "deploy",
        "deployment",
        "concurrency-limit",
        "artifact",
        "variable",
        "secret",
        "event",
        "webhook",
        "automation",
    }
    walk(root, "headwater")


def test_help_runs_without_importing_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "from headwater.cli import main\n"
        "sys.argv = ['headwater', 'flow-run', '--help']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "print('sqlalchemy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert "logs" in result.stdout and "inspect" in result.stdout
    assert result.stdout.strip().endswith("False")


def test_version_in_a_real_process() -> None:
    assert HEADWATER.exists(), "run `.venv/bin/pip install -e '.[dev]'`"

    assert run_headwater("version").stdout.strip() == headwater.__version__
    assert run_headwater("--version").stdout.strip() == headwater.__version__


def test_flow_run_ls_in_a_real_process(sqlite_store: StoreBuilder) -> None:
    run = sqlite_store.flow_run("etl", name="crimson-fox")

    table = run_headwater("flow-run", "ls")
    as_json = run_headwater("flow-run", "ls", "--json")

    assert table.returncode == 0, table.stderr
    assert "crimson-fox" in table.stdout and "Completed" in table.stdout
    assert [r["id"] for r in json.loads(as_json.stdout)] == [str(run.id)]


def test_unknown_state_in_a_real_process(sqlite_store: StoreBuilder) -> None:
    result = run_headwater("flow-run", "ls", "--state", "RUNING")

    assert_one_line_error(result, "Unknown state 'RUNING'; choose from: SCHEDULED, PENDING")


def test_unreachable_database_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_DATABASE_URL", "postgresql+psycopg://hw:s3cret@127.0.0.1:1/hw")

    result = invoke("flow-run", "ls")

    assert_one_line_error(result, "127.0.0.1:1", "Connection refused")
    assert "s3cret" not in result.stderr


def test_invalid_database_url_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_DATABASE_URL", "not a url")

    assert_one_line_error(invoke("flow-run", "ls"), "Unsupported database URL")


def test_unwritable_home_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("HEADWATER_HOME", str(blocker / "home"))

    assert_one_line_error(invoke("task-run", "ls"), str(blocker))


def test_configuration_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_PROFILE", "staging")

    result = run_headwater("flow-run", "inspect", "0193")

    assert_one_line_error(result, "Profile 'staging'", "HEADWATER_PROFILE")
