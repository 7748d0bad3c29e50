"""Flows: list, read by id or name, delete."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from headwater.schemas.common import Page
from headwater.schemas.flows import FlowFilter, FlowResponse
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.repositories import flows

router = APIRouter(prefix="/flows", tags=["flows"])
_NOT_FOUND = errors(404)


@router.get("")
def list_flows(db: DatabaseDep, query: Annotated[FlowFilter, Query()]) -> Page[FlowResponse]:
    """Flows by name, a page at a time."""
    with db.read() as conn:
        items, total = flows.list_flows(
            conn, name_like=query.name_like, offset=query.offset, limit=query.limit
        )
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/name/{name}", responses=_NOT_FOUND)
def read_flow_by_name(db: DatabaseDep, name: str) -> FlowResponse:
    """The flow with this name."""
    with db.read() as conn:
        return flows.read(conn, name=name)


@router.get("/{flow_id}", responses=_NOT_FOUND)
def read_flow(db: DatabaseDep, flow_id: uuid.UUID) -> FlowResponse:
    """The flow with this id."""
    with db.read() as conn:
        return flows.read(conn, flow_id=flow_id)


@router.delete("/{flow_id}", status_code=204, responses=_NOT_FOUND)
def delete_flow(db: DatabaseDep, flow_id: uuid.UUID) -> Response:
    """Delete the flow and all its runs, with their task runs, states and logs."""
    with db.write() as conn:
        flows.delete(conn, flow_id=flow_id)
    return Response(status_code=204)
