"""`emit_event`: record an event from any code, as `prefect.events.emit_event` does.

    from headwater.events import emit_event

    emit_event(
        "customer.signup",
        resource={"headwater.resource.id": "customer.42", "plan": "pro"},
        payload={"email": "a@example.com"},
    )

The event joins the run records in the process's recorder, so emitting costs
microseconds and never waits for the network: it is written with the next
flush (embedded store, or `POST /api/records` to a server) and is durable when
the flow run ends or the process exits, like every run record. Inside a flow
or task run the run's resources are added to `related` (flow-run, flow,
deployment if any, task-run), so automations can match on them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from headwater.core.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from headwater.schemas.events import Event

__all__ = ["emit_event"]


def emit_event(
    event: str,
    resource: Mapping[str, str],
    related: Iterable[Mapping[str, str]] | None = None,
    payload: Mapping[str, Any] | None = None,
    occurred: dt.datetime | None = None,
    id: uuid.UUID | None = None,
    follows: Event | uuid.UUID | None = None,
) -> Event | None:
    """Record an event about `resource`; returns the `Event` as it will be stored.

    Args:
        event: what happened, e.g. `"customer.signup"`.
        resource: the resource's labels; `headwater.resource.id` is required
            (`prefect.resource.*` keys are accepted too).
        related: other resources, each with a `headwater.resource.role` label.
        payload: any JSON object (at most 256 KiB).
        occurred: when it happened (default: now; naive means UTC).
        id: the event's id (default: a new uuid7); an id already stored is
            not written twice, so a retried emit is safe.
        follows: the event (or its id) this one follows.

    Raises:
        ValueError: an argument is invalid; the message names it.

    Example:
        >>> emit_event("order.shipped", resource={"headwater.resource.id": "order.7"})
    """
    values: dict[str, Any] = {
        "event": event,
        "resource": dict(resource) if isinstance(resource, Mapping) else resource,
        "related": _with_run_resources(resource, related),
        "payload": {} if payload is None else payload,
    }
    if occurred is not None:
        values["occurred"] = occurred
    if id is not None:
        values["id"] = id
    if follows is not None:
        values["follows"] = follows.id if isinstance(follows, Event) else follows
    try:
        model = Event.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'event'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ValueError(f"Invalid event {event!r}: {problems}") from None
    from headwater.engine.recorder import get_recorder

    get_recorder().event(model.to_row())
    return model


def _with_run_resources(resource: Any, related: Iterable[Mapping[str, str]] | None) -> list[Any]:
    """`related` plus the resources of the flow or task run executing now, if any."""
    result: list[Any] = [dict(r) if isinstance(r, Mapping) else r for r in related or ()]
    from headwater.context import flow_run_context, task_run_context

    task_context = task_run_context.get()
    flow_context = flow_run_context.get()
    if flow_context is None and task_context is not None:
        flow_context = task_context.flow_run_context
    if task_context is None and flow_context is None:
        return result
    present = {r.get(RESOURCE_ID) for r in result if isinstance(r, Mapping)}
    if isinstance(resource, Mapping):
        present.add(resource.get(RESOURCE_ID))

    def add(kind: str, hex_id: str, name: str | None, role: str) -> None:
        resource_id = f"headwater.{kind}.{uuid.UUID(hex=hex_id)}"
        if resource_id in present:
            return
        present.add(resource_id)
        labels = {RESOURCE_ID: resource_id, RESOURCE_ROLE: role}
        if name:
            labels[RESOURCE_NAME] = name
        result.append(labels)

    if task_context is not None:
        task_run = task_context.task_run
        add("task-run", task_run.hex_id, task_run.name, "task-run")
    if flow_context is not None:
        flow_run = flow_context.flow_run
        add("flow-run", flow_run.hex_id, flow_run.name, "flow-run")
        add("flow", flow_run.flow_hex_id, flow_run.flow_name, "flow")
        if flow_run.deployment_hex:
            add("deployment", flow_run.deployment_hex, None, "deployment")
    return result
