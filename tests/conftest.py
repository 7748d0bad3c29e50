"""Fixtures shared by the whole test suite.

Databases: `database_url` runs a test once per database, SQLite always and
PostgreSQL when HEADWATER_TEST_DATABASE_URL is set, each time on a fresh,
empty store (a new file, or a new PostgreSQL schema dropped afterwards).
`database_url_factory` makes such stores on demand.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TEST_DATABASE_URL_VARIABLE = "HEADWATER_TEST_DATABASE_URL"
DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


def _postgresql_base_url() -> str:
    url = os.environ.get(TEST_DATABASE_URL_VARIABLE)
    if not url:
        pytest.skip(
            f"PostgreSQL tests need a server: set {TEST_DATABASE_URL_VARIABLE}="
            "postgresql+psycopg://... to run them"
        )
    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        scheme = "postgresql+psycopg"
    return f"{scheme}://{rest}"


@pytest.fixture
def database_url_factory(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A function `make(kind)` that returns the URL of a fresh, empty store.

    `kind` is "sqlite" (a new file under tmp_path; writers open it in WAL mode)
    or "postgresql" (a new schema `hw_test_<hex>` in the test database, made the
    connection's search_path through the URL, and dropped after the test).
    PostgreSQL is skipped unless HEADWATER_TEST_DATABASE_URL is set.
    """
    schemas: list[tuple[str, str]] = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'headwater-{uuid.uuid4().hex[:8]}.db'}"
        if kind != "postgresql":
            raise ValueError(f"unknown database kind {kind!r}; use 'sqlite' or 'postgresql'")
        import psycopg

        base = _postgresql_base_url()
        schema = f"hw_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_libpq(base), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        schemas.append((base, schema))
        separator = "&" if "?" in base else "?"
        return f"{base}{separator}options=-csearch_path%3D{schema}"

    yield make

    if schemas:
        import psycopg

        for base, schema in schemas:
            with psycopg.connect(_libpq(base), autocommit=True) as conn:
                # A connection the test leaked could hold locks: fail, don't hang.
                conn.execute("SET lock_timeout = '10s'")
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, database_url_factory: Callable[[str], str]) -> str:
    """The URL of a fresh, empty store; the test runs once per database (ids sqlite/postgresql)."""
    return database_url_factory(request.param)
