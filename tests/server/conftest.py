"""Server fixtures: the app in process on each database, and its settings.

`client` serves the app in this process (fast, for the many validation and
filter cases) on a fresh store of each database (SQLite, and PostgreSQL when
HEADWATER_TEST_DATABASE_URL is set). Tests of the real process use
`helpers.running_server`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from headwater.server import create_app
from headwater.settings import Settings

with warnings.catch_warnings():
    # Starlette asks for httpx2 in its TestClient; httpx is what we have.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

__all__ = ["MakeClient", "TestClient"]

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(database_url: str, tmp_path: Path) -> Iterator[MakeClient]:
    """`make(**create_app options)`: a started in-process client on the test's store."""
    clients: list[TestClient] = []

    def make(**options: Any) -> TestClient:
        settings = Settings(home=tmp_path / "home", database_url=database_url)
        client = TestClient(create_app(settings, **options), base_url="http://testserver/api")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    """The API in process, on a fresh store of each database, with default options."""
    return make_client()
