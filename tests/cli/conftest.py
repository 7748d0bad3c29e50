"""CLI fixtures: an isolated HEADWATER_HOME and a real store the CLI is pointed at.

`store` runs a test once per database (SQLite always, PostgreSQL when
HEADWATER_TEST_DATABASE_URL is set): HEADWATER_DATABASE_URL points the CLI at
the same fresh store the test fills.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.settings import reset_settings

from .helpers import StoreBuilder


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HEADWATER_HOME in tmp_path, no other HEADWATER_* settings, wide tables."""
    for name in list(os.environ):
        if name.startswith("HEADWATER_") and name != "HEADWATER_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    path = tmp_path / "home"
    monkeypatch.setenv("HEADWATER_HOME", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    reset_settings()
    yield path
    reset_settings()


@pytest.fixture
def store(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StoreBuilder]:
    """A fresh store on each database, which the CLI is configured to read."""
    monkeypatch.setenv("HEADWATER_DATABASE_URL", database_url)
    reset_settings()
    builder = StoreBuilder(database_url)
    yield builder
    builder.close()


@pytest.fixture
def sqlite_store(home: Path) -> Iterator[StoreBuilder]:
    """The default embedded store under HEADWATER_HOME (no database URL set)."""
    builder = StoreBuilder(f"sqlite:///{home / 'headwater.db'}")
    yield builder
    builder.close()
