"""Settings: environment variables, profiles, and errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from headwater.exceptions import ConfigurationError
from headwater.settings import load_settings


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings({"HEADWATER_HOME": str(tmp_path)})
    assert settings.home == tmp_path
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'headwater.db'}"
    assert settings.logging_level == "INFO"
    assert settings.profile == "default"


def test_environment_overrides_profile(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        'active = "dev"\n[profiles.dev]\nlogging_level = "debug"\nrecorder_batch_size = 100\n'
    )
    settings = load_settings(
        {"HEADWATER_HOME": str(tmp_path), "HEADWATER_RECORDER_BATCH_SIZE": "7"}
    )
    assert settings.profile == "dev"
    assert settings.logging_level == "DEBUG"
    assert settings.recorder_batch_size == 7


def test_profile_selected_by_variable(tmp_path: Path) -> None:
    (tmp_path / "profiles.toml").write_text(
        '[profiles.prod]\ndatabase_url = "postgresql+psycopg://db/prod"\n'
    )
    settings = load_settings({"HEADWATER_HOME": str(tmp_path), "HEADWATER_PROFILE": "prod"})
    assert settings.effective_database_url == "postgresql+psycopg://db/prod"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("HEADWATER_RECORDER_FLUSH_INTERVAL", "soon", r"HEADWATER_RECORDER_FLUSH_INTERVAL='soon'"),
        ("HEADWATER_RECORDER_BATCH_SIZE", "0", r"must be greater than 0"),
        ("HEADWATER_LOG_TO_CONSOLE", "maybe", r"expected true or false"),
        ("HEADWATER_LOGGING_LEVEL", "LOUD", r"expected one of CRITICAL, DEBUG"),
    ],
)
def test_bad_values_name_the_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings({"HEADWATER_HOME": str(tmp_path), variable: value})


def test_unknown_profile_and_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_settings({"HEADWATER_HOME": str(tmp_path), "HEADWATER_PROFILE": "nope"})
    (tmp_path / "profiles.toml").write_text("[profiles.default]\ncolour = 'blue'\n")
    with pytest.raises(ConfigurationError, match="Unknown setting 'colour'"):
        load_settings({"HEADWATER_HOME": str(tmp_path)})
