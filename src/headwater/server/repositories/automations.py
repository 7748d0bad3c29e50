"""Automations: created, listed, read, replaced, paused, resumed and deleted; their firings.

Replacing or pausing an automation deletes its buckets, so that its windows
start over; deleting it deletes its buckets, firings and their actions.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.exceptions import Conflict, InvalidParameters, ObjectNotFound
from headwater.schemas.automations import (
    Automation,
    AutomationCreate,
    AutomationFiring,
    AutomationQuery,
    FiringAction,
)
from headwater.schemas.common import utc
from headwater.server.repositories._common import has_all_tags, page
from headwater.server.repositories.variables import contains
from headwater.store.tables import (
    automation,
    automation_action,
    automation_bucket,
    automation_firing,
    deployment,
    flow,
    work_pool,
    work_queue,
)


def to_response(row: Any) -> Automation:
    return Automation.model_validate(
        {
            "id": row["id"],
            "name": row["name"],
            "description": row["description"],
            "enabled": row["enabled"],
            "trigger": row["trigger"],
            "actions": row["actions"],
            "actions_on_trigger": row["actions_on_trigger"],
            "actions_on_resolve": row["actions_on_resolve"],
            "tags": row["tags"],
            "created": utc(row["created"]),
            "updated": utc(row["updated"]),
        }
    )


def not_found(automation_id: uuid.UUID) -> ObjectNotFound:
    return ObjectNotFound(
        f"No automation with id {automation_id}; list them with `headwater automation ls` "
        "or GET /api/automations."
    )


def not_found_by_name(name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"No automation named {name!r}; create it with POST /api/automations or "
        "`headwater automation apply FILE`."
    )


def exists_error(name: str) -> Conflict:
    return Conflict(
        f"An automation named {name!r} already exists; choose another name, or replace it "
        f"with PUT /api/automations/name/{name} (what `headwater automation apply` does)."
    )


def _row(conn: sa.Connection, condition: sa.ColumnElement[bool], *, lock: bool = False) -> Any:
    query = sa.select(automation).where(condition)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).mappings().one_or_none()


def _values(body: AutomationCreate) -> dict[str, Any]:
    data = body.model_dump(mode="json")
    return {
        "name": body.name,
        "description": body.description,
        "enabled": body.enabled,
        "trigger": data["trigger"],
        "actions": data["actions"],
        "actions_on_trigger": data["actions_on_trigger"],
        "actions_on_resolve": data["actions_on_resolve"],
        "tags": data["tags"],
    }


def check_references(conn: sa.Connection, body: AutomationCreate) -> None:
    """InvalidParameters (422) if an action names an object that does not exist.

    Actions with `source: inferred` take their object from the triggering
    event and are not checked; an automation may name itself (pause itself).
    """
    lists = {
        "actions": body.actions,
        "actions_on_trigger": body.actions_on_trigger,
        "actions_on_resolve": body.actions_on_resolve,
    }
    for field, actions in lists.items():
        for index, action in enumerate(actions):
            problem = _reference_problem(conn, action.model_dump(), body.name)
            if problem:
                raise InvalidParameters(f"{field}[{index}] ({action.type}): {problem}")


def _reference_problem(conn: sa.Connection, action: dict[str, Any], own_name: str) -> str | None:
    if action.get("source") != "selected":
        return None
    if "deployment_id" in action:
        return _deployment_problem(conn, action)
    if "work_queue_id" in action:
        return _work_queue_problem(conn, action)
    if "work_pool_id" in action:
        name = action.get("work_pool")
        if action["work_pool_id"] is None and name is None:
            return "name the work pool (`work_pool`), or set `source: inferred`"
        condition = (
            work_pool.c.id == action["work_pool_id"]
            if action["work_pool_id"] is not None
            else work_pool.c.name == name
        )
        if conn.execute(sa.select(work_pool.c.id).where(condition)).first() is None:
            shown = action["work_pool_id"] or repr(name)
            return f"no work pool {shown}; create it first (`headwater work-pool create`)"
        return None
    if "automation_id" in action:
        name = action.get("automation")
        if action["automation_id"] is None and name is None:
            return (
                "name the automation (`automation` or `automation_id`), or set `source: inferred`"
            )
        if name == own_name:
            return None
        condition = (
            automation.c.id == action["automation_id"]
            if action["automation_id"] is not None
            else automation.c.name == name
        )
        if conn.execute(sa.select(automation.c.id).where(condition)).first() is None:
            shown = action["automation_id"] or repr(name)
            return f"no automation {shown}; create it first, or fix the name"
    return None


def _deployment_problem(conn: sa.Connection, action: dict[str, Any]) -> str | None:
    deployment_id, name = action["deployment_id"], action.get("deployment")
    if deployment_id is None and name is None:
        return (
            'name the deployment (`deployment: "flow/name"` or `deployment_id`), or set '
            "`source: inferred` to use the triggering event's deployment"
        )
    if deployment_id is not None:
        found = conn.execute(sa.select(deployment.c.id).where(deployment.c.id == deployment_id))
        if found.first() is None:
            return f"no deployment with id {deployment_id}; check `headwater deployment ls`"
        return None
    flow_name, slash, deployment_name = str(name).partition("/")
    if not slash or not flow_name or not deployment_name:
        return f'deployment {name!r} must be written "flow/name", e.g. "etl/nightly"'
    found = conn.execute(
        sa.select(deployment.c.id)
        .join(flow, flow.c.id == deployment.c.flow_id)
        .where(flow.c.name == flow_name, deployment.c.name == deployment_name)
    )
    if found.first() is None:
        return (
            f"no deployment {name!r}; deploy it first (`headwater deploy`), or fix the name "
            "(see `headwater deployment ls`)"
        )
    return None


def _work_queue_problem(conn: sa.Connection, action: dict[str, Any]) -> str | None:
    queue_id, pool, name = (
        action["work_queue_id"],
        action.get("work_pool"),
        action.get("work_queue"),
    )
    if queue_id is not None:
        found = conn.execute(sa.select(work_queue.c.id).where(work_queue.c.id == queue_id))
        if found.first() is None:
            return f"no work queue with id {queue_id}"
        return None
    if pool is None or name is None:
        return "name the work queue (`work_pool` and `work_queue`), or set `source: inferred`"
    found = conn.execute(
        sa.select(work_queue.c.id)
        .join(work_pool, work_pool.c.id == work_queue.c.work_pool_id)
        .where(work_pool.c.name == pool, work_queue.c.name == name)
    )
    if found.first() is None:
        return f"no work queue {name!r} in work pool {pool!r}; create it first"
    return None


def create(conn: sa.Connection, *, body: AutomationCreate, now: float) -> Automation:
    """Create the automation; Conflict (409) if the name is taken."""
    if _row(conn, automation.c.name == body.name) is not None:
        raise exists_error(body.name)
    check_references(conn, body)
    values = {"id": uuid7(), **_values(body), "created": now, "updated": now}
    conn.execute(sa.insert(automation).values(values))
    return to_response(values)


def read(conn: sa.Connection, *, automation_id: uuid.UUID) -> Automation:
    row = _row(conn, automation.c.id == automation_id)
    if row is None:
        raise not_found(automation_id)
    return to_response(row)


def read_by_name(conn: sa.Connection, *, name: str) -> Automation:
    row = _row(conn, automation.c.name == name)
    if row is None:
        raise not_found_by_name(name)
    return to_response(row)


def list_automations(
    conn: sa.Connection, *, query: AutomationQuery
) -> tuple[list[Automation], int]:
    """One page of the automations matching `query`, by name, and how many match in all."""
    select = sa.select(automation)
    if query.name_contains:
        select = select.where(contains(conn, automation.c.name, query.name_contains))
    if query.enabled is not None:
        select = select.where(automation.c.enabled == query.enabled)
    select = select.where(*has_all_tags(conn, automation.c.tags, query.tags))
    return page(conn, select, [automation.c.name], query.offset, query.limit, to_response)


def _clear_buckets(conn: sa.Connection, automation_id: uuid.UUID) -> None:
    conn.execute(
        sa.delete(automation_bucket).where(automation_bucket.c.automation_id == automation_id)
    )


def replace(
    conn: sa.Connection, *, automation_id: uuid.UUID, body: AutomationCreate, now: float
) -> Automation:
    """Replace every field of the automation; its windows start over."""
    row = _row(conn, automation.c.id == automation_id, lock=True)
    if row is None:
        raise not_found(automation_id)
    if body.name != row["name"] and _row(conn, automation.c.name == body.name) is not None:
        raise exists_error(body.name)
    check_references(conn, body)
    values = {**_values(body), "updated": _later(now, row["updated"])}
    conn.execute(sa.update(automation).where(automation.c.id == automation_id).values(values))
    _clear_buckets(conn, automation_id)
    return to_response({**row, **values})


def put_by_name(
    conn: sa.Connection, *, name: str, body: AutomationCreate, now: float
) -> tuple[Automation, bool]:
    """Create the automation named `name`, or replace it; whether it was created."""
    if body.name != name:
        raise InvalidParameters(
            f"The body names the automation {body.name!r} but the path says {name!r}; "
            "make them the same (rename with PUT /api/automations/{id})."
        )
    row = _row(conn, automation.c.name == name, lock=True)
    if row is None:
        return create(conn, body=body, now=now), True
    return replace(conn, automation_id=row["id"], body=body, now=now), False


def set_enabled(
    conn: sa.Connection, *, automation_id: uuid.UUID, enabled: bool, now: float
) -> Automation:
    """Pause (False) or resume (True); either way its windows start over."""
    row = _row(conn, automation.c.id == automation_id, lock=True)
    if row is None:
        raise not_found(automation_id)
    values = {"enabled": enabled, "updated": _later(now, row["updated"])}
    conn.execute(sa.update(automation).where(automation.c.id == automation_id).values(values))
    _clear_buckets(conn, automation_id)
    return to_response({**row, **values})


def _later(now: float, updated: float) -> float:
    # `updated` moves forward even when the clock does not, so the service sees the change.
    return max(now, updated + 1e-6)


def delete(conn: sa.Connection, *, automation_id: uuid.UUID) -> None:
    """Delete the automation, its buckets, its firings and their actions (run or not)."""
    result = conn.execute(sa.delete(automation).where(automation.c.id == automation_id))
    if result.rowcount == 0:
        raise not_found(automation_id)
    _clear_buckets(conn, automation_id)
    conn.execute(
        sa.delete(automation_action).where(automation_action.c.automation_id == automation_id)
    )
    conn.execute(
        sa.delete(automation_firing).where(automation_firing.c.automation_id == automation_id)
    )


def list_firings(
    conn: sa.Connection, *, automation_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[AutomationFiring], int]:
    """One page of the automation's firings, newest first, each with its actions."""
    if _row(conn, automation.c.id == automation_id) is None:
        raise not_found(automation_id)
    select = sa.select(automation_firing).where(automation_firing.c.automation_id == automation_id)
    rows, total = page(
        conn,
        select,
        [automation_firing.c.occurred.desc(), automation_firing.c.id.desc()],
        offset,
        limit,
        lambda row: dict(row),
    )
    actions: dict[uuid.UUID, list[FiringAction]] = {row["id"]: [] for row in rows}
    if actions:
        found = conn.execute(
            sa.select(automation_action)
            .where(automation_action.c.firing_id.in_(list(actions)))
            .order_by(automation_action.c.position)
        ).mappings()
        for action in found:
            actions[action["firing_id"]].append(
                FiringAction(
                    id=action["id"],
                    position=action["position"],
                    type=str((action["action"] or {}).get("type", "")),
                    action=action["action"] or {},
                    state=action["state"],
                    attempts=action["attempts"],
                    next_attempt=utc(action["next_attempt"]),
                    result=action["result"],
                    error=action["error"],
                    created=utc(action["created"]),
                    updated=utc(action["updated"]),
                )
            )
    firings = [
        AutomationFiring(
            id=row["id"],
            automation_id=row["automation_id"],
            trigger_id=row["trigger_id"],
            state=row["state"],
            bucket_key=row["bucket_key"],
            triggering_event_id=row["triggering_event_id"],
            occurred=utc(row["occurred"]),
            context=row["context"] or {},
            actions=actions[row["id"]],
        )
        for row in rows
    ]
    return firings, total
