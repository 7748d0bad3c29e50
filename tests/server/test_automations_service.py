"""The automations service with its real thread on each database: events in, firings out,
exactly once (two services at once, a restart mid-stream, a crash before the commit)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.schemas.automations import AutomationCreate
from headwater.schemas.events import Event
from headwater.server.automations import state
from headwater.server.automations.service import AutomationsService, nudge
from headwater.server.database import Database
from headwater.server.repositories import automations
from headwater.server.repositories.events import insert_events
from headwater.store.tables import automation_action, automation_firing, event, event_inbox


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.ensure_schema()
    yield database
    database.dispose()


@pytest.fixture
def start(db: Database) -> Iterator[Callable[..., AutomationsService]]:
    services: list[AutomationsService] = []

    def make(**options: Any) -> AutomationsService:
        options.setdefault("poll_interval", 0.05)
        options.setdefault("tick_interval", 0.1)
        options.setdefault("standby_interval", 0.1)
        options.setdefault("run_actions", False)
        service = AutomationsService(db.url, **options)
        service.start()
        services.append(service)
        return service

    yield make
    for service in services:
        service.stop()


def create(db: Database, trigger: dict[str, Any], name: str = "auto") -> uuid.UUID:
    body = AutomationCreate.model_validate(
        {"name": name, "trigger": trigger, "actions": [{"type": "do-nothing"}]}
    )
    with db.write() as conn:
        return automations.create(conn, body=body, now=time.time()).id


def emit(db: Database, name: str, count: int = 1, resource: str = "thing.1") -> None:
    rows = [
        Event.model_validate(
            {"event": name, "resource": {"headwater.resource.id": resource}}
        ).to_row()
        for _ in range(count)
    ]
    with db.write() as conn:
        insert_events(conn, rows)
    nudge()


def firings(db: Database, automation_id: uuid.UUID) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(automation_firing)
            .where(automation_firing.c.automation_id == automation_id)
            .order_by(automation_firing.c.occurred)
        ).mappings()
        return [dict(row) for row in rows]


def count(db: Database, table: sa.Table) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def settle(db: Database, automation_id: uuid.UUID, expected: int, timeout: float = 5.0) -> int:
    """Wait until `expected` firings are recorded and the inbox is empty; then a little more,
    to see that no extra firing follows. The number of firings."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(firings(db, automation_id)) >= expected and count(db, event_inbox) == 0:
            break
        time.sleep(0.02)
    time.sleep(0.3)
    return len(firings(db, automation_id))


def test_an_event_fires_once_with_one_pending_action_and_a_triggered_event(
    db: Database, start: Callable[..., AutomationsService]
) -> None:
    automation_id = create(db, {"expect": ["headwater.flow-run.Failed"]})
    start()
    emit(db, "headwater.flow-run.Completed")
    emit(db, "headwater.flow-run.Failed", resource="headwater.flow-run.x")
    assert settle(db, automation_id, 1) == 1
    [firing] = firings(db, automation_id)
    context = firing["context"]
    assert context["event"]["event"] == "headwater.flow-run.Failed"
    assert context["event"]["resource"]["headwater.resource.id"] == "headwater.flow-run.x"
    assert context["automation"] == {"id": str(automation_id), "name": "auto", "description": None}
    assert context["firing"]["id"] == str(firing["id"])
    assert str(firing["triggering_event_id"]) == context["event"]["id"]
    with db.read() as conn:
        actions = conn.execute(sa.select(automation_action)).mappings().all()
        notices = (
            conn.execute(sa.select(event).where(event.c.event == "headwater.automation.triggered"))
            .mappings()
            .all()
        )
    assert [(a["state"], a["attempts"], a["position"], a["action"]) for a in actions] == [
        ("PENDING", 0, 0, {"type": "do-nothing"})
    ]
    assert len(notices) == 1
    assert notices[0]["resource_id"] == f"headwater.automation.{automation_id}"
    assert notices[0]["payload"]["firing_id"] == str(firing["id"])


def test_events_before_the_automation_do_not_fire(
    db: Database, start: Callable[..., AutomationsService]
) -> None:
    emit(db, "x")
    time.sleep(0.01)
    automation_id = create(db, {"expect": ["x"]})
    start()
    assert settle(db, automation_id, 0) == 0
    emit(db, "x")
    assert settle(db, automation_id, 1) == 1


def test_fifty_events_threshold_ten_fire_five_times(
    db: Database, start: Callable[..., AutomationsService]
) -> None:
    automation_id = create(db, {"expect": ["customer.signup"], "threshold": 10, "within": 60})
    start()
    for _ in range(5):
        emit(db, "customer.signup", 10)
    assert settle(db, automation_id, 5) == 5
    assert count(db, automation_action) == 5


def test_two_services_at_once_fire_exactly_once_per_situation(
    db: Database, start: Callable[..., AutomationsService]
) -> None:
    automation_id = create(db, {"expect": ["tick"], "threshold": 3})
    start()
    start()
    for _ in range(30):
        emit(db, "tick")
    assert settle(db, automation_id, 10) == 10


def test_stopping_mid_stream_and_starting_another_misses_and_doubles_nothing(
    db: Database, start: Callable[..., AutomationsService]
) -> None:
    automation_id = create(db, {"expect": ["tick"], "threshold": 2})
    first = start()
    standby = start()
    for index in range(40):
        emit(db, "tick")
        if index == 15:
            first.stop()  # the standby takes over
    assert settle(db, automation_id, 20) == 20
    standby.stop()
    emit(db, "tick", 4)  # written while no service runs: still in the inbox
    start()
    assert settle(db, automation_id, 22) == 22


def test_a_crash_before_the_commit_leaves_the_events_to_evaluate_again(
    db: Database, start: Callable[..., AutomationsService], monkeypatch: pytest.MonkeyPatch
) -> None:
    automation_id = create(db, {"expect": ["x"]})
    real = state.record_firing
    calls = {"n": 0}

    def crash_once(*args: Any, **kwargs: Any) -> uuid.UUID:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the process died here")
        return real(*args, **kwargs)

    monkeypatch.setattr(state, "record_firing", crash_once)
    start()
    emit(db, "x")
    assert settle(db, automation_id, 1) == 1
    assert calls["n"] == 2
    assert count(db, automation_action) == 1


def test_a_paused_automation_does_not_fire_and_resumes_with_new_events_only(
    db: Database, start: Callable[..., AutomationsService]
) -> None:
    automation_id = create(db, {"expect": ["x"], "threshold": 2})
    start()
    emit(db, "x")
    with db.write() as conn:
        automations.set_enabled(conn, automation_id=automation_id, enabled=False, now=time.time())
    emit(db, "x", 3)
    assert settle(db, automation_id, 0) == 0
    with db.write() as conn:
        automations.set_enabled(conn, automation_id=automation_id, enabled=True, now=time.time())
    emit(db, "x")
    assert settle(db, automation_id, 0) == 0  # the window started over: one event so far
    emit(db, "x")
    assert settle(db, automation_id, 1) == 1


def test_a_proactive_trigger_fires_once_after_its_window(
    db: Database, start: Callable[..., AutomationsService]
) -> None:
    automation_id = create(
        db,
        {
            "posture": "Proactive",
            "after": ["job.started"],
            "expect": ["job.finished"],
            "for_each": ["headwater.resource.id"],
            "within": 1,
        },
    )
    start()
    emit(db, "job.started", resource="job.late")
    emit(db, "job.started", resource="job.ok")
    emit(db, "job.finished", resource="job.ok")
    assert settle(db, automation_id, 1, timeout=5) == 1
    time.sleep(1.2)  # no second firing: the window closed
    [firing] = firings(db, automation_id)
    assert firing["context"]["labels"] == {"headwater.resource.id": "job.late"}
    assert firing["context"]["event"]["event"] == "job.started"


def test_actions_run_after_the_commit(
    db: Database, start: Callable[..., AutomationsService]
) -> None:
    automation_id = create(db, {"expect": ["x"]})
    start(run_actions=True)
    emit(db, "x")
    assert settle(db, automation_id, 1) == 1
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with db.read() as conn:
            states = list(conn.execute(sa.select(automation_action.c.state)).scalars())
        if states == ["COMPLETED"]:
            break
        time.sleep(0.05)
    assert states == ["COMPLETED"]


def test_metrics_are_computed_from_the_matching_flow_runs(db: Database) -> None:
    from pydantic import TypeAdapter

    from headwater.core.ids import uuid7
    from headwater.schemas.automations import MetricTrigger
    from headwater.store.tables import flow, flow_run

    now = 1_700_000_000.0
    flows = {"etl": uuid7(), "other": uuid7()}
    runs = [
        # flow, state, expected start, start, end, tags
        ("etl", "COMPLETED", now - 100, now - 90, now - 60, ["prod"]),  # 30 s, 10 s late
        ("etl", "FAILED", now - 100, now - 70, now - 60, ["prod"]),  # 10 s, 30 s late
        ("etl", "COMPLETED", now - 5000, now - 5000, now - 4000, ["prod"]),  # out of range
        ("other", "FAILED", now - 100, now - 100, now - 10, []),
        ("etl", "RUNNING", now - 50, now - 50, None, ["dev"]),  # 0 s late, not terminal
    ]
    with db.write() as conn:
        for name, flow_id in flows.items():
            conn.execute(sa.insert(flow).values(id=flow_id, name=name, created=now))
        for name, state_type, expected, started, ended, tags in runs:
            conn.execute(
                sa.insert(flow_run).values(
                    id=uuid7(),
                    flow_id=flows[name],
                    name=f"{name}-run",
                    state_type=state_type,
                    state_name=state_type.title(),
                    state_timestamp=now,
                    parameters={},
                    tags=tags,
                    run_count=1,
                    expected_start_time=expected,
                    start_time=started,
                    end_time=ended,
                    created=expected,
                    updated=now,
                )
            )
    adapter: TypeAdapter[MetricTrigger] = TypeAdapter(MetricTrigger)

    def value(name: str, **match: Any) -> float | None:
        trigger = adapter.validate_python(
            {"metric": {"name": name, "operator": ">", "threshold": 0, "range": 300}, **match}
        )
        with db.read() as conn:
            return state.measure(conn, trigger, now)

    etl = {"match_related": {"headwater.resource.role": "flow", "headwater.resource.name": "etl"}}
    assert value("duration", **etl) == 20.0
    assert value("successes", **etl) == 0.5
    assert value("lateness", **etl) == pytest.approx(40 / 3)
    assert value("successes") == pytest.approx(1 / 3)
    assert value("lateness", match_related={"headwater.resource.name": "dev"}) == 0.0
    assert value("duration", match={"headwater.resource.name": "nope"}) is None
