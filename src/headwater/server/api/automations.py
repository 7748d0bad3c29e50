"""Automations: create, list, read, replace (by id or by name), pause, resume, delete, and
the firings each one recorded with the outcome of their actions."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from headwater.schemas.automations import (
    Automation,
    AutomationCreate,
    AutomationFiring,
    AutomationQuery,
    AutomationUpdate,
)
from headwater.schemas.common import Page, Paging
from headwater.server.api._responses import errors
from headwater.server.automations.service import nudge
from headwater.server.dependencies import DatabaseDep
from headwater.server.repositories import automations

router = APIRouter(prefix="/automations", tags=["automations"])

IdPath = Annotated[uuid.UUID, Path(description="The automation's id.")]
NamePath = Annotated[str, Path(min_length=1, max_length=255, description="Its name.")]


@router.post("", status_code=201, responses=errors(409, 422))
def create_automation(db: DatabaseDep, body: AutomationCreate) -> Automation:
    """Create an automation (409 if one has that name; 422 if an action names a missing
    deployment, work pool, work queue or automation)."""
    with db.write() as conn:
        created = automations.create(conn, body=body, now=time.time())
    nudge()
    return created


@router.get("", responses=errors(422))
def list_automations(
    db: DatabaseDep, query: Annotated[AutomationQuery, Query()]
) -> Page[Automation]:
    """Automations matching every filter given, by name, a page at a time."""
    with db.read() as conn:
        items, total = automations.list_automations(conn, query=query)
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/name/{name}", responses=errors(404, 422))
def read_automation_by_name(db: DatabaseDep, name: NamePath) -> Automation:
    """The automation named `name`."""
    with db.read() as conn:
        return automations.read_by_name(conn, name=name)


@router.put("/name/{name}", responses={201: {"model": Automation}, **errors(409, 422)})
def put_automation_by_name(
    db: DatabaseDep, name: NamePath, body: AutomationCreate, response: Response
) -> Automation:
    """Create the automation named `name` (201) or replace it (200): what
    `headwater automation apply` does. Replacing starts its windows over."""
    with db.write() as conn:
        item, created = automations.put_by_name(conn, name=name, body=body, now=time.time())
    if created:
        response.status_code = 201
    nudge()
    return item


@router.get("/{automation_id}", responses=errors(404, 422))
def read_automation(db: DatabaseDep, automation_id: IdPath) -> Automation:
    """The automation with this id."""
    with db.read() as conn:
        return automations.read(conn, automation_id=automation_id)


@router.put("/{automation_id}", responses=errors(404, 409, 422))
def replace_automation(
    db: DatabaseDep, automation_id: IdPath, body: AutomationCreate
) -> Automation:
    """Replace every field of the automation; its windows start over."""
    with db.write() as conn:
        item = automations.replace(conn, automation_id=automation_id, body=body, now=time.time())
    nudge()
    return item


@router.patch("/{automation_id}", responses=errors(404, 422))
def update_automation(db: DatabaseDep, automation_id: IdPath, body: AutomationUpdate) -> Automation:
    """Pause (`{"enabled": false}`) or resume (`{"enabled": true}`) the automation.

    Either way its windows start over: a resumed automation counts only the
    events that occur from then on.
    """
    with db.write() as conn:
        item = automations.set_enabled(
            conn, automation_id=automation_id, enabled=body.enabled, now=time.time()
        )
    nudge()
    return item


@router.delete("/{automation_id}", status_code=204, responses=errors(404, 422))
def delete_automation(db: DatabaseDep, automation_id: IdPath) -> Response:
    """Delete the automation with its windows, firings and their actions (pending ones
    are not run)."""
    with db.write() as conn:
        automations.delete(conn, automation_id=automation_id)
    nudge()
    return Response(status_code=204)


@router.get("/{automation_id}/firings", responses=errors(404, 422))
def list_firings(
    db: DatabaseDep, automation_id: IdPath, paging: Annotated[Paging, Query()]
) -> Page[AutomationFiring]:
    """The automation's firings, newest first, each with its actions and their outcome."""
    with db.read() as conn:
        items, total = automations.list_firings(
            conn, automation_id=automation_id, offset=paging.offset, limit=paging.limit
        )
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)
