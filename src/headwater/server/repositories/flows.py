"""Flows: list, read by id or name, delete (with their runs)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from headwater.exceptions import ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.flows import FlowResponse
from headwater.server.repositories import flow_runs
from headwater.server.repositories._common import total
from headwater.store.tables import flow, flow_run


def _response(row: Any) -> FlowResponse:
    return FlowResponse(id=row.id, name=row.name, created=utc(row.created))


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_flows(
    conn: sa.Connection, *, name_like: str | None = None, offset: int = 0, limit: int = 50
) -> tuple[list[FlowResponse], int]:
    """One page of flows by name, and how many match in all."""
    query = sa.select(flow.c.id, flow.c.name, flow.c.created)
    if name_like:
        query = query.where(flow.c.name.ilike(f"%{_like_escaped(name_like)}%", escape="\\"))
    rows = conn.execute(query.order_by(flow.c.name).offset(offset).limit(limit)).all()
    return [_response(row) for row in rows], total(conn, query)


def read(
    conn: sa.Connection, *, flow_id: uuid.UUID | None = None, name: str | None = None
) -> FlowResponse:
    """The flow with this id, or this name.

    Raises:
        ObjectNotFound: there is none.
    """
    query = sa.select(flow.c.id, flow.c.name, flow.c.created)
    if flow_id is not None:
        row = conn.execute(query.where(flow.c.id == flow_id)).first()
        what = f"id {str(flow_id)!r}"
    else:
        row = conn.execute(query.where(flow.c.name == name)).first()
        what = f"name {name!r}"
    if row is None:
        raise ObjectNotFound(f"No flow found with {what}.")
    return _response(row)


def delete(conn: sa.Connection, *, flow_id: uuid.UUID) -> None:
    """Delete the flow and all its runs (with their task runs, states and logs).

    Raises:
        ObjectNotFound: there is no such flow.
    """
    read(conn, flow_id=flow_id)
    flow_runs.delete_where(conn, flow_run.c.flow_id == flow_id)
    conn.execute(sa.delete(flow).where(flow.c.id == flow_id))
