"""Task runs: read, filter, count, state history. (Written through /api/records.)"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from headwater.schemas.common import Page
from headwater.schemas.flow_runs import StateCounts
from headwater.schemas.states import StateResponse
from headwater.schemas.task_runs import TaskRunFilter, TaskRunQuery, TaskRunResponse
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.repositories import states, task_runs

router = APIRouter(prefix="/task_runs", tags=["task runs"])


@router.get("")
def list_task_runs(
    db: DatabaseDep, query: Annotated[TaskRunQuery, Query()]
) -> Page[TaskRunResponse]:
    """Task runs matching every filter given, a page at a time, in creation order."""
    with db.read() as conn:
        items, total = task_runs.list_task_runs(
            conn,
            filters=query,
            newest_first=query.newest_first,
            offset=query.offset,
            limit=query.limit,
        )
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/counts")
def count_task_runs(db: DatabaseDep, query: Annotated[TaskRunFilter, Query()]) -> StateCounts:
    """How many task runs match the filters, per state type."""
    with db.read() as conn:
        counts = task_runs.count_by_state(conn, filters=query)
    return StateCounts(counts=counts, total=sum(counts.values()))


@router.get("/{task_run_id}", responses=errors(404))
def read_task_run(db: DatabaseDep, task_run_id: uuid.UUID) -> TaskRunResponse:
    """The task run with this id."""
    with db.read() as conn:
        return task_runs.read(conn, task_run_id=task_run_id)


@router.get("/{task_run_id}/states", responses=errors(404))
def read_task_run_states(db: DatabaseDep, task_run_id: uuid.UUID) -> list[StateResponse]:
    """The states the task run went through, oldest first."""
    with db.read() as conn:
        task_runs.read(conn, task_run_id=task_run_id)
        return states.history(conn, task_run_id=task_run_id)
