"""The automations service's reads and writes: inbox, buckets, firings and metrics.

Everything here takes a connection and never commits: the service applies a
batch of events in one transaction (`take_inbox` ... `SqlBuckets.flush` ...
`record_firing`), so a batch counts once or not at all.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.events import (
    RESOURCE_ID,
    RESOURCE_NAME,
    RESOURCE_ROLE,
    related_matches,
    resource_matches,
)
from headwater.core.ids import uuid7
from headwater.core.states import TERMINAL_TYPES
from headwater.schemas.automations import MetricName, MetricTrigger, TriggerTypes
from headwater.server.automations.triggers import (
    AutomationSpec,
    Bucket,
    EventRecord,
    Firing,
    iso,
)
from headwater.server.repositories._common import upsertable_insert
from headwater.store.tables import (
    automation,
    automation_action,
    automation_bucket,
    automation_firing,
    deployment,
    event,
    event_inbox,
    flow,
    flow_run,
)

#: The most flow runs a metric reads at once (the newest ones).
MAX_METRIC_RUNS = 10_000


class InboxTaken(Exception):
    """Another process took some of these inbox entries first: roll back, read again."""


@dataclasses.dataclass(frozen=True, slots=True)
class LoadedAutomation:
    """An enabled automation as the service keeps it between batches."""

    spec: AutomationSpec
    name: str
    description: str | None
    actions: list[dict[str, Any]]
    actions_on_trigger: list[dict[str, Any]]
    actions_on_resolve: list[dict[str, Any]]


def fingerprint(conn: sa.Connection) -> tuple[int, float | None]:
    """How many automations there are and when one last changed: reload when this moves."""
    row = conn.execute(sa.select(sa.func.count(), sa.func.max(automation.c.updated))).one()
    latest = row[1]
    if latest is not None and not isinstance(latest, float | int):
        latest = latest.timestamp()  # max() over timestamptz loses the column's type
    return int(row[0]), None if latest is None else float(latest)


def load_enabled(conn: sa.Connection) -> tuple[list[LoadedAutomation], list[str]]:
    """The enabled automations, and a message for each one that cannot be read."""
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[TriggerTypes] = TypeAdapter(TriggerTypes)
    loaded, broken = [], []
    rows = conn.execute(sa.select(automation).where(automation.c.enabled.is_(True))).mappings()
    for row in rows:
        try:
            trigger = adapter.validate_python(row["trigger"])
        except ValidationError as exc:
            broken.append(f"automation {row['name']!r} ({row['id']}) has a bad trigger: {exc}")
            continue
        loaded.append(
            LoadedAutomation(
                spec=AutomationSpec(id=row["id"], trigger=trigger, since=row["updated"]),
                name=row["name"],
                description=row["description"],
                actions=list(row["actions"] or []),
                actions_on_trigger=list(row["actions_on_trigger"] or []),
                actions_on_resolve=list(row["actions_on_resolve"] or []),
            )
        )
    return loaded, broken


def has_inbox(conn: sa.Connection) -> bool:
    return conn.execute(sa.select(event_inbox.c.event_id).limit(1)).first() is not None


def take_inbox(conn: sa.Connection, limit: int) -> list[EventRecord]:
    """The oldest `limit` unevaluated events, deleted from the inbox (InboxTaken if another
    process deleted some of them first)."""
    ids = list(
        conn.execute(
            sa.select(event_inbox.c.event_id)
            .order_by(event_inbox.c.occurred, event_inbox.c.event_id)
            .limit(limit)
        ).scalars()
    )
    if not ids:
        return []
    deleted = conn.execute(sa.delete(event_inbox).where(event_inbox.c.event_id.in_(ids)))
    if deleted.rowcount != len(ids):
        raise InboxTaken(f"{len(ids) - deleted.rowcount} inbox entries were taken by another")
    rows = conn.execute(sa.select(event).where(event.c.id.in_(ids))).mappings()
    events = [EventRecord.from_row(row) for row in rows]
    events.sort(key=lambda e: (e.occurred, e.id))
    return events


class SqlBuckets:
    """A `BucketStore` over `automation_bucket`: read once, written back by `flush()`."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self._cache: dict[tuple[uuid.UUID, str, str], Bucket | None] = {}
        self._dirty: set[tuple[uuid.UUID, str, str]] = set()

    def get(self, automation_id: uuid.UUID, trigger_id: str, key: str) -> Bucket | None:
        index = (automation_id, trigger_id, key)
        if index not in self._cache:
            row = (
                self.conn.execute(
                    sa.select(automation_bucket).where(
                        automation_bucket.c.automation_id == automation_id,
                        automation_bucket.c.trigger_id == trigger_id,
                        automation_bucket.c.bucket_key == key,
                    )
                )
                .mappings()
                .one_or_none()
            )
            self._cache[index] = None if row is None else _bucket(row)
        bucket = self._cache[index]
        return None if bucket is None else dataclasses.replace(bucket, data=dict(bucket.data))

    def put(self, bucket: Bucket) -> None:
        index = (bucket.automation_id, bucket.trigger_id, bucket.key)
        self._cache[index] = dataclasses.replace(bucket, data=dict(bucket.data))
        self._dirty.add(index)

    def delete(self, bucket: Bucket) -> None:
        index = (bucket.automation_id, bucket.trigger_id, bucket.key)
        self._cache[index] = None
        self._dirty.add(index)

    def due(self, now: float) -> list[Bucket]:
        rows = self.conn.execute(
            sa.select(automation_bucket).where(automation_bucket.c.end <= now)
        ).mappings()
        found: dict[tuple[uuid.UUID, str, str], Bucket] = {}
        for row in rows:
            bucket = _bucket(row)
            found[(bucket.automation_id, bucket.trigger_id, bucket.key)] = bucket
        for index, cached in self._cache.items():
            if cached is None or cached.end > now:
                found.pop(index, None)
            else:
                found[index] = cached
        return [dataclasses.replace(b, data=dict(b.data)) for b in found.values()]

    def flush(self, now: float) -> None:
        """Write every changed bucket back."""
        for index in sorted(self._dirty, key=str):
            automation_id, trigger_id, key = index
            bucket = self._cache[index]
            where = (
                automation_bucket.c.automation_id == automation_id,
                automation_bucket.c.trigger_id == trigger_id,
                automation_bucket.c.bucket_key == key,
            )
            if bucket is None:
                self.conn.execute(sa.delete(automation_bucket).where(*where))
                continue
            values = {
                "start": bucket.start,
                "end": bucket.end,
                "count": bucket.count,
                "data": bucket.data,
                "updated": now,
            }
            insert = upsertable_insert(self.conn, automation_bucket).values(
                id=uuid7(),
                automation_id=automation_id,
                trigger_id=trigger_id,
                bucket_key=key,
                **values,
            )
            self.conn.execute(
                insert.on_conflict_do_update(
                    index_elements=["automation_id", "trigger_id", "bucket_key"], set_=values
                )
            )
        self._dirty.clear()


def _bucket(row: Any) -> Bucket:
    return Bucket(
        automation_id=row["automation_id"],
        trigger_id=row["trigger_id"],
        key=row["bucket_key"],
        start=row["start"],
        end=row["end"],
        count=row["count"],
        data=dict(row["data"] or {}),
    )


def record_firing(
    conn: sa.Connection, firing: Firing, owner: LoadedAutomation, now: float
) -> uuid.UUID:
    """Write the firing, one PENDING action row per action, and the automation's event."""
    from headwater.schemas.events import Event
    from headwater.server.repositories.events import insert_events

    firing_id = uuid7()
    automation_id = owner.spec.id
    triggering = firing.event["id"] if firing.event else None
    context = {
        "event": firing.event,
        "events": firing.events,
        "automation": {
            "id": str(automation_id),
            "name": owner.name,
            "description": owner.description,
        },
        "firing": {
            "id": str(firing_id),
            "occurred": iso(firing.occurred),
            "trigger_id": firing.trigger_id,
            "state": firing.state,
        },
        "labels": firing.labels,
    }
    conn.execute(
        sa.insert(automation_firing).values(
            id=firing_id,
            automation_id=automation_id,
            trigger_id=firing.trigger_id,
            state=firing.state,
            bucket_key=firing.bucket_key,
            triggering_event_id=None if triggering is None else uuid.UUID(triggering),
            context=context,
            occurred=firing.occurred,
        )
    )
    if firing.state == "TRIGGERED":
        actions = owner.actions + owner.actions_on_trigger
    else:
        actions = owner.actions_on_resolve
    if actions:
        conn.execute(
            sa.insert(automation_action),
            [
                {
                    "id": uuid7(),
                    "firing_id": firing_id,
                    "automation_id": automation_id,
                    "position": position,
                    "action": action,
                    "state": "PENDING",
                    "attempts": 0,
                    "next_attempt": now,
                    "result": None,
                    "error": None,
                    "created": now,
                    "updated": now,
                }
                for position, action in enumerate(actions)
            ],
        )
    notice = Event.model_validate(
        {
            "occurred": firing.occurred,
            "event": f"headwater.automation.{firing.state.lower()}",
            "resource": {
                RESOURCE_ID: f"headwater.automation.{automation_id}",
                RESOURCE_NAME: owner.name,
            },
            "payload": {
                "firing_id": str(firing_id),
                "triggering_event_id": triggering,
                "trigger_id": firing.trigger_id,
                "labels": firing.labels,
            },
            "follows": triggering,
        }
    )
    insert_events(conn, [notice.to_row(received=now)])
    return firing_id


def measure(conn: sa.Connection, trigger: MetricTrigger, now: float) -> float | None:
    """The metric of the flow runs `trigger` selects over its last `range` seconds (None:
    no run to measure). Runs carry the labels of their state-change events' resources."""
    query = trigger.metric
    since = now - query.range
    select = (
        sa.select(
            flow_run.c.id,
            flow_run.c.name,
            flow_run.c.state_type,
            flow_run.c.state_name,
            flow_run.c.tags,
            flow_run.c.start_time,
            flow_run.c.end_time,
            flow_run.c.expected_start_time,
            flow_run.c.flow_id,
            flow_run.c.deployment_id,
            flow.c.name.label("flow_name"),
            deployment.c.name.label("deployment_name"),
        )
        .join(flow, flow.c.id == flow_run.c.flow_id)
        .outerjoin(deployment, deployment.c.id == flow_run.c.deployment_id)
    )
    if query.name == MetricName.lateness:
        select = select.where(
            flow_run.c.start_time >= since, flow_run.c.expected_start_time.is_not(None)
        ).order_by(flow_run.c.start_time.desc())
    else:
        select = select.where(
            flow_run.c.state_type.in_([t.value for t in TERMINAL_TYPES]),
            flow_run.c.end_time >= since,
        ).order_by(flow_run.c.end_time.desc())
    rows = conn.execute(select.limit(MAX_METRIC_RUNS)).mappings().all()
    values: list[float] = []
    for row in rows:
        resource, related = run_labels(row)
        if not (
            resource_matches(trigger.match, resource)
            and related_matches(trigger.match_related, related)
        ):
            continue
        if query.name == MetricName.successes:
            values.append(1.0 if row["state_type"] == "COMPLETED" else 0.0)
        elif query.name == MetricName.duration:
            if row["start_time"] is not None and row["end_time"] is not None:
                values.append(row["end_time"] - row["start_time"])
        else:
            values.append(row["start_time"] - row["expected_start_time"])
    return sum(values) / len(values) if values else None


def run_labels(row: Any) -> tuple[dict[str, str], list[dict[str, str]]]:
    """A flow run's resource labels and related resources, as its events carry them."""
    resource = {
        RESOURCE_ID: f"headwater.flow-run.{row['id']}",
        RESOURCE_NAME: row["name"],
        "headwater.state-type": row["state_type"],
        "headwater.state-name": row["state_name"],
    }
    related: list[dict[str, str]] = [
        {
            RESOURCE_ID: f"headwater.flow.{row['flow_id']}",
            RESOURCE_ROLE: "flow",
            RESOURCE_NAME: row["flow_name"],
        }
    ]
    if row["deployment_id"] is not None:
        related.append(
            {
                RESOURCE_ID: f"headwater.deployment.{row['deployment_id']}",
                RESOURCE_ROLE: "deployment",
                RESOURCE_NAME: row["deployment_name"] or "",
            }
        )
    tags: Sequence[str] = row["tags"] or []
    related.extend(
        {RESOURCE_ID: f"headwater.tag.{tag}", RESOURCE_ROLE: "tag", RESOURCE_NAME: tag}
        for tag in tags
    )
    return resource, related
