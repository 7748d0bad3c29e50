"""Flow runs: create, read, filter, count, delete, and state changes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression

from headwater.core.ids import flow_id as flow_id_of
from headwater.core.ids import uuid7_hex
from headwater.core.rules import RunPosition
from headwater.core.states import TERMINAL_TYPES, StateType
from headwater.exceptions import ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.flow_runs import (
    FlowRunCreate,
    FlowRunFilter,
    FlowRunResponse,
    FlowRunSort,
)
from headwater.server.repositories._common import has_all_tags, seconds, upsertable_insert
from headwater.server.repositories.events import record_state_events
from headwater.store.queries import RUN_TIME
from headwater.store.tables import (
    artifact,
    flow,
    flow_run,
    flow_run_input,
    log,
    state,
    task_run,
)

_COLUMNS = [*flow_run.c, flow.c.name.label("flow_name")]

_ORDER = {
    FlowRunSort.RUN_TIME_DESC: (RUN_TIME.desc(), flow_run.c.id.desc()),
    FlowRunSort.RUN_TIME_ASC: (RUN_TIME.asc(), flow_run.c.id.asc()),
    FlowRunSort.CREATED_DESC: (flow_run.c.created.desc(), flow_run.c.id.desc()),
    FlowRunSort.CREATED_ASC: (flow_run.c.created.asc(), flow_run.c.id.asc()),
}


# Built once (statements, not connections): building a select of 21 columns costs
# more than running it on SQLite. These serve the per-run calls of set_state.
_READ = (
    sa.select(*_COLUMNS)
    .join_from(flow_run, flow, flow.c.id == flow_run.c.flow_id)
    .where(flow_run.c.id == sa.bindparam("flow_run_id"))
)
_CURRENT_STATE = sa.select(
    flow_run.c.state_type, flow_run.c.run_count, flow_run.c.state_timestamp
).where(flow_run.c.id == sa.bindparam("flow_run_id"))
_EXISTS = sa.select(flow_run.c.id).where(flow_run.c.id == sa.bindparam("flow_run_id"))


def _duration(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else max(0.0, end - start)


def to_response(row: Mapping[Any, Any]) -> FlowRunResponse:
    return FlowRunResponse(
        id=row["id"],
        name=row["name"],
        flow_id=row["flow_id"],
        flow_name=row["flow_name"],
        state_type=StateType(row["state_type"]),
        state_name=row["state_name"],
        state_message=row["state_message"],
        state_timestamp=utc(row["state_timestamp"]),
        parameters=row["parameters"] or {},
        tags=row["tags"] or [],
        run_count=row["run_count"],
        parent_flow_run_id=row["parent_flow_run_id"],
        root_flow_run_id=row["root_flow_run_id"],
        parent_task_run_id=row["parent_task_run_id"],
        deployment_id=row["deployment_id"],
        expected_start_time=utc(row["expected_start_time"]),
        start_time=utc(row["start_time"]),
        end_time=utc(row["end_time"]),
        duration=_duration(row["start_time"], row["end_time"]),
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def _where(
    conn: sa.Connection, filters: FlowRunFilter, *, walk: bool = False
) -> list[sa.ColumnElement[bool]]:
    """The conditions of `filters`; with `walk` (SQLite), written so that no index but
    the order's serves them (`_sqlite_walks`)."""
    column = _unindexed if walk else _as_is
    where: list[sa.ColumnElement[bool]] = []
    if filters.flow_name is not None:
        # A subquery, not a join: counts and filters then read flow_run alone.
        named = sa.select(flow.c.id).where(flow.c.name == filters.flow_name)
        where.append(column(flow_run.c.flow_id) == named.scalar_subquery())
    if filters.flow_id is not None:
        where.append(column(flow_run.c.flow_id) == filters.flow_id)
    if filters.state_type:
        where.append(column(flow_run.c.state_type).in_([t.value for t in filters.state_type]))
    if filters.tag:
        where.extend(_tags_text_prefilter(conn, filters.tag))
        where.extend(has_all_tags(conn, flow_run.c.tags, filters.tag))
    if filters.since is not None:
        where.append(seconds(filters.since) <= RUN_TIME)
    if filters.until is not None:
        where.append(seconds(filters.until) >= RUN_TIME)
    if filters.parent_flow_run_id is not None:
        where.append(column(flow_run.c.parent_flow_run_id) == filters.parent_flow_run_id)
    if filters.deployment_id is not None:
        where.append(column(flow_run.c.deployment_id) == filters.deployment_id)
    if filters.state_name:
        where.append(flow_run.c.state_name.in_(filters.state_name))
    return where


def _as_is(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return column


def _unindexed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """`+column`: SQLite's way to keep a condition from using an index (same value)."""
    return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)


def list_flow_runs(
    conn: sa.Connection,
    *,
    filters: FlowRunFilter,
    sort: FlowRunSort = FlowRunSort.RUN_TIME_DESC,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[FlowRunResponse], int]:
    """One page of the flow runs matching `filters`, and how many match in all.

    The page and the count read flow_run alone (the flow names of the page come
    after, by id): with a join, SQLite may loop over flows first and sort every run,
    and PostgreSQL hashes every run for a count that does not need the flow.
    """
    where = _where(conn, filters)
    query = sa.select(flow_run).where(*where)
    order = _ORDER[sort]
    total: int | None = None
    if where and conn.dialect.name == "sqlite":
        total = _count(conn, where)
        if _sqlite_walks(conn, matching=total, wanted=offset + limit):
            query = sa.select(flow_run).where(*_where(conn, filters, walk=True))
        else:
            order = _UNINDEXED_ORDER[sort]
    rows = conn.execute(query.order_by(*order).offset(offset).limit(limit)).mappings().all()
    names = _flow_names(conn, {row["flow_id"] for row in rows})
    items = [to_response({**row, "flow_name": names.get(row["flow_id"], "")}) for row in rows]
    if total is None:
        short_first_page = offset == 0 and len(items) < limit
        total = len(items) if short_first_page else _count(conn, where)
    return items, total


def _count(conn: sa.Connection, where: list[sa.ColumnElement[bool]]) -> int:
    query = sa.select(sa.func.count()).select_from(flow_run).where(*where)
    return int(conn.execute(query).scalar_one())


# The orders as expressions no index holds ("+ 0" changes no value).
_UNINDEXED_ORDER = {
    FlowRunSort.RUN_TIME_DESC: ((RUN_TIME + 0).desc(), flow_run.c.id.desc()),
    FlowRunSort.RUN_TIME_ASC: ((RUN_TIME + 0).asc(), flow_run.c.id.asc()),
    FlowRunSort.CREATED_DESC: ((flow_run.c.created + 0).desc(), flow_run.c.id.desc()),
    FlowRunSort.CREATED_ASC: ((flow_run.c.created + 0).asc(), flow_run.c.id.asc()),
}


def _sqlite_walks(conn: sa.Connection, *, matching: int, wanted: int) -> bool:
    """Whether SQLite should read a filtered page by walking the order's index.

    Without statistics (nothing runs ANALYZE on a Headwater store) SQLite guesses
    that a filter on an indexed column (state, flow, deployment) matches a few rows:
    it reads every matching run and sorts them, 80,000 of 100,000 for "Completed".
    Walking the order's index and skipping the runs that do not match reads about
    `wanted * runs / matching` rows instead of `matching`: the caller takes the
    cheaper plan and words the query so that SQLite follows it (with statistics
    SQLite errs the other way, walking the whole index for a rare state).
    """
    runs = int(conn.execute(sa.select(sa.func.count()).select_from(flow_run)).scalar_one())
    return wanted * runs < matching * matching


def _flow_names(conn: sa.Connection, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    query = sa.select(flow.c.id, flow.c.name).where(flow.c.id.in_(ids))
    return {row.id: row.name for row in conn.execute(query)}


def _tags_text_prefilter(conn: sa.Connection, tags: list[str]) -> list[sa.ColumnElement[bool]]:
    """On SQLite, a cheap text test before the exact JSON one of `has_all_tags`.

    A tag of printable ASCII without quotes, backslashes or slashes has one JSON
    spelling, `"tag"`, whatever wrote the array, so a row without that text cannot
    hold it; `instr` on the text costs a fraction of `json_each` on every row. Other
    tags (which JSON writers may escape differently) get only the exact test.
    """
    if conn.dialect.name != "sqlite":
        return []
    plain = [t for t in tags if t.isascii() and t.isprintable() and not set(t) & {'"', "\\", "/"}]
    return [sa.func.instr(flow_run.c.tags, f'"{tag}"') > 0 for tag in plain]


def count_by_state(conn: sa.Connection, *, filters: FlowRunFilter) -> dict[StateType, int]:
    """How many flow runs match `filters`, per state type (types without runs are absent)."""
    where = _where(conn, filters)
    group: sa.ColumnElement[str] = flow_run.c.state_type
    others = any(getattr(filters, f) for f in FlowRunFilter.model_fields if f != "state_type")
    if others and conn.dialect.name == "sqlite":
        # Grouping by an indexed column, SQLite walks that index to avoid a sort and
        # reads the rows in its order, at random, for the other filters: 6 times
        # slower than a scan. An expression it cannot look up keeps it from that.
        group = flow_run.c.state_type + ""
    query = sa.select(group, sa.func.count()).where(*where).group_by(group)
    return {StateType(state_type): count for state_type, count in conn.execute(query)}


def history(
    conn: sa.Connection, *, filters: FlowRunFilter, since: float, until: float, buckets: int
) -> list[dict[StateType, int]]:
    """How many runs matching `filters` ran in each of `buckets` equal parts of the
    window `since`..`until` (epoch seconds; run time, as the listing orders by), per
    state type. A run exactly at `until` counts in the last bucket.
    """
    width = (until - since) / buckets
    if conn.dialect.name == "postgresql":
        index: sa.ColumnElement[Any] = sa.func.floor(
            (sa.extract("epoch", RUN_TIME) - since) / width
        )
    else:
        # REAL epoch seconds, never below `since` here: truncation is floor.
        index = sa.cast((RUN_TIME - since) / width, sa.Integer)
    window = filters.model_copy(update={"since": utc(since), "until": utc(until)})
    runs = (
        sa.select(index.label("bucket"), flow_run.c.state_type)
        .where(*_where(conn, window))
        .subquery()
    )
    query = sa.select(runs.c.bucket, runs.c.state_type, sa.func.count()).group_by(
        runs.c.bucket, runs.c.state_type
    )
    counts: list[dict[StateType, int]] = [{} for _ in range(buckets)]
    for bucket, state_type, count in conn.execute(query):
        slot = counts[min(max(int(bucket), 0), buckets - 1)]
        key = StateType(state_type)
        slot[key] = slot.get(key, 0) + count
    return counts


def read(conn: sa.Connection, *, flow_run_id: uuid.UUID) -> FlowRunResponse:
    """The flow run with this id.

    Raises:
        ObjectNotFound: there is none.
    """
    row = conn.execute(_READ, {"flow_run_id": flow_run_id}).mappings().one_or_none()
    if row is None:
        raise ObjectNotFound(f"No flow run found with id {str(flow_run_id)!r}.")
    return to_response(row)


def exists(conn: sa.Connection, *, flow_run_id: uuid.UUID) -> bool:
    return conn.execute(_EXISTS, {"flow_run_id": flow_run_id}).first() is not None


def _resolve_flow(conn: sa.Connection, body: FlowRunCreate, now: float) -> uuid.UUID:
    if body.flow_id is not None:
        found: uuid.UUID | None = conn.execute(
            sa.select(flow.c.id).where(flow.c.id == uuid.UUID(body.flow_id))
        ).scalar_one_or_none()
        if found is None:
            raise ObjectNotFound(
                f"No flow found with id {str(uuid.UUID(body.flow_id))!r} (flow_id); "
                "give flow_name instead to create the flow."
            )
        return found
    assert body.flow_name is not None
    insert = upsertable_insert(conn, flow).values(
        id=uuid.UUID(flow_id_of(body.flow_name)), name=body.flow_name, created=now
    )
    conn.execute(insert.on_conflict_do_nothing())
    query = sa.select(flow.c.id).where(flow.c.name == body.flow_name)
    found_id: uuid.UUID = conn.execute(query).scalar_one()
    return found_id


def create(conn: sa.Connection, *, body: FlowRunCreate, name: str) -> tuple[FlowRunResponse, bool]:
    """Create the flow run `body` describes; (the run, whether it was created now).

    A run whose `id` already exists is returned as it is (a retried create).

    Raises:
        ObjectNotFound: `flow_id` or `parent_flow_run_id` names nothing.
    """
    run_id = uuid.UUID(body.id or uuid7_hex())
    if exists(conn, flow_run_id=run_id):
        return read(conn, flow_run_id=run_id), False
    now = time.time()
    flow_uuid = _resolve_flow(conn, body, now)
    root = run_id
    if body.parent_flow_run_id is not None:
        parent_id = uuid.UUID(body.parent_flow_run_id)
        parent_root = conn.execute(
            sa.select(flow_run.c.root_flow_run_id).where(flow_run.c.id == parent_id)
        ).first()
        if parent_root is None:
            raise ObjectNotFound(
                f"No flow run found with id {str(parent_id)!r} (parent_flow_run_id)."
            )
        root = parent_root[0] or parent_id
    first = body.state
    stamp = first.timestamp if first.timestamp is not None else now
    running = first.type is StateType.RUNNING
    values: dict[str, Any] = {
        "id": run_id,
        "flow_id": flow_uuid,
        "name": name,
        "state_type": first.type.value,
        "state_name": first.name or first.type.value.title(),
        "state_message": first.message,
        "state_timestamp": stamp,
        "parameters": body.parameters,
        "tags": body.tags,
        "run_count": 1 if running else 0,
        "parent_flow_run_id": _uuid(body.parent_flow_run_id),
        "root_flow_run_id": root,
        "parent_task_run_id": _uuid(body.parent_task_run_id),
        "deployment_id": _uuid(body.deployment_id),
        "expected_start_time": body.expected_start_time,
        "start_time": stamp if running else None,
        "end_time": stamp if first.type in TERMINAL_TYPES else None,
        "created": now,
        "updated": now,
    }
    conn.execute(sa.insert(flow_run).values(values))
    first_state = {
        "id": uuid.UUID(uuid7_hex()),
        "flow_run_id": run_id,
        "task_run_id": None,
        "type": values["state_type"],
        "name": values["state_name"],
        "message": first.message,
        "timestamp": stamp,
    }
    conn.execute(sa.insert(state).values(first_state))
    record_state_events(conn, [first_state])
    return read(conn, flow_run_id=run_id), True


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


def current_state(conn: sa.Connection, *, flow_run_id: uuid.UUID) -> RunPosition:
    """The run's state type, attempt and state timestamp (the compare-and-set token).

    Raises:
        ObjectNotFound: there is no such run.
    """
    row = conn.execute(_CURRENT_STATE, {"flow_run_id": flow_run_id}).first()
    if row is None:
        raise ObjectNotFound(f"No flow run found with id {str(flow_run_id)!r}.")
    return RunPosition(StateType(row.state_type), row.run_count, row.state_timestamp)


def change_state(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID,
    current: RunPosition,
    state_id: uuid.UUID,
    state_type: StateType,
    name: str,
    message: str | None,
    timestamp: float,
) -> bool:
    """Move the run from `current` to the new state, if nobody changed it meanwhile.

    The UPDATE matches the state read before (`current_state`: compare-and-set),
    so two concurrent transitions cannot both win. Returns False if it lost.
    """
    current_type, current_timestamp = current.state_type, current.state_timestamp
    values: dict[str, Any] = {
        "state_type": state_type.value,
        "state_name": name,
        "state_message": message,
        "state_timestamp": timestamp,
        "updated": time.time(),
    }
    if state_type is StateType.RUNNING and current_type is not StateType.RUNNING:
        values["run_count"] = flow_run.c.run_count + 1
        values["start_time"] = sa.func.coalesce(
            flow_run.c.start_time, sa.literal(timestamp, type_=flow_run.c.start_time.type)
        )
    if state_type in TERMINAL_TYPES:
        values["end_time"] = timestamp
    elif current_type in TERMINAL_TYPES:
        values["end_time"] = None
    result = conn.execute(
        sa.update(flow_run)
        .where(
            flow_run.c.id == flow_run_id,
            flow_run.c.state_type == current_type.value,
            flow_run.c.state_timestamp == current_timestamp,
        )
        .values(values)
    )
    if result.rowcount != 1:
        return False
    record_state(
        conn,
        state_id=state_id,
        flow_run_id=flow_run_id,
        state_type=state_type,
        name=name,
        message=message,
        timestamp=timestamp,
    )
    return True


def record_state(
    conn: sa.Connection,
    *,
    state_id: uuid.UUID,
    flow_run_id: uuid.UUID,
    state_type: StateType,
    name: str,
    message: str | None,
    timestamp: float,
) -> None:
    """Add a state to the flow run's history, with its lifecycle event."""
    new_state = {
        "id": state_id,
        "flow_run_id": flow_run_id,
        "task_run_id": None,
        "type": state_type.value,
        "name": name,
        "message": message,
        "timestamp": timestamp,
    }
    conn.execute(sa.insert(state).values(new_state))
    record_state_events(conn, [new_state])


def delete(conn: sa.Connection, *, flow_run_id: uuid.UUID) -> None:
    """Delete the flow run with its task runs, state history, logs, artifacts and inputs.

    Raises:
        ObjectNotFound: there is none.
    """
    if not exists(conn, flow_run_id=flow_run_id):
        raise ObjectNotFound(f"No flow run found with id {str(flow_run_id)!r}.")
    delete_where(conn, flow_run.c.id == flow_run_id)


def delete_where(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> int:
    """Delete the flow runs matching `condition`, with everything they own; how many."""
    runs = sa.select(flow_run.c.id).where(condition).scalar_subquery()
    tasks = sa.select(task_run.c.id).where(task_run.c.flow_run_id.in_(runs)).scalar_subquery()
    # Explicit, not ON DELETE CASCADE: SQLite connections run without foreign keys,
    # and states and logs have none.
    conn.execute(sa.delete(state).where(state.c.task_run_id.in_(tasks)))
    conn.execute(
        sa.delete(state).where(state.c.flow_run_id.in_(runs), state.c.task_run_id.is_(None))
    )
    conn.execute(sa.delete(log).where(log.c.flow_run_id.in_(runs)))
    conn.execute(sa.delete(artifact).where(artifact.c.flow_run_id.in_(runs)))
    conn.execute(sa.delete(flow_run_input).where(flow_run_input.c.flow_run_id.in_(runs)))
    conn.execute(sa.delete(task_run).where(task_run.c.flow_run_id.in_(runs)))
    return int(conn.execute(sa.delete(flow_run).where(condition)).rowcount)
