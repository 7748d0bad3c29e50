"""The trigger engine: pure logic deciding when automations fire, over a small bucket store.

The engine never reads the clock nor the database: the caller passes `now`,
the events (oldest first) and a `BucketStore` (the service's is SQL, inside
the transaction that also takes the events from the inbox; tests use
`MemoryBuckets`). What an automation's triggers remember between events
lives in buckets, one per (automation, trigger node, `for_each` key).

Trigger nodes are named by their path in the trigger tree: the root is "0",
the children of a compound or sequence root are "0.0", "0.1", ... Only the
root's firings are the automation's; a child's firing feeds its parent.

    engine = Engine([spec])
    firings = engine.evaluate(store, events, now)     # for each batch of events
    firings += engine.tick(store, now, measure)       # every second or so
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol

from headwater.core.events import any_name_matches, label_value, related_matches, resource_matches
from headwater.schemas.automations import (
    CompoundTrigger,
    EventTrigger,
    MetricTrigger,
    Posture,
    SequenceTrigger,
    TriggerTypes,
)

logger = logging.getLogger(__name__)

#: A bucket with no time limit ends here (9999-12-31, the store's largest timestamp).
NEVER = 253_402_300_799.0
#: The most events a bucket (and so a firing's context) keeps.
MAX_BUCKET_EVENTS = 100
ROOT = "0"

FiringState = Literal["TRIGGERED", "RESOLVED"]
#: `measure(trigger, now)`: the metric's current value, None when no run qualifies.
Measure = Callable[[MetricTrigger, float], float | None]


@dataclasses.dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as the engine sees it (`occurred` in epoch seconds)."""

    id: uuid.UUID
    occurred: float
    event: str
    resource: Mapping[str, str]
    related: Sequence[Mapping[str, str]] = ()
    payload: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    follows: uuid.UUID | None = None

    @classmethod
    def from_row(cls, row: Any) -> EventRecord:
        """From a row of the `event` table."""
        return cls(
            id=row["id"],
            occurred=row["occurred"],
            event=row["event"],
            resource=row["resource"] or {},
            related=row["related"] or [],
            payload=row["payload"] or {},
            follows=row.get("follows"),
        )

    def to_json(self) -> dict[str, Any]:
        """The event as templates and the firing's context see it (ISO `occurred`)."""
        return {
            "id": str(self.id),
            "occurred": iso(self.occurred),
            "event": self.event,
            "resource": dict(self.resource),
            "related": [dict(r) for r in self.related],
            "payload": dict(self.payload),
            "follows": None if self.follows is None else str(self.follows),
        }


def iso(timestamp: float) -> str:
    """Epoch seconds as an ISO 8601 UTC string."""
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat()


@dataclasses.dataclass(slots=True)
class Bucket:
    """What one trigger node remembers for one `for_each` key, from `start` until `end`."""

    automation_id: uuid.UUID
    trigger_id: str
    key: str
    start: float
    end: float
    count: int = 0
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


class BucketStore(Protocol):
    """Where buckets live; the engine reads and writes them through this only."""

    def get(self, automation_id: uuid.UUID, trigger_id: str, key: str) -> Bucket | None: ...

    def put(self, bucket: Bucket) -> None: ...

    def delete(self, bucket: Bucket) -> None: ...

    def due(self, now: float) -> list[Bucket]:
        """Buckets whose `end` is at or before `now`."""
        ...


class MemoryBuckets:
    """A `BucketStore` in a dict (tests, and a model of the SQL one)."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[uuid.UUID, str, str], Bucket] = {}

    def get(self, automation_id: uuid.UUID, trigger_id: str, key: str) -> Bucket | None:
        bucket = self.buckets.get((automation_id, trigger_id, key))
        return None if bucket is None else dataclasses.replace(bucket, data=_copy(bucket.data))

    def put(self, bucket: Bucket) -> None:
        stored = dataclasses.replace(bucket, data=_copy(bucket.data))
        self.buckets[(bucket.automation_id, bucket.trigger_id, bucket.key)] = stored

    def delete(self, bucket: Bucket) -> None:
        self.buckets.pop((bucket.automation_id, bucket.trigger_id, bucket.key), None)

    def due(self, now: float) -> list[Bucket]:
        return [
            dataclasses.replace(b, data=_copy(b.data))
            for b in self.buckets.values()
            if b.end <= now
        ]


def _copy(data: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(data))
    return copied


@dataclasses.dataclass(frozen=True, slots=True)
class AutomationSpec:
    """What the engine needs of an automation: its id, trigger, and when it last changed.

    Events that occurred before `since` (the automation's creation or last
    update) never count.
    """

    id: uuid.UUID
    trigger: TriggerTypes
    since: float


@dataclasses.dataclass(frozen=True, slots=True)
class Firing:
    """An automation's trigger fired (TRIGGERED) or stopped holding (RESOLVED)."""

    automation_id: uuid.UUID
    trigger_id: str
    state: FiringState
    bucket_key: str
    occurred: float
    #: The triggering event as JSON (None: no event caused it, e.g. a metric).
    event: dict[str, Any] | None
    events: list[dict[str, Any]]
    labels: dict[str, str | None]


@dataclasses.dataclass(frozen=True, slots=True)
class _Fire:
    """A node's firing on its way up the tree."""

    state: FiringState
    key: str
    event: dict[str, Any] | None
    events: list[dict[str, Any]]
    labels: dict[str, str | None]


def walk(trigger: TriggerTypes, path: str = ROOT) -> Iterable[tuple[str, TriggerTypes]]:
    """Every node of a trigger tree with its id, parents first."""
    yield path, trigger
    if isinstance(trigger, CompoundTrigger | SequenceTrigger):
        for index, child in enumerate(trigger.triggers):
            yield from walk(child, f"{path}.{index}")


def event_key(trigger: EventTrigger, event: EventRecord) -> tuple[str, dict[str, str | None]]:
    """The bucket key of an event for this trigger, and the `for_each` labels' values."""
    labels = {
        label: label_value(label, event.resource, event.related)
        for label in sorted(trigger.for_each)
    }
    return json.dumps(list(labels.values())), labels


def matches_resource(trigger: EventTrigger | MetricTrigger, event: EventRecord) -> bool:
    """Whether the event's resource and related resources fit `match` and `match_related`."""
    return resource_matches(trigger.match, event.resource) and related_matches(
        trigger.match_related, event.related
    )


class _Compiled:
    def __init__(self, spec: AutomationSpec) -> None:
        self.spec = spec
        self.nodes: dict[str, TriggerTypes] = dict(walk(spec.trigger))
        self.event_leaves = [
            (path, node) for path, node in self.nodes.items() if isinstance(node, EventTrigger)
        ]
        self.metric_leaves = [
            (path, node) for path, node in self.nodes.items() if isinstance(node, MetricTrigger)
        ]


class Engine:
    """Evaluates the triggers of a set of (enabled) automations."""

    def __init__(self, automations: Iterable[AutomationSpec]) -> None:
        self.automations = {spec.id: _Compiled(spec) for spec in automations}

    # -- events -----------------------------------------------------------------------------

    def evaluate(
        self, store: BucketStore, events: Iterable[EventRecord], now: float
    ) -> list[Firing]:
        """Apply events (oldest first) to every trigger; the firings they caused."""
        firings: list[Firing] = []
        for event in events:
            for compiled in self.automations.values():
                if event.occurred < compiled.spec.since:
                    continue
                for path, trigger in compiled.event_leaves:
                    try:
                        fires = self._event(compiled, path, trigger, store, event, now)
                    except Exception:  # a broken automation must not stop the others
                        logger.exception(
                            "Automation %s: trigger %s failed on event %s",
                            compiled.spec.id,
                            path,
                            event.id,
                        )
                        continue
                    for fire in fires:
                        firings.extend(self._propagate(compiled, path, fire, store, now))
        return firings

    def _event(
        self,
        compiled: _Compiled,
        path: str,
        trigger: EventTrigger,
        store: BucketStore,
        event: EventRecord,
        now: float,
    ) -> list[_Fire]:
        is_after = bool(trigger.after) and any_name_matches(trigger.after, event.event)
        is_expected = any_name_matches(trigger.expect, event.event)
        if not (is_after or is_expected) or not matches_resource(trigger, event):
            return []
        key, labels = event_key(trigger, event)
        automation_id = compiled.spec.id
        bucket = _get(store, compiled.spec, path, key)
        fires: list[_Fire] = []
        proactive = trigger.posture == Posture.Proactive
        within = trigger.within or math.inf
        if bucket is not None and event.occurred >= bucket.end:
            # The window ended before this event: settle it first.
            if proactive:
                fire = self._settle(trigger, store, bucket, labels, event.occurred)
                if fire is not None:
                    fires.append(fire)
                bucket = _get(store, compiled.spec, path, key)
                if bucket is not None and event.occurred >= bucket.end:
                    store.delete(bucket)
                    bucket = None
            else:
                store.delete(bucket)
                bucket = None
        if trigger.after:
            if is_after and bucket is None:
                bucket = Bucket(
                    automation_id, path, key, event.occurred, _end(event.occurred, within)
                )
                bucket.data = {"event": event.to_json(), "events": [event.to_json()]}
                if not is_expected:
                    store.put(bucket)
                    return fires
            elif bucket is None or not is_expected:
                return fires  # nothing opened the bucket yet; or a repeated `after` event
        elif bucket is None:
            start = event.occurred
            if proactive and not trigger.for_each:
                start = compiled.spec.since  # the one bucket opens with the automation
            bucket = Bucket(automation_id, path, key, start, _end(start, within))
            bucket.data = {"events": []}
        assert bucket is not None
        bucket.count += 1
        bucket.data["event"] = bucket.data.get("event") if trigger.after else event.to_json()
        events = bucket.data.setdefault("events", [])
        if len(events) < MAX_BUCKET_EVENTS:
            events.append(event.to_json())
        if bucket.count >= trigger.threshold:
            if not proactive:
                store.delete(bucket)
                fires.append(_Fire("TRIGGERED", key, event.to_json(), list(events), labels))
                return fires
            if trigger.after:
                store.delete(bucket)  # the expected events came: this window cannot fire
                return fires
        store.put(bucket)
        return fires

    # -- the clock --------------------------------------------------------------------------

    def tick(self, store: BucketStore, now: float, measure: Measure | None = None) -> list[Firing]:
        """Settle windows that ended by `now` (proactive triggers) and, given `measure`,
        evaluate metric triggers; the firings that caused."""
        firings: list[Firing] = []
        for compiled in self.automations.values():
            for path, trigger in compiled.event_leaves:
                if trigger.posture != Posture.Proactive or trigger.after or trigger.for_each:
                    continue
                # The automation's own window: open it if nothing did yet.
                if _get(store, compiled.spec, path, json.dumps([])) is None:
                    start = compiled.spec.since
                    store.put(
                        Bucket(
                            compiled.spec.id,
                            path,
                            json.dumps([]),
                            start,
                            _end(start, trigger.within),
                            data={"events": []},
                        )
                    )
        for bucket in store.due(now):
            compiled_or_none = self.automations.get(bucket.automation_id)
            if compiled_or_none is None:
                continue  # a paused or deleted automation: the API cleans its buckets
            compiled = compiled_or_none
            node = compiled.nodes.get(bucket.trigger_id)
            if bucket.start < compiled.spec.since:
                store.delete(bucket)  # left from before the automation changed
                continue
            if not isinstance(node, EventTrigger):
                continue
            try:
                if node.posture != Posture.Proactive:
                    store.delete(bucket)  # a reactive window that ended short of its threshold
                    continue
                labels = dict(zip(sorted(node.for_each), json.loads(bucket.key), strict=False))
                fire = self._settle(node, store, bucket, labels, now)
                if fire is not None:
                    firings.extend(self._propagate(compiled, bucket.trigger_id, fire, store, now))
            except Exception:
                logger.exception(
                    "Automation %s: trigger %s failed to settle", bucket.automation_id, node
                )
        if measure is not None:
            for compiled in self.automations.values():
                for path, metric in compiled.metric_leaves:
                    try:
                        fire = self._metric(compiled, path, metric, store, now, measure)
                    except Exception:
                        logger.exception(
                            "Automation %s: metric trigger %s failed", compiled.spec.id, path
                        )
                        continue
                    if fire is not None:
                        firings.extend(self._propagate(compiled, path, fire, store, now))
        return firings

    def _settle(
        self,
        trigger: EventTrigger,
        store: BucketStore,
        bucket: Bucket,
        labels: Mapping[str, str | None],
        now: float,
    ) -> _Fire | None:
        """End a proactive window: fire if too few events came; then start over or close."""
        fire = None
        if bucket.count < trigger.threshold:
            events = list(bucket.data.get("events", []))
            fire = _Fire("TRIGGERED", bucket.key, bucket.data.get("event"), events, dict(labels))
        if trigger.after:
            store.delete(bucket)  # closed until the next `after` event
            return fire
        start = bucket.end
        if now >= start + trigger.within:
            start = now  # the service was away for whole windows: fire once, not for each
        store.put(
            Bucket(
                bucket.automation_id,
                bucket.trigger_id,
                bucket.key,
                start,
                _end(start, trigger.within),
                data={"event": bucket.data.get("event"), "events": []},
            )
        )
        return fire

    def _metric(
        self,
        compiled: _Compiled,
        path: str,
        trigger: MetricTrigger,
        store: BucketStore,
        now: float,
        measure: Measure,
    ) -> _Fire | None:
        value = measure(trigger, now)
        query = trigger.metric
        holds = value is not None and _compare(value, query.operator, query.threshold)
        key = json.dumps([])
        bucket = _get(store, compiled.spec, path, key) or Bucket(
            compiled.spec.id,
            path,
            key,
            max(now, compiled.spec.since),
            NEVER,
            data={"since": None, "firing": False},
        )
        data = bucket.data
        fire = None
        metric = {"name": query.name.value, "value": value, "threshold": query.threshold}
        if holds:
            if data.get("since") is None:
                data["since"] = now
            if not data.get("firing") and now - data["since"] >= query.firing_for:
                data["firing"] = True
                fire = _Fire("TRIGGERED", key, None, [], {})
        else:
            data["since"] = None
            if data.get("firing"):
                data["firing"] = False
                fire = _Fire("RESOLVED", key, None, [], {})
        data["metric"] = metric
        bucket.data = data
        store.put(bucket)
        return fire

    # -- compound and sequence --------------------------------------------------------------

    def _propagate(
        self, compiled: _Compiled, path: str, fire: _Fire, store: BucketStore, now: float
    ) -> list[Firing]:
        """Hand a node's firing to its parent, up to the root (the automation's firing)."""
        while path != ROOT:
            if fire.state != "TRIGGERED":
                return []  # only the automation itself resolves
            parent_path, _, index = path.rpartition(".")
            parent = compiled.nodes[parent_path]
            if isinstance(parent, CompoundTrigger):
                parent_fire = self._compound(
                    compiled, parent_path, parent, int(index), fire, store, now
                )
            elif isinstance(parent, SequenceTrigger):
                parent_fire = self._sequence(
                    compiled, parent_path, parent, int(index), fire, store, now
                )
            else:  # pragma: no cover - only compound and sequence triggers have children
                return []
            if parent_fire is None:
                return []
            path, fire = parent_path, parent_fire
        return [
            Firing(
                automation_id=compiled.spec.id,
                trigger_id=ROOT,
                state=fire.state,
                bucket_key=fire.key,
                occurred=now,
                event=fire.event,
                events=fire.events[:MAX_BUCKET_EVENTS],
                labels=fire.labels,
            )
        ]

    def _compound(
        self,
        compiled: _Compiled,
        path: str,
        trigger: CompoundTrigger,
        index: int,
        fire: _Fire,
        store: BucketStore,
        now: float,
    ) -> _Fire | None:
        key = json.dumps([])
        bucket = _get(store, compiled.spec, path, key) or Bucket(
            compiled.spec.id, path, key, max(now, compiled.spec.since), NEVER, data={"fired": {}}
        )
        fired: dict[str, Any] = bucket.data.setdefault("fired", {})
        if trigger.within is not None:
            horizon = now - trigger.within
            fired = {k: v for k, v in fired.items() if v["occurred"] >= horizon}
        fired[str(index)] = _entry(fire, now)
        require = trigger.require
        needed = 1 if require == "any" else len(trigger.triggers) if require == "all" else require
        if len(fired) >= needed:
            store.delete(bucket)
            return _combined(fired.values(), key)
        bucket.data["fired"] = fired
        bucket.count = len(fired)
        store.put(bucket)
        return None

    def _sequence(
        self,
        compiled: _Compiled,
        path: str,
        trigger: SequenceTrigger,
        index: int,
        fire: _Fire,
        store: BucketStore,
        now: float,
    ) -> _Fire | None:
        key = json.dumps([])
        bucket = _get(store, compiled.spec, path, key) or Bucket(
            compiled.spec.id, path, key, max(now, compiled.spec.since), NEVER, data={"fired": []}
        )
        fired: list[dict[str, Any]] = bucket.data.setdefault("fired", [])
        if fired and trigger.within is not None and now - fired[0]["occurred"] > trigger.within:
            fired = []  # the sequence took too long: start over
        if index == len(fired):
            fired.append(_entry(fire, now))
        elif index == 0:
            fired = [_entry(fire, now)]  # a new first step starts the sequence over
        else:
            return None  # out of order: ignored
        if len(fired) == len(trigger.triggers):
            store.delete(bucket)
            return _combined(fired, key)
        bucket.data["fired"] = fired
        bucket.count = len(fired)
        store.put(bucket)
        return None


def _get(store: BucketStore, spec: AutomationSpec, trigger_id: str, key: str) -> Bucket | None:
    """The bucket, unless it was opened before the automation last changed: such a bucket
    was written by a batch that overlapped the change, and starts over."""
    bucket = store.get(spec.id, trigger_id, key)
    if bucket is not None and bucket.start < spec.since:
        store.delete(bucket)
        return None
    return bucket


def _entry(fire: _Fire, now: float) -> dict[str, Any]:
    return {
        "occurred": now,
        "event": fire.event,
        "events": fire.events[:MAX_BUCKET_EVENTS],
        "labels": fire.labels,
    }


def _combined(entries: Iterable[dict[str, Any]], key: str) -> _Fire:
    """The firing of a compound or sequence: the last child's event, every child's events."""
    ordered = sorted(entries, key=lambda e: e["occurred"])
    events: list[dict[str, Any]] = []
    labels: dict[str, str | None] = {}
    for entry in ordered:
        events.extend(entry["events"])
        labels.update(entry["labels"])
    event = next((e["event"] for e in reversed(ordered) if e["event"] is not None), None)
    return _Fire("TRIGGERED", key, event, events[-MAX_BUCKET_EVENTS:], labels)


def _end(start: float, within: float) -> float:
    if not within or math.isinf(within):
        return NEVER
    return min(start + within, NEVER)


def _compare(value: float, operator: str, threshold: float) -> bool:
    if operator == "<":
        return value < threshold
    if operator == "<=":
        return value <= threshold
    if operator == ">":
        return value > threshold
    return value >= threshold
