"""The embedded write path: batches into SQLite through the stdlib `sqlite3` driver.

SQLAlchemy costs ~0.25 s to import, more than a whole short script may take,
so the SDK writes the embedded store with these few statements. They are
generated from `columns.py` and held to the same storage contract tests as
the SQLAlchemy writer (tests/store).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from headwater.core.records import Batch, Row
from headwater.core.rules import run_upsert_guard
from headwater.store import automation_interest, columns, run_events, schema

logger = logging.getLogger(__name__)

_JSON_COLUMNS = {"parameters", "tags", "task_inputs"}


def _upsert(table: str, cols: tuple[str, ...]) -> str:
    names = ", ".join(cols)
    marks = ", ".join("?" for _ in cols)
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in columns.RUN_IMMUTABLE)
    # The orchestration rules (core/rules.py): terminal states are final, stale writes lose.
    return (
        f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT (id) DO UPDATE SET {updates} "
        f"WHERE {run_upsert_guard(table)}"
    )


def _insert_ignore(table: str, cols: tuple[str, ...]) -> str:
    names = ", ".join(cols)
    marks = ", ".join("?" for _ in cols)
    return f"INSERT INTO {table} ({names}) VALUES ({marks}) ON CONFLICT DO NOTHING"


INSERT_FLOW = _insert_ignore("flow", columns.FLOW)
UPSERT_FLOW_RUN = _upsert("flow_run", columns.FLOW_RUN)
UPSERT_TASK_RUN = _upsert("task_run", columns.TASK_RUN)
INSERT_STATE = _insert_ignore("state", columns.STATE)
INSERT_LOG = _insert_ignore("log", columns.LOG)
INSERT_EVENT = _insert_ignore("event", columns.EVENT)
INSERT_EVENT_INBOX = (
    "INSERT INTO event_inbox (event_id, occurred) VALUES (?, ?) ON CONFLICT DO NOTHING"
)
SELECT_STORED_EVENTS = "SELECT id FROM event WHERE id IN (SELECT value FROM json_each(?))"

_FLOW_RUN_ACTIVE = "('PENDING', 'RUNNING', 'CANCELLING')"
_TASK_RUN_ACTIVE = "('PENDING', 'RUNNING')"
SELECT_ACTIVE_RUNS = (
    "SELECT id, process FROM flow_run "
    f"WHERE state_type IN {_FLOW_RUN_ACTIVE} AND substr(process, 1, ?) = ? "
    # A worker's runs are its to settle (it reports how their process ended); if the
    # worker dies, the server's dead-worker recovery applies the flow's retries.
    "AND worker_id IS NULL"
)
_CRASH_SET = (
    "SET state_type = 'CRASHED', state_name = 'Crashed', state_message = ?, "
    "state_timestamp = ?, end_time = ?, updated = ?"
)
# Chunks of ids stay well below SQLite's limit of bound parameters.
_CHUNK = 500


def _hex_id(value: uuid.UUID | str) -> str:
    """The stored form of an id: 32 lowercase hex digits."""
    return value.hex if isinstance(value, uuid.UUID) else uuid.UUID(value).hex


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if not value and type(value) is list:
        return "[]"
    return json.dumps(value, default=repr)


def _converter(cols: tuple[str, ...]) -> Callable[[Row], Row] | None:
    """A function that turns a row's JSON values into text (None if it has none).

    Ids arrive as 32-digit hex, the format SQLAlchemy's `Uuid` uses on SQLite,
    and state types as `str`; so only JSON columns need work.
    """
    indexes = [i for i, c in enumerate(cols) if c in _JSON_COLUMNS]
    if not indexes:
        return None

    def convert(row: Row) -> Row:
        values = list(row)
        for i in indexes:
            values[i] = _json(values[i])
        return tuple(values)

    return convert


_CONVERT = {
    name: _converter(cols)
    for name, cols in {
        "flow": columns.FLOW,
        "flow_run": columns.FLOW_RUN,
        "task_run": columns.TASK_RUN,
        "state": columns.STATE,
        "log": columns.LOG,
    }.items()
}


def write_rows(conn: sqlite3.Connection, batch: Batch) -> None:
    """Write every record of `batch` on `conn`, inside the caller's transaction.

    Flows first, then runs, then what refers to runs (the order foreign keys need).
    The server's ingest route calls this too, on its own connection.
    """
    for sql, table, rows in (
        (INSERT_FLOW, "flow", batch.flows.values()),
        (UPSERT_FLOW_RUN, "flow_run", batch.flow_runs.values()),
        (UPSERT_TASK_RUN, "task_run", batch.task_runs.values()),
        (INSERT_STATE, "state", batch.states),
        (INSERT_LOG, "log", batch.logs),
    ):
        convert = _CONVERT[table]
        converted = list(rows) if convert is None else [convert(row) for row in rows]
        if converted:
            conn.executemany(sql, converted)
    if batch.states or batch.events:
        write_events(conn, batch.states, batch.task_runs, batch.events)


def write_events(
    conn: sqlite3.Connection,
    states: Sequence[Row],
    task_runs: dict[str, Row] | None = None,
    events: Sequence[Row] = (),
    received: float | None = None,
) -> int:
    """Write the lifecycle events of `states` and the `events` rows, with inbox entries.

    Runs after the states and runs themselves are written (the events' labels
    are read from them). Events already stored are skipped, and so get no second
    inbox entry: re-sending a batch changes nothing. Returns how many were new.
    """
    received = time.time() if received is None else received
    states = run_events.recorded(states)
    wanted = [run_events.hex_id(state[0]) for state in states]
    wanted += [run_events.hex_id(event[0]) for event in events]
    stored = {
        row[0] for row in conn.execute(SELECT_STORED_EVENTS, (json.dumps(wanted),)).fetchall()
    }
    if stored:
        states = [s for s in states if run_events.hex_id(s[0]) not in stored]
    rows = state_events(conn, states, task_runs or {}, received) if states else []
    rows += run_events.text_rows(
        (*event[:8], received if event[8] is None else event[8])
        for event in events
        if run_events.hex_id(event[0]) not in stored
    )
    # One row per id: a batch may carry the same event twice.
    unique = list({row[0]: row for row in rows}.values())
    if unique:
        conn.executemany(INSERT_EVENT, unique)
        interest = automation_interest.interest(
            tuple(conn.execute(automation_interest.FINGERPRINT_SQL).fetchone()),
            lambda: [row[0] for row in conn.execute(automation_interest.TRIGGERS_SQL)],
        )
        if not interest.nothing:
            conn.executemany(
                INSERT_EVENT_INBOX, [(row[0], row[1]) for row in unique if interest.wants(row[2])]
            )
    return len(unique)


def state_events(
    conn: sqlite3.Connection, states: Sequence[Row], task_runs: dict[str, Row], received: float
) -> list[Row]:
    """The lifecycle event rows of `states`, with one read of the runs they belong to."""
    flow_run_ids, known, missing = run_events.wanted_runs(states, task_runs)
    if missing:
        for row in conn.execute(run_events.TASK_RUNS_SQLITE, (json.dumps(sorted(missing)),)):
            task_hex, info = run_events.task_run_info(row)
            known[task_hex] = info
            if info[2] is not None:
                flow_run_ids.add(info[2])
    flow_runs = dict(
        run_events.flow_run_info(row)
        for row in conn.execute(run_events.FLOW_RUNS_SQLITE, (json.dumps(sorted(flow_run_ids)),))
    )
    return run_events.event_rows(states, flow_runs, known, received)


def connect(path: Path) -> sqlite3.Connection:
    """Open the store file with the settings every Headwater connection uses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA foreign_keys=OFF")
    return conn


class SQLiteWriter:
    """Writes batches to an embedded SQLite store, one transaction per batch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        if self._conn is None:
            schema.ensure_schema(f"sqlite:///{self.path}")
            self._conn = connect(self.path)

    def write(self, batch: Batch) -> None:
        self.open()
        assert self._conn is not None
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            write_rows(conn, batch)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def active_runs(self, host: str) -> list[tuple[uuid.UUID, str]]:
        """(flow_run id, process tag) of Pending/Running/Cancelling runs owned by `host`."""
        prefix = f"{host}:"
        with self._side_connection() as conn:
            rows = conn.execute(SELECT_ACTIVE_RUNS, (len(prefix), prefix)).fetchall()
        return [(uuid.UUID(hex=run_id), process) for run_id, process in rows]

    def mark_crashed(
        self, flow_run_ids: Sequence[uuid.UUID | str], message: str, now: float
    ) -> None:
        """Move these flow runs, and their unfinished task runs, to Crashed (with history).

        Only runs still Pending/Running/Cancelling change: a terminal state is
        never overwritten, and task runs change only with their flow run. Ids
        may be `uuid.UUID`s or hex strings.
        """
        with self._side_connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(flow_run_ids), _CHUNK):
                    chunk = [_hex_id(i) for i in flow_run_ids[start : start + _CHUNK]]
                    self._crash_chunk(conn, chunk, message, now)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _crash_chunk(conn: sqlite3.Connection, ids: list[str], message: str, now: float) -> None:
        marks = ", ".join("?" for _ in ids)
        crashed = conn.execute(
            f"UPDATE flow_run {_CRASH_SET} "
            f"WHERE id IN ({marks}) AND state_type IN {_FLOW_RUN_ACTIVE} RETURNING id",
            (message, now, now, now, *ids),
        ).fetchall()
        if not crashed:
            return
        crashed_ids = [row[0] for row in crashed]
        marks = ", ".join("?" for _ in crashed_ids)
        tasks = conn.execute(
            f"UPDATE task_run {_CRASH_SET} "
            f"WHERE flow_run_id IN ({marks}) AND state_type IN {_TASK_RUN_ACTIVE} "
            "RETURNING id, flow_run_id",
            (message, now, now, now, *crashed_ids),
        ).fetchall()
        history = [(flow_run_id, None) for flow_run_id in crashed_ids]
        history += [(flow_run_id, task_run_id) for task_run_id, flow_run_id in tasks]
        states = [
            (uuid.uuid4().hex, flow_run_id, task_run_id, "CRASHED", "Crashed", message, now)
            for flow_run_id, task_run_id in history
        ]
        conn.executemany(INSERT_STATE, states)
        write_events(conn, states)

    @contextlib.contextmanager
    def _side_connection(self) -> Iterator[sqlite3.Connection]:
        # Crash detection runs beside the recorder thread, which owns
        # `self._conn` between BEGIN and COMMIT; a connection of its own keeps
        # the two transactions apart (SQLite serialises them with the file lock).
        self.open()
        conn = connect(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
