"""`headwater config view`: every setting, its value and where it came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import assert_one_line_error, invoke


def _rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        parts = line.split(maxsplit=1)
        if parts and parts[0].startswith("HEADWATER_"):
            rows[parts[0]] = parts[1].split() if len(parts) > 1 else []
    return rows


def test_shows_every_setting_with_its_source(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home.mkdir(parents=True)
    (home / "profiles.toml").write_text(
        'active = "dev"\n[profiles.dev]\nlogging_level = "DEBUG"\nrecorder_batch_size = 100\n'
    )
    monkeypatch.setenv("HEADWATER_RECORDER_BATCH_SIZE", "250")

    result = invoke("config", "view", "--show-sources")

    assert result.exit_code == 0, result.output
    rows = _rows(result.stdout)
    from headwater.settings import Settings

    assert set(rows) == {f"HEADWATER_{name.upper()}" for name in Settings.__dataclass_fields__}
    assert "HEADWATER_API_KEY" in rows
    assert rows["HEADWATER_HOME"] == [str(home), "env", "HEADWATER_HOME"]
    assert rows["HEADWATER_LOGGING_LEVEL"][:3] == ["DEBUG", "profile", "'dev'"]
    assert rows["HEADWATER_RECORDER_BATCH_SIZE"] == ["250", "env", "HEADWATER_RECORDER_BATCH_SIZE"]
    assert rows["HEADWATER_PROFILE"][:2] == ["dev", "profiles"]
    assert rows["HEADWATER_LOG_TO_CONSOLE"] == ["true", "default"]
    assert rows["HEADWATER_DATABASE_URL"] == ["(not", "set)", "default"]
    assert f"Store: sqlite:///{home / 'headwater.db'}" in result.stdout


def test_without_sources_and_password_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_DATABASE_URL", "postgresql+psycopg://app:s3cret@db:5432/hw")

    result = invoke("config", "view")

    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.stdout
    assert _rows(result.stdout)["HEADWATER_DATABASE_URL"] == [
        "postgresql+psycopg://app:***@db:5432/hw"
    ]
    assert result.stdout.splitlines()[0].split() == ["Setting", "Value"]


def test_bad_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_RECORDER_BATCH_SIZE", "lots")

    result = invoke("config", "view")

    assert_one_line_error(result, "HEADWATER_RECORDER_BATCH_SIZE='lots'")


def test_api_key_is_never_shown(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_API_KEY", "s3cret-value")

    result = invoke("config", "view")

    assert result.exit_code == 0, result.output
    assert "s3cret-value" not in result.stdout
    assert _rows(result.stdout)["HEADWATER_API_KEY"] == ["***"]
