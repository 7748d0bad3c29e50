"""Task runs: read and filter."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from headwater.core.states import StateType
from headwater.exceptions import ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.task_runs import TaskRunFilter, TaskRunResponse
from headwater.server.repositories._common import page, seconds
from headwater.store.tables import task_run


def to_response(row: sa.RowMapping) -> TaskRunResponse:
    start, end = row["start_time"], row["end_time"]
    return TaskRunResponse(
        id=row["id"],
        flow_run_id=row["flow_run_id"],
        task_key=row["task_key"],
        dynamic_key=row["dynamic_key"],
        name=row["name"],
        state_type=StateType(row["state_type"]),
        state_name=row["state_name"],
        state_message=row["state_message"],
        state_timestamp=utc(row["state_timestamp"]),
        tags=row["tags"] or [],
        run_count=row["run_count"],
        task_inputs=row["task_inputs"],
        start_time=utc(start),
        end_time=utc(end),
        duration=None if start is None or end is None else max(0.0, end - start),
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def _where(filters: TaskRunFilter) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if filters.flow_run_id is not None:
        where.append(task_run.c.flow_run_id == filters.flow_run_id)
    if filters.state_type:
        where.append(task_run.c.state_type.in_([t.value for t in filters.state_type]))
    if filters.since is not None:
        where.append(task_run.c.created >= seconds(filters.since))
    if filters.until is not None:
        where.append(task_run.c.created <= seconds(filters.until))
    return where


def list_task_runs(
    conn: sa.Connection,
    *,
    filters: TaskRunFilter,
    newest_first: bool = False,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[TaskRunResponse], int]:
    """One page of the task runs matching `filters` by creation time, and the total."""
    query = sa.select(task_run).where(*_where(filters))
    order = (
        (task_run.c.created.desc(), task_run.c.id.desc())
        if newest_first
        else (task_run.c.created.asc(), task_run.c.id.asc())
    )
    return page(conn, query, order, offset, limit, to_response)


def count_by_state(conn: sa.Connection, *, filters: TaskRunFilter) -> dict[StateType, int]:
    """How many task runs match `filters`, per state type."""
    query = (
        sa.select(task_run.c.state_type, sa.func.count())
        .where(*_where(filters))
        .group_by(task_run.c.state_type)
    )
    return {StateType(state_type): count for state_type, count in conn.execute(query)}


def read(conn: sa.Connection, *, task_run_id: uuid.UUID) -> TaskRunResponse:
    """The task run with this id.

    Raises:
        ObjectNotFound: there is none.
    """
    row = conn.execute(sa.select(task_run).where(task_run.c.id == task_run_id)).mappings().first()
    if row is None:
        raise ObjectNotFound(f"No task run found with id {str(task_run_id)!r}.")
    return to_response(row)
