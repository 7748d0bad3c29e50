"""State history of flow runs and task runs."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from headwater.core.states import StateType
from headwater.schemas.common import utc
from headwater.schemas.states import StateResponse
from headwater.store import queries
from headwater.store.tables import state


def to_response(row: queries.StateRow) -> StateResponse:
    """The wire form of a state-history row."""
    return StateResponse(
        id=row.id,
        flow_run_id=row.flow_run_id,
        task_run_id=row.task_run_id,
        type=row.type,
        name=row.name,
        message=row.message,
        timestamp=utc(row.timestamp),
    )


def history(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID | None = None,
    task_run_id: uuid.UUID | None = None,
) -> list[StateResponse]:
    """The states a flow run (its own, not its task runs') or a task run went through."""
    rows = queries.read_state_history(conn, flow_run_id=flow_run_id, task_run_id=task_run_id)
    return [to_response(row) for row in rows]


def read(conn: sa.Connection, *, state_id: uuid.UUID) -> StateResponse | None:
    """The state with this id, or None."""
    row = conn.execute(sa.select(state).where(state.c.id == state_id)).mappings().first()
    if row is None:
        return None
    return to_response(queries.StateRow(**{**row, "type": StateType(row["type"])}))
