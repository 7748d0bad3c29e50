"""Helpers of the store tests: a writer on a fresh store, and recorder row builders."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import flow_id, uuid7_hex
from headwater.core.records import Row
from headwater.core.states import StateType
from headwater.store import tables
from headwater.store.engine import create_engine
from headwater.store.sa_writer import SAWriter
from headwater.store.sqlite_writer import SQLiteWriter
from headwater.store.writer import Writer, sqlite_path

#: Timestamps with at most microsecond precision: what both databases keep exactly.
T0 = 1_700_000_000.123456


@dataclasses.dataclass
class Store:
    """A writer on a fresh store, and a way to read its tables back through SQLAlchemy."""

    url: str
    writer: Writer
    _engine: sa.Engine | None = None

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            self._engine = create_engine(self.url)
        return self._engine

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of `table` as a dict of its recorded columns (ids as hex), by id."""
        t, cols = tables.RECORDED[table]
        query = sa.select(*(t.c[c] for c in cols)).order_by(t.c.id)
        with self.engine.connect() as conn:
            return [_hex_ids(r._mapping) for r in conn.execute(query)]

    def get(self, table: str, row_id: str) -> dict[str, Any]:
        """The row of `table` with id `row_id` (hex), read through SQLAlchemy."""
        t, cols = tables.RECORDED[table]
        query = sa.select(*(t.c[c] for c in cols)).where(t.c.id == uuid.UUID(row_id))
        with self.engine.connect() as conn:
            row = conn.execute(query).one()
        return _hex_ids(row._mapping)

    def close(self) -> None:
        self.writer.close()
        if self._engine is not None:
            self._engine.dispose()


def _hex_ids(row: Any) -> dict[str, Any]:
    # SQLAlchemy reads Uuid columns as uuid.UUID; the recorder's rows carry hex.
    return {k: v.hex if isinstance(v, uuid.UUID) else v for k, v in row.items()}


def make_writer(kind: str, url: str) -> Writer:
    if kind == "stdlib":
        path = sqlite_path(url)
        assert path is not None
        return SQLiteWriter(path)
    return SAWriter(url)


class Rows:
    """Builds recorder rows (tuples in columns.py order) from keyword values."""

    def __init__(self) -> None:
        self._names = itertools.count()

    @staticmethod
    def tuple(table: str, values: dict[str, Any]) -> Row:
        cols = tables.RECORDED[table][1]
        unknown = set(values) - set(cols)
        assert not unknown, f"not columns of {table}: {unknown}"
        return tuple(values.get(c) for c in cols)

    @staticmethod
    def dict(table: str, row: Row) -> dict[str, Any]:
        return dict(zip(tables.RECORDED[table][1], row, strict=True))

    def flow(self, name: str | None = None) -> Row:
        name = name or f"flow-{next(self._names)}"
        return (flow_id(name), name, T0)

    def flow_run(self, flow: str, **values: Any) -> Row:
        defaults: dict[str, Any] = {
            "id": uuid7_hex(),
            "flow_id": flow,
            "name": f"run-{next(self._names)}",
            "state_type": StateType.RUNNING,
            "state_name": "Running",
            "state_message": None,
            "state_timestamp": T0 + 1,
            "parameters": {"x": 1, "items": [1, "two", None], "nested": {"a": [True]}},
            "tags": ["etl", "nightly"],
            "run_count": 1,
            "expected_start_time": T0,
            "start_time": T0 + 1,
            "created": T0,
            "updated": T0 + 1,
            "process": "host-a:123:1700000000.0",
        }
        return self.tuple("flow_run", defaults | values)

    def task_run(self, flow_run: str | None, **values: Any) -> Row:
        defaults: dict[str, Any] = {
            "id": uuid7_hex(),
            "flow_run_id": flow_run,
            "task_key": "module.task-abc123",
            "dynamic_key": str(next(self._names)),
            "name": "task-0",
            "state_type": StateType.RUNNING,
            "state_name": "Running",
            "state_timestamp": T0 + 2,
            "tags": [],
            "run_count": 1,
            "task_inputs": {"x": [{"input_type": "parameter", "name": "x"}]},
            "start_time": T0 + 2,
            "created": T0 + 2,
            "updated": T0 + 2,
        }
        return self.tuple("task_run", defaults | values)

    def state(self, flow_run: str | None, task_run: str | None = None) -> Row:
        return (uuid7_hex(), flow_run, task_run, StateType.RUNNING, "Running", None, T0 + 1)

    def log(self, flow_run: str | None, message: str = "hello") -> Row:
        return (uuid7_hex(), flow_run, None, 20, "headwater.flow_runs", message, T0 + 3)
