"""Fixtures for SDK tests: a fresh run store per test, read back through SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.engine.recorder import close_recorder, get_recorder
from headwater.settings import reset_settings
from headwater.store import tables
from headwater.store.engine import create_engine


class Store:
    """Reads what the SDK recorded, as a user of the CLI or API would see it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = create_engine(self.url)
        return self._engine

    def _rows(self, statement: Any) -> list[dict[str, Any]]:
        get_recorder().flush()
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(statement)]

    def flow_runs(self, **where: Any) -> list[dict[str, Any]]:
        query = sa.select(tables.flow_run).order_by(tables.flow_run.c.created)
        for column, value in where.items():
            query = query.where(tables.flow_run.c[column] == value)
        return self._rows(query)

    def flow_run(self, **where: Any) -> dict[str, Any]:
        (run,) = self.flow_runs(**where)
        return run

    def task_runs(self, **where: Any) -> list[dict[str, Any]]:
        query = sa.select(tables.task_run).order_by(tables.task_run.c.created)
        for column, value in where.items():
            query = query.where(tables.task_run.c[column] == value)
        return self._rows(query)

    def states(self, **where: Any) -> list[tuple[str, str]]:
        query = sa.select(tables.state).order_by(tables.state.c.timestamp, tables.state.c.id)
        for column, value in where.items():
            query = query.where(tables.state.c[column] == value)
        return [(row["type"], row["name"]) for row in self._rows(query)]

    def logs(self, **where: Any) -> list[dict[str, Any]]:
        query = sa.select(tables.log).order_by(tables.log.c.timestamp)
        for column, value in where.items():
            query = query.where(tables.log.c[column] == value)
        return self._rows(query)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


@pytest.fixture
def store(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """Point the SDK at a fresh store (SQLite and PostgreSQL) for one test."""
    monkeypatch.setenv("HEADWATER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEADWATER_DATABASE_URL", database_url)
    close_recorder()
    reset_settings()
    handle = Store(database_url)
    yield handle
    close_recorder()
    reset_settings()
    handle.dispose()
