"""The trigger engine's semantics, with a fake clock and buckets in memory."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import TypeAdapter

from headwater.core.ids import uuid7
from headwater.schemas.automations import MetricTrigger, TriggerTypes
from headwater.server.automations.triggers import (
    AutomationSpec,
    Engine,
    EventRecord,
    Firing,
    MemoryBuckets,
    iso,
)

T0 = 1_700_000_000.0
_triggers: TypeAdapter[TriggerTypes] = TypeAdapter(TriggerTypes)


def event(
    name: str,
    at: float,
    resource: str = "thing.1",
    related: list[dict[str, str]] | None = None,
    **labels: str,
) -> EventRecord:
    return EventRecord(
        id=uuid7(),
        occurred=T0 + at,
        event=name,
        resource={"headwater.resource.id": resource, **labels},
        related=related or [],
    )


class Harness:
    """One automation over memory buckets; `send` events and `tick` the clock."""

    def __init__(self, trigger: dict[str, Any], since: float = 0.0) -> None:
        self.id = uuid.uuid4()
        self.engine = Engine(
            [AutomationSpec(self.id, _triggers.validate_python(trigger), T0 + since)]
        )
        self.store = MemoryBuckets()
        self.firings: list[Firing] = []

    def send(self, *events: EventRecord, now: float | None = None) -> list[Firing]:
        at = max(e.occurred for e in events) if now is None else T0 + now
        fired = self.engine.evaluate(self.store, events, at)
        self.firings += fired
        return fired

    def tick(self, at: float, measure: Any = None) -> list[Firing]:
        fired = self.engine.tick(self.store, T0 + at, measure)
        self.firings += fired
        return fired


def test_reactive_single_event_fires_each_time_with_the_event_in_context() -> None:
    h = Harness({"expect": ["headwater.flow-run.Failed"]})
    first = h.send(event("headwater.flow-run.Failed", 1, resource="headwater.flow-run.a"))
    assert len(first) == 1
    assert first[0].state == "TRIGGERED"
    assert first[0].event is not None
    assert first[0].event["resource"]["headwater.resource.id"] == "headwater.flow-run.a"
    assert h.send(event("headwater.flow-run.Completed", 2)) == []
    assert len(h.send(event("headwater.flow-run.Failed", 3))) == 1


def test_threshold_within_fixed_window() -> None:
    h = Harness({"expect": ["customer.signup"], "threshold": 3, "within": 60})
    h.send(event("customer.signup", 0), event("customer.signup", 10))
    # the window [0, 60) ends before the third: it starts over at 70
    assert h.send(event("customer.signup", 70)) == []
    assert h.send(event("customer.signup", 80)) == []
    fired = h.send(event("customer.signup", 90))
    assert len(fired) == 1
    assert len(fired[0].events) == 3
    assert fired[0].events[0]["occurred"] == iso(T0 + 70)  # the window started over at 70


def test_fifty_events_threshold_ten_fire_five_times() -> None:
    h = Harness({"expect": ["tick"], "threshold": 10, "within": 3600})
    h.send(*[event("tick", i * 0.01) for i in range(50)])
    assert len(h.firings) == 5


def test_for_each_keeps_a_bucket_per_label_value() -> None:
    h = Harness({"expect": ["order.*"], "for_each": ["headwater.resource.id"], "threshold": 2})
    h.send(
        event("order.placed", 1, resource="order.a"), event("order.placed", 2, resource="order.b")
    )
    assert h.firings == []
    fired = h.send(event("order.paid", 3, resource="order.a"))
    assert len(fired) == 1
    assert fired[0].labels == {"headwater.resource.id": "order.a"}


def test_wildcards_and_negation_in_expect_match_and_related() -> None:
    related = [
        {
            "headwater.resource.id": "headwater.flow.1",
            "headwater.resource.role": "flow",
            "headwater.resource.name": "etl",
        }
    ]
    h = Harness(
        {
            "expect": ["headwater.flow-run.*", "!headwater.flow-run.Completed"],
            "match": {"headwater.resource.id": "headwater.flow-run.*", "env": "!dev"},
            "match_related": {"headwater.resource.role": "flow", "headwater.resource.name": "etl"},
        }
    )
    assert h.send(event("headwater.flow-run.Completed", 1, "headwater.flow-run.x", related)) == []
    assert h.send(event("headwater.flow-run.Failed", 2, "headwater.flow-run.x", [])) == []
    assert h.send(event("headwater.flow-run.Failed", 3, "other.x", related)) == []
    assert (
        h.send(event("headwater.flow-run.Failed", 4, "headwater.flow-run.x", related, env="dev"))
        == []
    )
    assert len(h.send(event("headwater.flow-run.Failed", 5, "headwater.flow-run.x", related))) == 1


def test_events_before_the_automation_was_created_are_ignored() -> None:
    h = Harness({"expect": ["x"]}, since=100)
    assert h.send(event("x", 50), now=101) == []
    assert len(h.send(event("x", 100))) == 1


def test_reactive_after_opens_the_bucket() -> None:
    h = Harness(
        {
            "after": ["job.started"],
            "expect": ["job.failed"],
            "for_each": ["headwater.resource.id"],
            "within": 60,
        }
    )
    assert h.send(event("job.failed", 1, "job.a")) == []  # not started
    h.send(event("job.started", 2, "job.a"))
    fired = h.send(event("job.failed", 3, "job.a"))
    assert len(fired) == 1
    assert h.send(event("job.failed", 4, "job.a")) == []  # closed until the next start
    h.send(event("job.started", 10, "job.a"))
    assert h.send(event("job.failed", 100, "job.a")) == []  # the window ended


def test_proactive_after_fires_once_when_the_expected_event_does_not_come() -> None:
    h = Harness(
        {
            "posture": "Proactive",
            "after": ["headwater.flow-run.Running"],
            "expect": ["headwater.flow-run.Completed"],
            "for_each": ["headwater.resource.id"],
            "within": 3600,
        }
    )
    h.send(event("headwater.flow-run.Running", 0, "run.late"))
    h.send(event("headwater.flow-run.Running", 1, "run.ok"))
    h.send(event("headwater.flow-run.Completed", 100, "run.ok"))
    assert h.tick(3599) == []
    fired = h.tick(3601)
    assert len(fired) == 1
    assert fired[0].labels == {"headwater.resource.id": "run.late"}
    assert fired[0].event is not None and fired[0].event["event"] == "headwater.flow-run.Running"
    assert h.tick(10_000) == []  # closed until the next Running event


def test_proactive_without_after_opens_with_the_automation_and_starts_over() -> None:
    h = Harness({"posture": "Proactive", "expect": ["heartbeat"], "within": 10})
    h.tick(1)
    h.send(event("heartbeat", 5))
    assert h.tick(10) == []  # the window had its heartbeat
    assert len(h.tick(20)) == 1  # none in [10, 20)
    h.send(event("heartbeat", 25))
    assert h.tick(30) == []


def test_proactive_event_after_the_window_settles_it_first() -> None:
    h = Harness({"posture": "Proactive", "expect": ["heartbeat"], "within": 10})
    h.tick(0)
    fired = h.send(event("heartbeat", 15))  # the window [0, 10) had nothing
    assert len(fired) == 1
    assert h.tick(19) == []  # the heartbeat at 15 counts in [10, 20)


def test_compound_all_within() -> None:
    h = Harness(
        {
            "type": "compound",
            "require": "all",
            "within": 3600,
            "triggers": [
                {
                    "expect": ["headwater.flow-run.Completed"],
                    "match_related": {"headwater.resource.name": "upstream"},
                },
                {"expect": ["files.landed"]},
            ],
        }
    )
    upstream = [
        {
            "headwater.resource.id": "headwater.flow.1",
            "headwater.resource.role": "flow",
            "headwater.resource.name": "upstream",
        }
    ]
    assert h.send(event("files.landed", 1)) == []
    fired = h.send(event("headwater.flow-run.Completed", 2, "headwater.flow-run.u", upstream))
    assert len(fired) == 1
    assert fired[0].event is not None and fired[0].event["event"] == "headwater.flow-run.Completed"
    assert {e["event"] for e in fired[0].events} == {"files.landed", "headwater.flow-run.Completed"}
    assert h.send(event("files.landed", 3)) == []  # starts over


def test_compound_child_older_than_within_is_forgotten() -> None:
    h = Harness(
        {
            "type": "compound",
            "require": 2,
            "within": 10,
            "triggers": [{"expect": ["a"]}, {"expect": ["b"]}, {"expect": ["c"]}],
        }
    )
    h.send(event("a", 0), now=0)
    assert h.send(event("b", 20), now=20) == []
    assert len(h.send(event("c", 25), now=25)) == 1


def test_compound_any() -> None:
    h = Harness(
        {"type": "compound", "require": "any", "triggers": [{"expect": ["a"]}, {"expect": ["b"]}]}
    )
    assert len(h.send(event("b", 1))) == 1


def test_sequence_in_order_within() -> None:
    h = Harness(
        {
            "type": "sequence",
            "within": 60,
            "triggers": [{"expect": ["a"]}, {"expect": ["b"]}, {"expect": ["c"]}],
        }
    )
    assert h.send(event("b", 1), event("a", 2), event("c", 3)) == []  # c before b
    assert len(h.send(event("b", 4), event("c", 5))) == 1
    h.send(event("a", 10), event("b", 20))
    assert h.send(event("c", 100), now=100) == []  # too late: more than 60 s after a


def test_metric_fires_after_firing_for_then_resolves() -> None:
    h = Harness(
        {
            "type": "metric",
            "match_related": {"headwater.resource.name": "etl"},
            "metric": {
                "name": "successes",
                "operator": "<",
                "threshold": 0.9,
                "range": 300,
                "firing_for": 30,
            },
        }
    )
    values = {"v": 0.5}

    def measure(trigger: MetricTrigger, now: float) -> float | None:
        assert trigger.metric.name == "successes"
        return values["v"]

    assert h.tick(0, measure) == []
    assert h.tick(20, measure) == []
    fired = h.tick(31, measure)
    assert [f.state for f in fired] == ["TRIGGERED"]
    assert h.tick(40, measure) == []  # still firing: not again
    values["v"] = 1.0
    assert [f.state for f in h.tick(50, measure)] == ["RESOLVED"]
    assert h.tick(60, measure) == []


def test_metric_without_runs_does_not_fire() -> None:
    h = Harness(
        {
            "type": "metric",
            "metric": {"name": "duration", "operator": ">", "threshold": 1, "firing_for": 0},
        }
    )
    assert h.tick(0, lambda trigger, now: None) == []
    assert len(h.tick(1, lambda trigger, now: 5.0)) == 1
