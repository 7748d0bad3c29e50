"""Read-side queries over flow runs, task runs, state history and logs.

Every function takes an open SQLAlchemy `Connection`, is keyword-only past
the connection, and never commits: the caller owns the transaction. Results
are small frozen dataclasses, so callers (the CLI, the API) never depend on
the shape of a `Row`.

A run's "run time" is when it started, or when it is expected to start if it
has not yet, or when it was created: `coalesce(start_time, expected_start_time,
created)`. Flow-run listings are filtered (`since`/`until`) and ordered by it.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, TypedDict

import sqlalchemy as sa

from headwater.core.states import StateType
from headwater.exceptions import AmbiguousIdError, ObjectNotFound
from headwater.store import tables
from headwater.store.tables import flow, flow_run, log, state, task_run

__all__ = [
    "AmbiguousIdError",
    "FlowRunFilters",
    "FlowRunRow",
    "LogRow",
    "StateRow",
    "TaskRunRow",
    "count_flow_runs_by_state",
    "count_task_runs_by_state",
    "list_flow_runs",
    "list_task_runs",
    "read_flow_run",
    "read_logs",
    "read_state_history",
    "resolve_id",
]

#: How many candidates an ambiguous id prefix error names.
_MAX_CANDIDATES = 5
_HEX_DIGITS = frozenset("0123456789abcdef")


def _duration(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, end - start)


@dataclasses.dataclass(frozen=True, slots=True)
class FlowRunRow:
    """A flow run as stored, with its flow's name."""

    id: uuid.UUID
    name: str
    flow_name: str
    state_type: StateType
    state_name: str
    state_message: str | None
    state_timestamp: float
    parameters: dict[str, Any]
    tags: list[str]
    run_count: int
    parent_flow_run_id: uuid.UUID | None
    parent_task_run_id: uuid.UUID | None
    root_flow_run_id: uuid.UUID | None
    deployment_id: uuid.UUID | None
    expected_start_time: float | None
    start_time: float | None
    end_time: float | None
    created: float
    updated: float

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None until the run has both."""
        return _duration(self.start_time, self.end_time)


@dataclasses.dataclass(frozen=True, slots=True)
class TaskRunRow:
    """A task run as stored, with the name of its flow run (None outside a flow)."""

    id: uuid.UUID
    flow_run_id: uuid.UUID | None
    flow_run_name: str | None
    task_key: str
    dynamic_key: str
    name: str
    state_type: StateType
    state_name: str
    state_message: str | None
    state_timestamp: float
    tags: list[str]
    run_count: int
    start_time: float | None
    end_time: float | None
    created: float
    updated: float

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; None until the run has both."""
        return _duration(self.start_time, self.end_time)


@dataclasses.dataclass(frozen=True, slots=True)
class StateRow:
    """One entry of a run's state history."""

    id: uuid.UUID
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    type: StateType
    name: str
    message: str | None
    timestamp: float


@dataclasses.dataclass(frozen=True, slots=True)
class LogRow:
    """One log line, with the name of the task run that emitted it (None: the flow run)."""

    id: uuid.UUID
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    task_run_name: str | None
    level: int
    name: str
    message: str
    timestamp: float


# -- flow runs -----------------------------------------------------------------

#: See the module docstring; the index `ix_flow_run_run_time` serves it.
RUN_TIME = tables.RUN_TIME


def _columns(table: sa.Table, row_type: type, **joined: sa.ColumnElement[Any]) -> list[Any]:
    """The columns of `table` that `row_type` has fields for, then `joined` ones, labelled."""
    names = {field.name for field in dataclasses.fields(row_type)}
    selected: list[Any] = [column for column in table.c if column.name in names]
    return selected + [column.label(name) for name, column in joined.items()]


_FLOW_RUN_COLUMNS = _columns(flow_run, FlowRunRow, flow_name=flow.c.name)


class FlowRunFilters(TypedDict, total=False):
    """The filters `list_flow_runs` and `count_flow_runs_by_state` share, to pass to both."""

    flow_name: str | None
    state_types: Iterable[StateType | str] | None
    since: float | None
    until: float | None
    parent_flow_run_id: uuid.UUID | None


def _state_values(state_types: Iterable[StateType | str]) -> list[str]:
    """The stored values of `state_types` (StateType members or their names)."""
    return [StateType(str(value).upper()).value for value in state_types]


def _flow_run_row(row: sa.RowMapping) -> FlowRunRow:
    values = dict(row)
    values["state_type"] = StateType(values["state_type"])
    values["parameters"] = values["parameters"] or {}
    values["tags"] = values["tags"] or []
    return FlowRunRow(**values)


def _flow_run_filters(
    *,
    flow_name: str | None,
    state_types: Iterable[StateType | str] | None,
    since: float | None,
    until: float | None,
    parent_flow_run_id: uuid.UUID | None,
) -> list[sa.ColumnElement[bool]]:
    filters: list[sa.ColumnElement[bool]] = []
    if flow_name is not None:
        filters.append(flow.c.name == flow_name)
    if state_types is not None:
        filters.append(flow_run.c.state_type.in_(_state_values(state_types)))
    if since is not None:
        filters.append(since <= RUN_TIME)
    if until is not None:
        filters.append(until >= RUN_TIME)
    if parent_flow_run_id is not None:
        filters.append(flow_run.c.parent_flow_run_id == parent_flow_run_id)
    return filters


def list_flow_runs(
    conn: sa.Connection,
    *,
    flow_name: str | None = None,
    state_types: Iterable[StateType | str] | None = None,
    since: float | None = None,
    until: float | None = None,
    parent_flow_run_id: uuid.UUID | None = None,
    limit: int | None = 20,
    offset: int = 0,
) -> list[FlowRunRow]:
    """Flow runs matching every given filter, latest run time first.

    Args:
        flow_name: only runs of the flow with this exact name.
        state_types: only runs whose state has one of these types
            (`StateType` members or names such as "FAILED").
        since: only runs whose run time is at or after this epoch timestamp.
        until: only runs whose run time is at or before this epoch timestamp.
        parent_flow_run_id: only subflow runs of this flow run.
        limit: at most this many runs (None: all of them).
        offset: skip this many runs first (paging).

    Raises:
        ValueError: a state type is not a `StateType` name.
    """
    filters = _flow_run_filters(
        flow_name=flow_name,
        state_types=state_types,
        since=since,
        until=until,
        parent_flow_run_id=parent_flow_run_id,
    )
    query = (
        sa.select(*_FLOW_RUN_COLUMNS)
        .join_from(flow_run, flow, flow.c.id == flow_run.c.flow_id)
        .where(*filters)
        .order_by(RUN_TIME.desc(), flow_run.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_flow_run_row(row) for row in conn.execute(query).mappings()]


def count_flow_runs_by_state(
    conn: sa.Connection,
    *,
    flow_name: str | None = None,
    state_types: Iterable[StateType | str] | None = None,
    since: float | None = None,
    until: float | None = None,
    parent_flow_run_id: uuid.UUID | None = None,
) -> dict[StateType, int]:
    """How many flow runs match the filters of `list_flow_runs`, per state type.

    Types without runs are absent; `sum(result.values())` is the total.
    """
    filters = _flow_run_filters(
        flow_name=flow_name,
        state_types=state_types,
        since=since,
        until=until,
        parent_flow_run_id=parent_flow_run_id,
    )
    query = sa.select(flow_run.c.state_type, sa.func.count()).group_by(flow_run.c.state_type)
    if flow_name is not None:
        query = query.join_from(flow_run, flow, flow.c.id == flow_run.c.flow_id)
    query = query.where(*filters)
    return {StateType(state_type): count for state_type, count in conn.execute(query)}


def _id_range(id_or_prefix: str | uuid.UUID, kind: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The smallest and largest ids that start with `id_or_prefix`."""
    if isinstance(id_or_prefix, uuid.UUID):
        return id_or_prefix, id_or_prefix
    digits = id_or_prefix.strip().lower().replace("-", "")
    if not digits or len(digits) > 32 or not set(digits) <= _HEX_DIGITS:
        raise ObjectNotFound(
            f"{kind.capitalize()} id {id_or_prefix!r} is not an id or id prefix "
            f"(hexadecimal digits, e.g. 0193a1b2-c3d4); {_list_hint(kind)}."
        )
    return uuid.UUID(hex=digits.ljust(32, "0")), uuid.UUID(hex=digits.ljust(32, "f"))


def _list_hint(kind: str) -> str:
    return f"list them with `headwater {kind.replace(' ', '-')} ls`"


def _one_match(matches: Sequence[Any], id_or_prefix: str | uuid.UUID, kind: str) -> Any:
    """The only element of `matches` (rows with `id` and `name`), or a readable error."""
    if not matches:
        raise ObjectNotFound(f"No {kind} found with id {str(id_or_prefix)!r}; {_list_hint(kind)}.")
    if len(matches) > 1:
        shown = ", ".join(f"{row.id} ({row.name})" for row in matches[:_MAX_CANDIDATES])
        more = " and more" if len(matches) > _MAX_CANDIDATES else ""
        raise AmbiguousIdError(
            f"{kind.capitalize()} id prefix {str(id_or_prefix)!r} is ambiguous; it matches "
            f"{shown}{more}. Use more characters of the id."
        )
    return matches[0]


def resolve_id(
    conn: sa.Connection, table: sa.Table, id_or_prefix: str | uuid.UUID, *, kind: str
) -> uuid.UUID:
    """The id in `table` that is, or uniquely starts with, `id_or_prefix`.

    Like git's short hashes: any leading part of the id's hexadecimal text
    works, with or without dashes ("0193a1b2-c3d4" or "0193a1b2c3d4"). The
    prefix becomes a range of ids, so the lookup uses the primary key index
    on SQLite and PostgreSQL alike.

    Args:
        table: a table with a UUID primary key `id` and a `name` column.
        kind: what the rows are, for messages ("task run").

    Raises:
        ObjectNotFound: no row matches, or the text is not an id or id prefix.
        AmbiguousIdError: several rows match; the message names some of them.
    """
    low, high = _id_range(id_or_prefix, kind)
    query = (
        sa.select(table.c.id, table.c.name)
        .where(table.c.id.between(low, high))
        .order_by(table.c.id)
        .limit(_MAX_CANDIDATES + 1)
    )
    matched: uuid.UUID = _one_match(conn.execute(query).all(), id_or_prefix, kind).id
    return matched


def read_flow_run(conn: sa.Connection, id_or_prefix: str | uuid.UUID) -> FlowRunRow:
    """The flow run with this id, or whose id starts with this unique prefix (see `resolve_id`).

    Raises:
        ObjectNotFound: no flow run matches (or the text is not an id prefix).
        AmbiguousIdError: the prefix matches several flow runs.
    """
    low, high = _id_range(id_or_prefix, "flow run")
    query = (
        sa.select(*_FLOW_RUN_COLUMNS)
        .join_from(flow_run, flow, flow.c.id == flow_run.c.flow_id)
        .where(flow_run.c.id.between(low, high))
        .order_by(flow_run.c.id)
        .limit(_MAX_CANDIDATES + 1)
    )
    matches = [_flow_run_row(match) for match in conn.execute(query).mappings()]
    row: FlowRunRow = _one_match(matches, id_or_prefix, "flow run")
    return row


# -- task runs -----------------------------------------------------------------

_TASK_RUN_COLUMNS = _columns(task_run, TaskRunRow, flow_run_name=flow_run.c.name)


def list_task_runs(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID | None = None,
    state_types: Iterable[StateType | str] | None = None,
    limit: int | None = 20,
    offset: int = 0,
    newest_first: bool = True,
) -> list[TaskRunRow]:
    """Task runs matching every given filter, ordered by creation.

    Args:
        flow_run_id: only task runs of this flow run.
        state_types: only task runs whose state has one of these types.
        limit: at most this many task runs (None: all of them).
        offset: skip this many first (paging).
        newest_first: latest created first (listings); False gives the order
            the runs were created in (a flow run's timeline).
    """
    filters: list[sa.ColumnElement[bool]] = []
    if flow_run_id is not None:
        filters.append(task_run.c.flow_run_id == flow_run_id)
    if state_types is not None:
        filters.append(task_run.c.state_type.in_(_state_values(state_types)))
    order = (
        (task_run.c.created.desc(), task_run.c.id.desc())
        if newest_first
        else (task_run.c.created, task_run.c.id)
    )
    query = (
        sa.select(*_TASK_RUN_COLUMNS)
        .outerjoin_from(task_run, flow_run, flow_run.c.id == task_run.c.flow_run_id)
        .where(*filters)
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    rows = []
    for row in conn.execute(query).mappings():
        values = dict(row)
        values["state_type"] = StateType(values["state_type"])
        values["tags"] = values["tags"] or []
        rows.append(TaskRunRow(**values))
    return rows


def count_task_runs_by_state(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID | None = None,
    state_types: Iterable[StateType | str] | None = None,
) -> dict[StateType, int]:
    """How many task runs match the filters of `list_task_runs`, per state type."""
    query = sa.select(task_run.c.state_type, sa.func.count()).group_by(task_run.c.state_type)
    if flow_run_id is not None:
        query = query.where(task_run.c.flow_run_id == flow_run_id)
    if state_types is not None:
        query = query.where(task_run.c.state_type.in_(_state_values(state_types)))
    return {StateType(state_type): count for state_type, count in conn.execute(query)}


# -- state history and logs ------------------------------------------------------


def read_state_history(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID | None = None,
    task_run_id: uuid.UUID | None = None,
) -> list[StateRow]:
    """The states a flow run or a task run went through, oldest first.

    Give exactly one id. A flow run's history holds its own states only, not
    those of its task runs.
    """
    if (flow_run_id is None) == (task_run_id is None):
        raise ValueError("read_state_history needs exactly one of flow_run_id, task_run_id")
    if flow_run_id is not None:
        where = sa.and_(state.c.flow_run_id == flow_run_id, state.c.task_run_id.is_(None))
    else:
        where = state.c.task_run_id == task_run_id
    query = sa.select(state).where(where).order_by(state.c.timestamp, state.c.id)
    return [
        StateRow(**{**row, "type": StateType(row["type"])})
        for row in conn.execute(query).mappings()
    ]


_LOG_COLUMNS = _columns(log, LogRow, task_run_name=task_run.c.name)


def read_logs(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID,
    after_timestamp: float | None = None,
    min_level: int | None = None,
    limit: int | None = None,
) -> list[LogRow]:
    """The log lines of a flow run and its task runs, oldest first.

    Args:
        after_timestamp: only lines logged strictly after this epoch timestamp.
        min_level: only lines at this `logging` level or above (e.g. 30 for WARNING).
        limit: at most this many lines (None: all of them).
    """
    filters: list[sa.ColumnElement[bool]] = [log.c.flow_run_id == flow_run_id]
    if after_timestamp is not None:
        filters.append(log.c.timestamp > after_timestamp)
    if min_level is not None:
        filters.append(log.c.level >= min_level)
    query = (
        sa.select(*_LOG_COLUMNS)
        .outerjoin_from(log, task_run, task_run.c.id == log.c.task_run_id)
        .where(*filters)
        .order_by(log.c.timestamp, log.c.id)
        .limit(limit)
    )
    return [LogRow(**row) for row in conn.execute(query).mappings()]
