"""Following runs in the database: what a live stream sends next, in order, without gaps.

A stream is driven by the database, not by the notifications (which only
say when to look): each poll reads the rows past the stream's position, per
source (state history, logs), ordered by (timestamp, id), and the position
travels to the client in each event's id, so a reconnecting client resumes
exactly where it was (`Last-Event-ID`).

Timestamps are the writers' clocks, and writers commit in their own time: a
row can become visible after rows stamped later (two recorder flushes, a
retried batch, two hosts). So the stream remembers the ids it sent over the
last `LATE_WINDOW` seconds below its position, and at every tick looks for
rows in that window it has not sent ("late" rows) and sends them too. And a
row stamped in the future (a clock ahead of the server's) does not move the
position past the server's now, so it cannot hide rows stamped before it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.states import StateType
from headwater.schemas.common import utc
from headwater.schemas.logs import LogResponse
from headwater.server.repositories import states
from headwater.store import queries
from headwater.store.tables import flow_run, log, state, task_run

#: Seconds after a row's timestamp within which it is still sent if it commits late.
LATE_WINDOW = 5.0
#: Rows read per query; a stream catching up on history reads page after page.
PAGE_SIZE = 500
#: Pages of already-sent rows (stamped in the future) skipped in one poll at most.
_MAX_PAGES = 20
#: Ids per `IN (...)` list.
_ID_CHUNK = 500
_ZERO = uuid.UUID(int=0)
#: Larger epoch timestamps are not dates (the year 5138).
_LATEST_TIMESTAMP = 1e11

STATES = "states"
LOGS = "logs"
KINDS = frozenset({STATES, LOGS})


@dataclasses.dataclass(frozen=True)
class StreamOptions:
    """How streams poll and keep their connection alive (`create_app` options).

    Attributes:
        poll_interval: seconds between two polls without a notification (the
            fallback when a notification is lost, and the pace of the late-row check).
        heartbeat_interval: seconds of silence after which a comment line is sent,
            so that proxies do not close an idle stream.
        end_grace: seconds to wait after a followed run reached a final state, for
            its last log lines, before the stream ends.
        min_gap: least seconds between two polls of a flow run's stream woken by
            notifications (a busy run notifies every recorder flush, ~10 ms).
        all_runs_min_gap: the same for a stream of all runs, which every write wakes.
    """

    poll_interval: float = 1.0
    heartbeat_interval: float = 15.0
    end_grace: float = 1.0
    min_gap: float = 0.05
    all_runs_min_gap: float = 0.25


@dataclasses.dataclass(frozen=True, order=True, slots=True)
class Position:
    """A row's place in a stream: its timestamp, then its id."""

    timestamp: float
    id: uuid.UUID


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event: `kind` is its `event:` field, `data` its JSON."""

    kind: str
    data: str
    id: str

    def encode(self) -> str:
        return f"id: {self.id}\nevent: {self.kind}\ndata: {self.data}\n\n"


_STATE_COLUMNS = (
    state.c.id,
    state.c.flow_run_id,
    state.c.task_run_id,
    state.c.type,
    state.c.name,
    state.c.message,
    state.c.timestamp,
)
_LOG_COLUMNS = tuple(log.c)


class _Source:
    """One kind of row a stream follows, with the stream's position in it."""

    key = ""
    table: sa.Table

    def __init__(self) -> None:
        self.position: Position | None = None
        #: ids sent, with their timestamps, down to `LATE_WINDOW` below the position
        self.recent: dict[uuid.UUID, float] = {}

    def query(self, conditions: Sequence[sa.ColumnElement[bool]], lower: float | None) -> Any:
        """A subquery of this source's rows matching `conditions` (on `self.table`).

        `lower`: every row asked for has a timestamp at or above it (lets the
        query skip runs untouched since, by their `updated` column).
        """
        raise NotImplementedError

    def event(self, row: sa.RowMapping) -> tuple[str, str]:
        raise NotImplementedError

    def _select(
        self, conn: sa.Connection, conditions: list[sa.ColumnElement[bool]], lower: float | None
    ) -> Sequence[sa.RowMapping]:
        sub = self.query(conditions, lower)
        ordered = sa.select(sub).order_by(sub.c.timestamp, sub.c.id).limit(PAGE_SIZE)
        return conn.execute(ordered).mappings().all()

    def new_rows(self, conn: sa.Connection) -> tuple[list[tuple[Position, Any]], Position | None]:
        """Unsent rows past the position, and where reading stopped if more may follow."""
        ts, ident = self.table.c.timestamp, self.table.c.id
        after = self.position
        found: list[tuple[Position, Any]] = []
        for _ in range(_MAX_PAGES):
            conditions: list[sa.ColumnElement[bool]] = []
            if after is not None:
                conditions = [
                    ts >= after.timestamp,
                    sa.or_(ts > after.timestamp, ident > after.id),
                ]
            page = self._select(conn, conditions, None if after is None else after.timestamp)
            found += [
                (Position(row["timestamp"], row["id"]), row)
                for row in page
                if row["id"] not in self.recent
            ]
            if len(page) < PAGE_SIZE:
                return found, None
            after = Position(page[-1]["timestamp"], page[-1]["id"])
            if found:
                return found, after
        # Only rows sent already (stamped ahead of the server's clock): look again later.
        return found, None

    def window(self, conn: sa.Connection, until: Position) -> list[Position]:
        """Positions of the rows from `LATE_WINDOW` seconds below `until` up to it."""
        ts = self.table.c.timestamp
        since = until.timestamp - LATE_WINDOW
        sub = self.query([ts >= since, ts <= until.timestamp], since)
        rows = conn.execute(sa.select(sub.c.timestamp, sub.c.id)).all()
        return [p for p in (Position(row[0], row[1]) for row in rows) if p <= until]

    def late_rows(self, conn: sa.Connection) -> list[tuple[Position, Any]]:
        """Rows below the position, within the late window, that were never sent."""
        if self.position is None:
            return []
        missing = [p.id for p in self.window(conn, self.position) if p.id not in self.recent]
        rows: list[tuple[Position, Any]] = []
        for start in range(0, len(missing), _ID_CHUNK):
            chunk = missing[start : start + _ID_CHUNK]
            sub = self.query([self.table.c.id.in_(chunk)], None)
            for row in conn.execute(sa.select(sub)).mappings():
                rows.append((Position(row["timestamp"], row["id"]), row))
        return rows

    def prime(self, conn: sa.Connection) -> None:
        """Count everything at or below the position as sent (a resumed stream)."""
        if self.position is not None:
            self.recent = {p.id: p.timestamp for p in self.window(conn, self.position)}

    def sent(self, position: Position, now: float) -> None:
        self.recent[position.id] = position.timestamp
        # Never past the server's clock: a row from a clock running ahead must not
        # make rows stamped before it (but committed after) look already passed.
        capped = min(position, Position(now, _ZERO))
        if self.position is None or capped > self.position:
            self.position = capped

    def prune(self) -> None:
        if self.position is not None:
            cutoff = self.position.timestamp - LATE_WINDOW
            self.recent = {key: ts for key, ts in self.recent.items() if ts >= cutoff}


def _state_event(row: sa.RowMapping) -> tuple[str, str]:
    response = states.to_response(queries.StateRow(**{**row, "type": StateType(row["type"])}))
    kind = "flow_run.state" if row["task_run_id"] is None else "task_run.state"
    return kind, response.model_dump_json()


class _RunStates(_Source):
    """The state history of one flow run and of its task runs."""

    key = "s"
    table = state

    def __init__(self, flow_run_id: uuid.UUID) -> None:
        super().__init__()
        self.flow_run_id = flow_run_id

    def query(self, conditions: Sequence[sa.ColumnElement[bool]], lower: float | None) -> Any:
        # The flow run's own states through the partial index (task_run_id IS NULL);
        # its task runs' through ix_task_run_flow_run_id, then ix_state_task_run_id.
        own = sa.select(*_STATE_COLUMNS).where(
            state.c.flow_run_id == self.flow_run_id, state.c.task_run_id.is_(None), *conditions
        )
        tasks = (
            sa.select(*_STATE_COLUMNS)
            .join_from(task_run, state, state.c.task_run_id == task_run.c.id)
            .where(task_run.c.flow_run_id == self.flow_run_id, *conditions)
        )
        if lower is not None:
            # A task run's `updated` is the timestamp of its latest state.
            tasks = tasks.where(task_run.c.updated >= lower)
        return sa.union_all(own, tasks).subquery()

    def event(self, row: sa.RowMapping) -> tuple[str, str]:
        return _state_event(row)


class _AllRunStates(_Source):
    """The states of every flow run (not of task runs): a runs list's view."""

    key = "s"
    table = state

    def query(self, conditions: Sequence[sa.ColumnElement[bool]], lower: float | None) -> Any:
        query = (
            sa.select(*_STATE_COLUMNS)
            .join_from(
                flow_run,
                state,
                sa.and_(state.c.flow_run_id == flow_run.c.id, state.c.task_run_id.is_(None)),
            )
            .where(*conditions)
        )
        if lower is not None:
            # A flow run's `updated` is at or after its latest state's timestamp.
            query = query.where(flow_run.c.updated >= lower)
        return query.subquery()

    def event(self, row: sa.RowMapping) -> tuple[str, str]:
        return _state_event(row)


class _RunLogs(_Source):
    """The log lines of one flow run and its task runs."""

    key = "l"
    table = log

    def __init__(self, flow_run_id: uuid.UUID) -> None:
        super().__init__()
        self.flow_run_id = flow_run_id

    def query(self, conditions: Sequence[sa.ColumnElement[bool]], lower: float | None) -> Any:
        # ix_log_flow_run_id_timestamp
        return (
            sa.select(*_LOG_COLUMNS)
            .where(log.c.flow_run_id == self.flow_run_id, *conditions)
            .subquery()
        )

    def event(self, row: sa.RowMapping) -> tuple[str, str]:
        response = LogResponse(
            id=row["id"],
            flow_run_id=row["flow_run_id"],
            task_run_id=row["task_run_id"],
            level=row["level"],
            name=row["name"],
            message=row["message"],
            timestamp=utc(row["timestamp"]),
        )
        return "log", response.model_dump_json()


def parse_event_id(text: str) -> dict[str, Position]:
    """The positions in an event id (`Last-Event-ID`); raises ValueError if it is not one."""
    positions: dict[str, Position] = {}
    for part in filter(None, text.strip().split(";")):
        key, text, ident = part.split(":")
        timestamp = float(text)
        if key not in ("s", "l") or key in positions:
            raise ValueError(f"unknown or repeated part {key!r}")
        if not abs(timestamp) < _LATEST_TIMESTAMP:
            raise ValueError(f"timestamp {text!r} out of range")
        positions[key] = Position(timestamp, uuid.UUID(hex=ident))
    return positions


@dataclasses.dataclass(frozen=True, slots=True)
class Poll:
    """What one poll found: events to send, whether more are waiting, the run's state."""

    events: list[Event]
    more: bool
    #: the followed flow run's state type and name (None: no such run, or no run followed)
    state: tuple[StateType, str] | None


class Follower:
    """Where one stream stands; `poll` is called from one thread at a time.

    Args:
        flow_run_id: follow this flow run (states of it and its task runs, logs),
            or None: the states of every flow run, from now on.
        kinds: subset of `KINDS` to send (a flow run only; all runs send states).
        resume: positions from a `Last-Event-ID`: send only what follows them.
        now: the server's clock, where a stream of all runs starts.
    """

    def __init__(
        self,
        flow_run_id: uuid.UUID | None,
        kinds: Iterable[str],
        *,
        resume: dict[str, Position] | None = None,
        now: float,
    ) -> None:
        self.flow_run_id = flow_run_id
        kinds = frozenset(kinds)
        self.sources: list[_Source] = []
        if flow_run_id is None:
            self.sources.append(_AllRunStates())
        else:
            if STATES in kinds:
                self.sources.append(_RunStates(flow_run_id))
            if LOGS in kinds:
                self.sources.append(_RunLogs(flow_run_id))
        for source in self.sources:
            source.position = (resume or {}).get(source.key)
            if source.position is None and flow_run_id is None:
                source.position = Position(now, _ZERO)
        self._primed = False

    @property
    def event_id(self) -> str:
        return ";".join(
            f"{source.key}:{source.position.timestamp!r}:{source.position.id.hex}"
            for source in self.sources
            if source.position is not None
        )

    def poll(self, conn: sa.Connection, *, late: bool, now: float) -> Poll:
        """The next events, oldest first; `late`: also look for rows that committed late."""
        if not self._primed:
            for source in self.sources:
                source.prime(conn)
            self._primed = True
        found: list[tuple[Position, _Source, Any]] = []
        bound: Position | None = None
        for source in self.sources:
            if late:
                found += [(p, source, row) for p, row in source.late_rows(conn)]
            rows, stopped = source.new_rows(conn)
            found += [(p, source, row) for p, row in rows]
            if stopped is not None:
                bound = stopped if bound is None else min(bound, stopped)
        if bound is not None:
            # One source has more rows: send nothing past where its reading stopped, so
            # events stay in order across sources (the rest comes with the next poll).
            found = [item for item in found if item[0] <= bound]
        found.sort(key=lambda item: item[0])
        events = []
        for position, source, row in found:
            source.sent(position, now)
            kind, data = source.event(row)
            events.append(Event(kind, data, self.event_id))
        for source in self.sources:
            source.prune()
        return Poll(events, bound is not None, self._run_state(conn))

    def _run_state(self, conn: sa.Connection) -> tuple[StateType, str] | None:
        if self.flow_run_id is None:
            return None
        row = conn.execute(
            sa.select(flow_run.c.state_type, flow_run.c.state_name).where(
                flow_run.c.id == self.flow_run_id
            )
        ).first()
        return None if row is None else (StateType(row[0]), row[1])
