"""Fixtures of the event tests: the API in process, and the SDK on a fresh embedded store."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.engine.recorder import close_recorder
from headwater.server import create_app
from headwater.settings import Settings, reset_settings
from headwater.store.engine import create_engine

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(database_url: str, tmp_path: Path) -> Iterator[MakeClient]:
    """`make(**create_app options)`: a started in-process API client on the test's store."""
    clients: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        settings = Settings(home=tmp_path / "server-home", database_url=database_url)
        client = TestClient(create_app(settings, **options), base_url="http://testserver/api")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture
def embedded(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The SDK writing to a fresh store of each database in this process; yields its URL."""
    close_recorder()
    for name in list(os.environ):
        if name.startswith("HEADWATER_") and name != "HEADWATER_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_DATABASE_URL", database_url)
    reset_settings()
    yield database_url
    close_recorder()
    reset_settings()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine(database_url)
    yield engine
    engine.dispose()
