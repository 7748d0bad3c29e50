"""Store fixtures: every writer on every database it supports, and row builders.

`store` runs a test once per (database, writer) pair the product supports:
SQLite with the stdlib writer and with the SQLAlchemy writer, PostgreSQL with
the SQLAlchemy writer (when HEADWATER_TEST_DATABASE_URL is set).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .helpers import Rows, Store, make_writer

WRITERS = [
    pytest.param(("sqlite", "stdlib"), id="sqlite-stdlib"),
    pytest.param(("sqlite", "sqlalchemy"), id="sqlite-sqlalchemy"),
    pytest.param(
        ("postgresql", "sqlalchemy"), id="postgresql-sqlalchemy", marks=pytest.mark.postgres
    ),
]


@pytest.fixture(params=WRITERS)
def store(
    request: pytest.FixtureRequest, database_url_factory: Callable[[str], str]
) -> Iterator[Store]:
    database, writer_kind = request.param
    url = database_url_factory(database)
    result = Store(url, make_writer(writer_kind, url))
    yield result
    result.close()


@pytest.fixture
def rows() -> Rows:
    return Rows()
