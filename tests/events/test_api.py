"""`emit_event` and the events API: send, filter, count, read, validation."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from headwater import flow, task
from headwater.engine.recorder import get_recorder
from headwater.events import emit_event

from .conftest import TestClient


def _event(name: str, resource_id: str, occurred: float, **extra: Any) -> dict[str, Any]:
    return {
        "event": name,
        "resource": {"headwater.resource.id": resource_id},
        "occurred": occurred,
        **extra,
    }


def test_emit_event_inside_a_flow_relates_the_run_and_is_queryable(
    embedded: str, client: TestClient
) -> None:
    @task
    def step() -> None:
        emit_event("order.shipped", resource={"headwater.resource.id": "order.7"})

    @flow(name="shipping")
    def ship() -> None:
        emit_event(
            "order.packed",
            resource={"headwater.resource.id": "order.7", "carrier": "ups"},
            payload={"weight": 3},
        )
        step()

    ship()
    outside = emit_event("order.audited", resource={"headwater.resource.id": "order.7"})
    get_recorder().flush()

    found = client.post("/events/filter", json={"resource_id": ["order.*"]}).json()
    by_name = {e["event"]: e for e in found["events"]}
    assert set(by_name) == {"order.packed", "order.shipped", "order.audited"}
    packed = by_name["order.packed"]
    roles = {r["headwater.resource.role"]: r for r in packed["related"]}
    assert roles["flow"]["headwater.resource.name"] == "shipping"
    assert roles["flow-run"]["headwater.resource.id"].startswith("headwater.flow-run.")
    assert packed["payload"] == {"weight": 3}
    assert packed["resource"]["carrier"] == "ups"
    shipped_roles = {r["headwater.resource.role"] for r in by_name["order.shipped"]["related"]}
    assert shipped_roles == {"task-run", "flow-run", "flow"}
    assert by_name["order.audited"]["related"] == []
    assert outside is not None and str(outside.id) == by_name["order.audited"]["id"]
    # The run's own lifecycle events relate to the same flow run.
    run_id = roles["flow-run"]["headwater.resource.id"]
    completed = client.post(
        "/events/filter", json={"resource_id": [run_id], "event": ["headwater.flow-run.Completed"]}
    ).json()
    assert completed["total"] == 1


def test_emit_event_refuses_bad_input_naming_the_problem() -> None:
    with pytest.raises(ValueError, match=r"headwater\.resource\.id"):
        emit_event("x", resource={"name": "no id"})
    with pytest.raises(ValueError, match="related"):
        emit_event("x", resource={"headwater.resource.id": "a"}, related=[{"a": "b"}])


def test_posted_events_are_stored_once_and_filtered(client: TestClient) -> None:
    now = time.time()
    events = [
        _event("customer.signup", "customer.1", now - 30, id=str(uuid.uuid4())),
        _event("customer.signup", "customer.2", now - 20, id=str(uuid.uuid4())),
        _event("customer.churn", "customer.1", now - 10, id=str(uuid.uuid4())),
        _event(
            "invoice.paid",
            "invoice.9",
            now - 5,
            id=str(uuid.uuid4()),
            related=[{"headwater.resource.id": "customer.2", "headwater.resource.role": "payer"}],
        ),
    ]
    first = client.post("/events", json=events)
    again = client.post("/events", json=events)
    assert first.json() == {"received": 4, "new": 4}
    assert again.json() == {"received": 4, "new": 0}

    def names(**query: Any) -> list[str]:
        answer = client.post("/events/filter", json=query)
        assert answer.status_code == 200, answer.text
        return [
            e["resource"]["headwater.resource.id"] + ":" + e["event"]
            for e in answer.json()["events"]
        ]

    assert names() == [
        "invoice.9:invoice.paid",
        "customer.1:customer.churn",
        "customer.2:customer.signup",
        "customer.1:customer.signup",
    ]
    assert names(event=["customer.*"], order="asc")[0] == "customer.1:customer.signup"
    assert names(event=["customer.churn", "invoice.paid"]) == [
        "invoice.9:invoice.paid",
        "customer.1:customer.churn",
    ]
    assert names(resource_id=["customer.1"], since=now - 15) == ["customer.1:customer.churn"]
    assert names(related_id=["customer.2"]) == ["invoice.9:invoice.paid"]
    assert names(until=now - 25) == ["customer.1:customer.signup"]
    assert names(resource={"headwater.resource.id": "customer.*"}, event=["*"])[0] == (
        "customer.1:customer.churn"
    )
    page = client.post("/events/filter", json={"limit": 3}).json()
    assert (page["total"], len(page["events"]), page["next_offset"]) == (4, 3, 3)
    last = client.post("/events/filter", json={"limit": 3, "offset": 3}).json()
    assert last["next_offset"] is None and len(last["events"]) == 1

    one = client.get(f"/events/{events[0]['id']}")
    assert one.status_code == 200 and one.json()["event"] == "customer.signup"
    assert one.json()["received"] is not None
    missing = client.get(f"/events/{uuid.uuid4()}")
    assert missing.status_code == 404


def test_counts_by_event_resource_and_time(client: TestClient) -> None:
    base = 1_700_000_000.0 - 1_700_000_000.0 % 3600
    client.post(
        "/events",
        json=[
            _event("a", "r.1", base + 10),
            _event("a", "r.2", base + 20),
            _event("b", "r.1", base + 3600 + 5),
        ],
    )
    by_event = client.post("/events/count-by/event").json()
    assert [(c["value"], c["count"]) for c in by_event] == [("a", 2), ("b", 1)]
    by_resource = client.post("/events/count-by/resource").json()
    assert [(c["value"], c["count"]) for c in by_resource] == [("r.1", 2), ("r.2", 1)]
    by_time = client.post(
        "/events/count-by/time",
        json={"filter": {"since": base, "until": base + 3 * 3600 - 1}, "unit": "hour"},
    ).json()
    assert [c["count"] for c in by_time] == [2, 1, 0]
    assert by_time[1]["start_time"].startswith("2023-11-14T")
    by_day = client.post("/events/count-by/day").json()
    assert sum(c["count"] for c in by_day) == 3


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/events/filter", {"limit": 0}, "limit"),
        ("/events/filter", {"event": ["a*b"]}, "event"),
        ("/events/filter", {"since": 10, "until": 5}, "until"),
        ("/events/filter", {"nope": 1}, "nope"),
        ("/events/count-by/time", {"unit": "fortnight"}, "unit"),
        (
            "/events/count-by/time",
            {"filter": {"since": 0, "until": 1e9}, "unit": "second"},
            "interval",
        ),
        ("/events", [{"event": "x", "resource": {"a": "b"}}], "resource"),
        ("/events", {"event": "x"}, "body"),
    ],
)
def test_bad_requests_get_a_422_naming_the_field(
    client: TestClient, path: str, body: Any, field: str
) -> None:
    answer = client.post(path, json=body)
    assert answer.status_code == 422, answer.text
    assert field in answer.text


def test_too_many_events_in_one_request_are_refused(client: TestClient) -> None:
    events = [_event("x", f"r.{i}", 1_700_000_000.0) for i in range(1001)]
    answer = client.post("/events", json=events)
    assert answer.status_code == 422
    assert "1000" in answer.text
    assert client.post("/events/count-by/countable").status_code == 422
