"""What an action's templates see: the firing's context, plus the objects its event is about.

The automations service stores a context with each firing (`event`, `events`,
`automation`, `firing`, `labels`). Before an action renders its templates,
`template_context` adds the objects named by the triggering event's resource
and related resources, looked up by their ids (`headwater.flow-run.<uuid>`,
`headwater.deployment.<uuid>`, `headwater.flow.<uuid>`,
`headwater.work-pool.<uuid>`), as they are now in the store:

    {{ flow_run.name }} failed: {{ flow_run.state_message }} — {{ flow_run.url }}

An object the event does not name, or that no longer exists, is absent
(`{{ flow_run.name }}` then renders empty; test with `{% if flow_run %}`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from headwater.core.events import RESOURCE_ID, RESOURCE_ROLE
from headwater.schemas.events import Resource
from headwater.store.tables import deployment, flow, flow_run, work_pool

if TYPE_CHECKING:
    from headwater.settings import Settings

#: Resource id prefixes, and the context key of the object each names.
_KINDS = {
    "headwater.flow-run.": "flow_run",
    "headwater.deployment.": "deployment",
    "headwater.flow.": "flow",
    "headwater.work-pool.": "work_pool",
    "headwater.work-queue.": "work_queue",
}


def ui_url(settings: Settings) -> str:
    """The UI's base address for links: `server_ui_url`, else the server's own address."""
    if settings.server_ui_url:
        return settings.server_ui_url.rstrip("/")
    host = settings.server_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{settings.server_port}"


def resource_ids(event: dict[str, Any] | None) -> dict[str, uuid.UUID]:
    """The objects an event (as stored in a firing's context) names, by kind.

    The event's own resource comes first; then related resources, first of
    each kind wins. Example: `{"flow_run": UUID(...), "deployment": UUID(...)}`.
    """
    found: dict[str, uuid.UUID] = {}
    if not event:
        return found
    resources: list[Any] = [event.get("resource") or {}]
    resources.extend(event.get("related") or [])
    for labels in resources:
        if not isinstance(labels, dict):
            continue
        kind, object_id = parse_resource_id(str(labels.get(RESOURCE_ID, "")))
        if kind is not None and object_id is not None and kind not in found:
            found[kind] = object_id
    return found


def related_role(event: dict[str, Any] | None, role: str) -> dict[str, Any] | None:
    """The first related resource of the event with this role, if any."""
    for labels in (event or {}).get("related") or []:
        if isinstance(labels, dict) and labels.get(RESOURCE_ROLE) == role:
            return labels
    return None


def parse_resource_id(resource_id: str) -> tuple[str | None, uuid.UUID | None]:
    """(`flow_run`, UUID) for "headwater.flow-run.<uuid>"; (None, None) for other ids."""
    for prefix, kind in _KINDS.items():
        if resource_id.startswith(prefix):
            try:
                return kind, uuid.UUID(resource_id[len(prefix) :])
            except ValueError:
                return None, None
    return None, None


def _iso(value: float | None) -> str | None:
    if value is None:
        return None
    return dt.datetime.fromtimestamp(value, tz=dt.UTC).isoformat()


def _one(conn: sa.Connection, query: sa.Select[Any]) -> sa.RowMapping | None:
    return conn.execute(query).mappings().first()


def objects(
    conn: sa.Connection, ids: dict[str, uuid.UUID], base_url: str
) -> dict[str, dict[str, Any]]:
    """The context entries (`flow_run`, `flow`, `deployment`, `work_pool`) for these ids.

    A flow run also brings its flow, deployment and work pool when the event
    did not name them.
    """
    ids = dict(ids)
    found: dict[str, dict[str, Any]] = {}
    if "flow_run" in ids:
        row = _one(conn, sa.select(flow_run).where(flow_run.c.id == ids["flow_run"]))
        if row is not None:
            found["flow_run"] = {
                "id": str(row["id"]),
                "name": row["name"],
                "state_type": row["state_type"],
                "state_name": row["state_name"],
                "state_message": row["state_message"],
                "parameters": row["parameters"] or {},
                "tags": row["tags"] or [],
                "start_time": _iso(row["start_time"]),
                "end_time": _iso(row["end_time"]),
                "expected_start_time": _iso(row["expected_start_time"]),
                "url": f"{base_url}/flow-runs/{row['id']}",
            }
            for kind, value in (
                ("flow", row["flow_id"]),
                ("deployment", row["deployment_id"]),
                ("work_pool", row["work_pool_id"]),
            ):
                if value is not None:
                    ids.setdefault(kind, value)
    if "flow" in ids:
        row = _one(conn, sa.select(flow.c.id, flow.c.name).where(flow.c.id == ids["flow"]))
        if row is not None:
            found["flow"] = {"id": str(row["id"]), "name": row["name"]}
    if "deployment" in ids:
        query = sa.select(deployment.c.id, deployment.c.name, deployment.c.flow_id)
        row = _one(conn, query.where(deployment.c.id == ids["deployment"]))
        if row is not None:
            found["deployment"] = {
                "id": str(row["id"]),
                "name": row["name"],
                "url": f"{base_url}/deployments/{row['id']}",
            }
            if "flow" not in found:
                flow_row = _one(
                    conn, sa.select(flow.c.id, flow.c.name).where(flow.c.id == row["flow_id"])
                )
                if flow_row is not None:
                    found["flow"] = {"id": str(flow_row["id"]), "name": flow_row["name"]}
    if "work_pool" in ids:
        row = _one(
            conn,
            sa.select(work_pool.c.id, work_pool.c.name).where(work_pool.c.id == ids["work_pool"]),
        )
        if row is not None:
            found["work_pool"] = {"id": str(row["id"]), "name": row["name"]}
    return found


def template_context(
    conn: sa.Connection, firing_context: dict[str, Any], settings: Settings
) -> dict[str, Any]:
    """The firing's context with `flow_run`, `flow`, `deployment`, `work_pool` added.

    Keys the firing's context already has are kept as they are.
    """
    context = dict(firing_context)
    if not isinstance(context.get("event"), dict):
        context["event"] = {}  # a metric trigger's firing has no event: templates render blanks
    context.setdefault("events", [])
    ids = resource_ids(context.get("event"))
    # `event.resource.id` (and `.name`, `.role`) read the labels, as on `Event`.
    context["event"] = _with_resources(context["event"])
    context["events"] = [_with_resources(e) for e in context["events"] if isinstance(e, dict)]
    for key, value in objects(conn, ids, ui_url(settings)).items():
        context.setdefault(key, value)
    return context


def _with_resources(event: dict[str, Any]) -> dict[str, Any]:
    """`event` with its resource and related resources as `Resource`s (labels by attribute)."""
    if not event:
        return event
    changed = dict(event)
    if isinstance(event.get("resource"), dict):
        changed["resource"] = Resource(event["resource"])
    if isinstance(event.get("related"), list):
        changed["related"] = [Resource(r) if isinstance(r, dict) else r for r in event["related"]]
    return changed
