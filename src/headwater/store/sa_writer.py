"""The SQLAlchemy write path: batches into PostgreSQL (or SQLite) through SQLAlchemy Core.

Held to the same storage contract as the stdlib `SQLiteWriter` (tests/store).
Rows arrive as positional tuples in `columns.py` order (ids as 32-digit hex,
see `core.records`).

On PostgreSQL (the server's ingest path, ~4 rows per task run) a table's rows
go in one statement per 2,000 rows: each column is sent as ONE JSON array
(serialised by orjson in C) and `INSERT ... SELECT ... FROM ROWS FROM
(json_array_elements_text(...), ...)` zips them back into rows, with the
same conflict handling as the SQLAlchemy statements below (upserts guarded
by the orchestration rules for runs, insert-or-skip for the rest). Measured
per task run on the development machine: 6 us of Python and ~55 us of
PostgreSQL CPU, against 150 us and ~100 us for one pipelined executemany per
table through SQLAlchemy (a dict and a bind-processing pass per row, an
executor start per row). Values are converted exactly as the column types
convert them (`tables.Timestamp`'s rounding, JSON with `default=repr`, None
as SQL NULL), and the statements run through `exec_driver_sql`, so driver
errors still arrive as SQLAlchemy exceptions.

Elsewhere (SQLite) the rows are bound as dicts keyed by column name through
the tables, so the column types convert them, one executemany per table.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from headwater.core.records import Batch, Row
from headwater.core.rules import run_upsert_guard
from headwater.exceptions import StoreError
from headwater.store import automation_interest, columns, run_events, schema, tables
from headwater.store.engine import create_engine

logger = logging.getLogger(__name__)

_FLOW_RUN_ACTIVE = ("PENDING", "RUNNING", "CANCELLING")
_TASK_RUN_ACTIVE = ("PENDING", "RUNNING")
# Ids per statement in mark_crashed: below every driver's bound-parameter limit.
_CHUNK = 1000

# Python None in a JSON column is SQL NULL, as the stdlib writer stores it (the
# tables' JSON type would write the JSON text 'null', which also lets a None
# slip into a NOT NULL column).
_JSON_NULLABLE = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)


class _HexId(sa.types.TypeDecorator[str]):
    """An id as the recorder sends it, 32 hex digits; a `uuid.UUID` is accepted too.

    Bound as text (hex on SQLite; PostgreSQL reads the text as a uuid),
    so the hot path builds no `uuid.UUID` objects.
    """

    impl = sa.Uuid
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return value.hex if isinstance(value, uuid.UUID) else value


def _json_serializer(value: Any) -> str:
    # As the stdlib writer: a value JSON cannot represent is stored as its repr.
    return json.dumps(value, default=repr)


def _dialect_insert(dialect: str) -> Callable[[sa.Table], Any]:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise StoreError(
        f"Headwater stores runs in SQLite or PostgreSQL, not {dialect!r}; set "
        "HEADWATER_DATABASE_URL to a sqlite:/// or postgresql+psycopg:// URL."
    )


def _bind_type(column: sa.Column[Any]) -> sa.types.TypeEngine[Any]:
    if isinstance(column.type, sa.Uuid):
        return _HexId(as_uuid=False)
    if isinstance(column.type, sa.JSON):
        return _JSON_NULLABLE
    return column.type


def _values(table: sa.Table, cols: tuple[str, ...]) -> dict[str, sa.BindParameter[Any]]:
    """One bind parameter per column, typed for the rows the recorder sends."""
    return {name: sa.bindparam(name, type_=_bind_type(table.c[name])) for name in cols}


@functools.cache
def statements(dialect: str) -> dict[str, Any]:
    """The write statement of each recorded table: upserts for runs, insert-or-skip else."""
    insert = _dialect_insert(dialect)
    statements: dict[str, Any] = {}
    for name, (table, cols) in tables.RECORDED.items():
        stmt = insert(table).values(_values(table, cols))
        if name in ("flow_run", "task_run"):
            stmt = stmt.on_conflict_do_update(
                index_elements=[table.c.id],
                set_={c: stmt.excluded[c] for c in cols if c not in columns.RUN_IMMUTABLE},
                # The orchestration rules: terminal states are final, stale writes lose.
                where=sa.text(run_upsert_guard(name)),
            )
        else:
            stmt = stmt.on_conflict_do_nothing()
        statements[name] = stmt
    return statements


def write_rows(conn: sa.Connection, batch: Batch) -> None:
    """Write every record of `batch` on `conn`, inside the caller's transaction.

    Flows first, then runs, then what refers to runs: PostgreSQL checks foreign
    keys. The server's ingest route calls this too, on its own connection.
    """
    postgres = conn.dialect.name == "postgresql"
    postgresql_statements = _postgresql_statements() if postgres else {}
    prepared = {} if postgres else statements(conn.dialect.name)
    for table, rows in (
        ("flow", batch.flows.values()),
        ("flow_run", batch.flow_runs.values()),
        ("task_run", batch.task_runs.values()),
        ("state", batch.states),
        ("log", batch.logs),
    ):
        if not rows:
            continue
        if postgres:
            sql, converters = postgresql_statements[table]
            for chunk in _chunks(rows, _ROWS_PER_STATEMENT):
                conn.exec_driver_sql(sql, _postgresql_parameters(chunk, converters))
        else:
            cols = tables.RECORDED[table][1]
            conn.execute(prepared[table], [dict(zip(cols, row, strict=True)) for row in rows])
    if batch.states or batch.events:
        write_events(conn, batch.states, batch.task_runs, batch.events)


def write_events(
    conn: sa.Connection,
    states: Sequence[Row],
    task_runs: dict[str, Row] | None = None,
    events: Sequence[Row] = (),
    received: float | None = None,
) -> int:
    """Write the lifecycle events of `states` and the `events` rows, with inbox entries.

    Call after the states' runs are written. An event already stored (same id:
    a lifecycle event's id is its state's) is skipped and gets no second inbox
    entry. Returns how many events were new.
    """
    if conn.dialect.name != "postgresql":
        from headwater.store import sqlite_writer

        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return sqlite_writer.write_events(driver, states, task_runs, events, received)
    received = time.time() if received is None else received
    states = run_events.recorded(states)
    rows = _postgresql_state_events(conn, states, task_runs or {}, received) if states else []
    rows += run_events.text_rows(
        (*event[:8], received if event[8] is None else event[8]) for event in events
    )
    if not rows:
        return 0
    fingerprint = conn.exec_driver_sql(automation_interest.FINGERPRINT_SQL).one()
    interest = automation_interest.interest(
        tuple(fingerprint),
        lambda: [row[0] for row in conn.exec_driver_sql(automation_interest.TRIGGERS_SQL)],
    )
    # Events no enabled automation listens to skip the inbox (automation_interest.py).
    inboxed = [row for row in rows if interest.wants(row[2])]
    stored_only = [row for row in rows if not interest.wants(row[2])]
    new = 0
    for with_inbox, group in ((True, inboxed), (False, stored_only)):
        sql, converters = _postgresql_event_statement(with_inbox)
        for chunk in _chunks(group, _ROWS_PER_STATEMENT):
            result = conn.exec_driver_sql(sql, _postgresql_parameters(chunk, converters))
            new += max(result.rowcount, 0)
    return new


def _postgresql_state_events(
    conn: sa.Connection, states: Sequence[Row], task_runs: dict[str, Row], received: float
) -> list[Row]:
    flow_run_ids, known, missing = run_events.wanted_runs(states, task_runs)
    if missing:
        found = conn.exec_driver_sql(
            run_events.TASK_RUNS_POSTGRESQL, (orjson.dumps(sorted(missing)).decode(),)
        )
        for row in found:
            task_hex, info = run_events.task_run_info(tuple(row))
            known[task_hex] = info
            if info[2] is not None:
                flow_run_ids.add(info[2])
    lookup = conn.exec_driver_sql(
        run_events.FLOW_RUNS_POSTGRESQL, (orjson.dumps(sorted(flow_run_ids)).decode(),)
    )
    flow_runs = dict(run_events.flow_run_info(tuple(row)) for row in lookup)
    return run_events.event_rows(states, flow_runs, known, received)


@functools.cache
def _postgresql_event_statement(
    with_inbox: bool,
) -> tuple[str, tuple[Callable[..., Sequence[Any]], ...]]:
    """Events (JSON columns as text) and, `with_inbox`, for those new their inbox rows: one
    statement."""
    cols = columns.EVENT
    aliases = [f"c{i}" for i in range(len(cols))]
    expressions = []
    converters: list[Callable[..., Sequence[Any]]] = []
    for name, alias in zip(cols, aliases, strict=True):
        expression, convert = _column_sql(tables.event.c[name], alias)
        expressions.append(expression)
        # JSON columns arrive as JSON text already (run_events.text_rows).
        converters.append(_as_is if isinstance(tables.event.c[name].type, sa.JSON) else convert)
    elements = ", ".join("json_array_elements_text(%s::json)" for _ in cols)
    names = ", ".join(f'"{c}"' for c in cols)
    insert = (
        f"INSERT INTO event ({names}) "
        f"SELECT {', '.join(expressions)} "
        f"FROM ROWS FROM ({elements}) AS r({', '.join(aliases)}) "
        "ON CONFLICT DO NOTHING"
    )
    if not with_inbox:
        return insert, tuple(converters)
    sql = (
        f"WITH new AS ({insert} RETURNING id, occurred) "
        "INSERT INTO event_inbox (event_id, occurred) SELECT id, occurred FROM new "
        "ON CONFLICT DO NOTHING"
    )
    return sql, tuple(converters)


# -- PostgreSQL: one INSERT ... SELECT per table, each column sent as one JSON array ----

#: Rows per statement. Larger batches go in several statements: libpq keeps its
#: send buffer at the largest message a connection ever sent, for the life of
#: the pooled connection (20,000 rows in one statement left ~16 MB per
#: connection); at this size a statement is ~1 MB and costs the same per row.
_ROWS_PER_STATEMENT = 2000


def _chunks(rows: Iterable[Row], size: int) -> Iterator[tuple[Row, ...]]:
    iterator = iter(rows)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


_NONE = type(None)
_JSON_ENCODER = json.JSONEncoder(default=repr)  # what _json_serializer does, made once


def _json_texts(values: tuple[Any, ...]) -> list[Any]:
    """A JSON column: each value's JSON text, as `_json_serializer` writes it; None is NULL."""
    encode = _JSON_ENCODER.encode
    return [
        None if v is None else "[]" if v == [] else "{}" if v == {} else encode(v) for v in values
    ]


def _epochs(values: tuple[Any, ...]) -> Sequence[Any]:
    """A timestamp column as epoch seconds; a datetime is accepted too (naive means UTC)."""
    if set(map(type, values)) <= {float, int, _NONE}:
        return values
    return [
        (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).timestamp()
        if isinstance(v, dt.datetime)
        else v
        for v in values
    ]


def _as_is(values: tuple[Any, ...]) -> Sequence[Any]:
    # orjson writes str (and str enums: state types), int, float, None and
    # uuid.UUID (dashed, which PostgreSQL reads as well as hex) natively.
    return values


def _column_sql(column: sa.Column[Any], text: str) -> tuple[str, Callable[..., Sequence[Any]]]:
    """The SQL expression turning `text` (one JSON array element) into `column`'s value."""
    column_type = column.type
    if isinstance(column_type, sa.Uuid):
        return f"{text}::uuid", _as_is
    if isinstance(column_type, tables.Timestamp):
        # Rounded to the microsecond exactly as `datetime.fromtimestamp` (and so
        # `tables.Timestamp`) does; `to_timestamp(x)` alone rounds some
        # half-microseconds the other way.
        x = f"{text}::float8"
        microseconds = f"round(({x} - trunc({x})) * 1000000)"
        return f"to_timestamp(trunc({x})) + {microseconds} * interval '1 microsecond'", _epochs
    if isinstance(column_type, sa.JSON):
        return f"{text}::jsonb", _json_texts
    if isinstance(column_type, sa.Integer):
        return f"{text}::integer", _as_is
    if isinstance(column_type, sa.String):
        return text, _as_is
    raise TypeError(f"no PostgreSQL binding for {column!r} ({column_type!r})")


@functools.cache
def _postgresql_statements() -> dict[str, tuple[str, tuple[Callable[..., Sequence[Any]], ...]]]:
    """(SQL, converter per column) of each recorded table, for PostgreSQL.

    Each parameter is one column of the batch as a JSON array; ROWS FROM zips
    them back into rows.
    """
    result: dict[str, tuple[str, tuple[Callable[..., Sequence[Any]], ...]]] = {}
    for name, (table, cols) in tables.RECORDED.items():
        aliases = [f"c{i}" for i in range(len(cols))]
        expressions, converters = zip(
            *(_column_sql(table.c[c], a) for c, a in zip(cols, aliases, strict=True)), strict=True
        )
        elements = ", ".join("json_array_elements_text(%s::json)" for _ in cols)
        names = ", ".join(f'"{c}"' for c in cols)
        sql = (
            f'INSERT INTO "{name}" AS {name} ({names}) '
            f"SELECT {', '.join(expressions)} "
            f"FROM ROWS FROM ({elements}) AS r({', '.join(aliases)})"
        )
        if name in ("flow_run", "task_run"):
            updates = ", ".join(
                f'"{c}" = excluded."{c}"' for c in cols if c not in columns.RUN_IMMUTABLE
            )
            # The orchestration rules: terminal states are final, stale writes lose.
            sql += f" ON CONFLICT (id) DO UPDATE SET {updates} WHERE {run_upsert_guard(name)}"
        else:
            sql += " ON CONFLICT DO NOTHING"
        result[name] = (sql, tuple(converters))
    return result


def _postgresql_parameters(
    rows: Collection[tuple[Any, ...]], converters: tuple[Callable[..., Sequence[Any]], ...]
) -> tuple[str, ...]:
    """Each column of `rows` (the transpose) as the text of one JSON array."""
    return tuple(
        _dumps(convert(values))
        for convert, values in zip(converters, zip(*rows, strict=True), strict=True)
    )


def _dumps(values: Sequence[Any]) -> str:
    try:
        return orjson.dumps(values).decode()
    except TypeError:  # e.g. an integer beyond 64 bits: let the database refuse it
        return _JSON_ENCODER.encode(list(values))


class SAWriter:
    """Writes batches through SQLAlchemy Core, one transaction per batch.

    Example:
        >>> writer = SAWriter("postgresql+psycopg://postgres@127.0.0.1:5432/headwater")
        >>> writer.write(batch)
        >>> writer.close()
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: sa.Engine | None = None
        self._statements: dict[str, Any] = {}
        self._open_lock = threading.Lock()

    def open(self) -> None:
        # Crash detection may call in from another thread than the recorder's.
        with self._open_lock:
            if self._engine is None:
                schema.ensure_schema(self.url)
                engine = create_engine(self.url, json_serializer=_json_serializer)
                self._statements = statements(engine.dialect.name)
                self._engine = engine

    def write(self, batch: Batch) -> None:
        engine = self._connected()
        with engine.begin() as conn:
            write_rows(conn, batch)

    def active_runs(self, host: str) -> list[tuple[uuid.UUID, str]]:
        """(flow_run id, process tag) of Pending/Running/Cancelling runs owned by `host`."""
        prefix = f"{host}:"
        flow_run = tables.flow_run
        query = sa.select(flow_run.c.id, flow_run.c.process).where(
            flow_run.c.state_type.in_(_FLOW_RUN_ACTIVE),
            # substr, not LIKE: exact and case-sensitive on both databases.
            sa.func.substr(flow_run.c.process, 1, len(prefix)) == prefix,
            # A worker's runs are settled by the worker, or by dead-worker recovery.
            flow_run.c.worker_id.is_(None),
        )
        with self._connected().connect() as conn:
            return [(row.id, row.process) for row in conn.execute(query)]

    def mark_crashed(
        self, flow_run_ids: Sequence[uuid.UUID | str], message: str, now: float
    ) -> None:
        """Move these flow runs, and their unfinished task runs, to Crashed (with history).

        Only runs still Pending/Running/Cancelling change: a terminal state is
        never overwritten, and task runs change only with their flow run. Ids
        may be `uuid.UUID`s or hex strings.
        """
        ids = [i if isinstance(i, uuid.UUID) else uuid.UUID(i) for i in flow_run_ids]
        with self._connected().begin() as conn:
            for start in range(0, len(ids), _CHUNK):
                self._crash_chunk(conn, ids[start : start + _CHUNK], message, now)

    def _crash_chunk(
        self, conn: sa.Connection, ids: list[uuid.UUID], message: str, now: float
    ) -> None:
        crash = {
            "state_type": "CRASHED",
            "state_name": "Crashed",
            "state_message": message,
            "state_timestamp": now,
            "end_time": now,
            "updated": now,
        }
        flow_run, task_run = tables.flow_run, tables.task_run
        # The state test sits in the UPDATE itself, so a run that reaches a
        # terminal state concurrently (row lock, then re-check) is left alone.
        crashed = list(
            conn.execute(
                sa.update(flow_run)
                .where(flow_run.c.id.in_(ids), flow_run.c.state_type.in_(_FLOW_RUN_ACTIVE))
                .values(crash)
                .returning(flow_run.c.id)
            ).scalars()
        )
        if not crashed:
            return
        tasks = conn.execute(
            sa.update(task_run)
            .where(
                task_run.c.flow_run_id.in_(crashed),
                task_run.c.state_type.in_(_TASK_RUN_ACTIVE),
            )
            .values(crash)
            .returning(task_run.c.id, task_run.c.flow_run_id)
        ).all()
        history = [(flow_run_id, None) for flow_run_id in crashed]
        history += [(row.flow_run_id, row.id) for row in tasks]
        states = [
            (uuid.uuid4().hex, flow_run_id, task_run_id, "CRASHED", "Crashed", message, now)
            for flow_run_id, task_run_id in history
        ]
        conn.execute(
            self._statements["state"],
            [dict(zip(columns.STATE, row, strict=True)) for row in states],
        )
        write_events(conn, states, received=now)

    def _connected(self) -> sa.Engine:
        self.open()
        assert self._engine is not None
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
