"""Fixtures for concurrency limits: the API in process, and the SDK pointed at a store.

Every fixture runs its test once per database (SQLite, and PostgreSQL when
HEADWATER_TEST_DATABASE_URL is set), each time on a fresh store.

- `api`: the API app in this process, as a TestClient.
- `embedded`: the SDK and CLI in embedded mode on the test's store (no server);
  yields the store's URL.
- `remote`: a real `headwater server start` process on the test's store, with
  HEADWATER_API_URL pointing the SDK and CLI at it; yields the API's URL.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.server.helpers import running_server

from headwater.client import api as client_api
from headwater.concurrency import _tags
from headwater.engine.recorder import close_recorder
from headwater.server import create_app
from headwater.settings import Settings, reset_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette asks for httpx2 in its TestClient
    from fastapi.testclient import TestClient


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The API in process on a fresh store of each database."""
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    with TestClient(create_app(settings), base_url="http://testserver/api") as client:
        yield client


def _clean_environment(monkeypatch: pytest.MonkeyPatch, home: Path, database_url: str) -> None:
    for name in list(os.environ):
        if name.startswith("HEADWATER_") and name != "HEADWATER_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    monkeypatch.setenv("HEADWATER_DATABASE_URL", database_url)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def sdk_state() -> Iterator[None]:
    """Fresh process-wide SDK state before and after the test (settings, recorder, caches)."""
    _reset()
    yield
    _reset()
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


def _reset() -> None:
    close_recorder()
    reset_settings()
    _tags.forget()


@pytest.fixture
def embedded(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sdk_state: None
) -> str:
    """The SDK and CLI on the test's store, in this process (no server)."""
    _clean_environment(monkeypatch, tmp_path / "home", database_url)
    reset_settings()
    return database_url


@pytest.fixture
def remote(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sdk_state: None
) -> Iterator[str]:
    """A real server process on the test's store; the SDK and CLI talk to it."""
    home = tmp_path / "server-home"
    with running_server(home, database_url) as (base, _process):
        _clean_environment(monkeypatch, tmp_path / "home", database_url)
        monkeypatch.setenv("HEADWATER_API_URL", base)
        reset_settings()
        yield base
