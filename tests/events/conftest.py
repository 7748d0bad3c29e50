"""Fixtures of the event tests: the API in process, and the SDK on a fresh embedded store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.server.conftest import MakeClient, TestClient, client, make_client

from headwater.engine.recorder import close_recorder
from headwater.settings import reset_settings
from headwater.store.engine import create_engine

# The API in process on the test's store: the server tests' fixtures.
__all__ = ["MakeClient", "TestClient", "client", "make_client"]


@pytest.fixture
def embedded(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The SDK writing to a fresh store of each database in this process; yields its URL."""
    close_recorder()
    for name in list(os.environ):
        if name.startswith("HEADWATER_") and name != "HEADWATER_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")  # CLI tables as wide as on a terminal, under xdist too
    reset_settings()
    yield database_url
    close_recorder()
    reset_settings()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()
