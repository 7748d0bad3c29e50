"""The storage contract every writer meets, on every database it supports."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.core.ids import uuid7_hex
from headwater.core.records import Batch, Row
from headwater.core.states import StateType
from headwater.store import tables

from .helpers import T0, Rows, Store


def _batch(rows: Rows, *, tasks: int = 1) -> tuple[Batch, str]:
    flow = rows.flow()
    run = rows.flow_run(flow[0])
    batch = Batch(flows={flow[0]: flow}, flow_runs={run[0]: run})
    for _ in range(tasks):
        task = rows.task_run(run[0])
        batch.task_runs[task[0]] = task
        batch.states.append(rows.state(run[0], task[0]))
    batch.states.append(rows.state(run[0]))
    batch.logs.append(rows.log(run[0]))
    return batch, run[0]


def test_written_rows_read_back_equal_through_sqlalchemy(store: Store, rows: Rows) -> None:
    flow = rows.flow("etl")
    run = rows.flow_run(
        flow[0],
        parent_flow_run_id=uuid7_hex(),
        root_flow_run_id=uuid7_hex(),
        parent_task_run_id=uuid.uuid4().hex,
        deployment_id=None,
        state_message="ünïcode ✓",
        end_time=None,
    )
    task = rows.task_run(run[0], task_inputs=None, tags=["a", "b"])
    orphan_task = rows.task_run(None, task_inputs={}, end_time=T0 + 9.5)
    state = rows.state(run[0], task[0])
    log = rows.log(run[0], message="line\nwith 'quotes' and \"more\"")
    store.writer.write(
        Batch(
            flows={flow[0]: flow},
            flow_runs={run[0]: run},
            task_runs={task[0]: task, orphan_task[0]: orphan_task},
            states=[state],
            logs=[log],
        )
    )

    assert store.rows("flow") == [rows.dict("flow", flow)]
    assert store.rows("flow_run") == [rows.dict("flow_run", run)]
    assert store.rows("task_run") == sorted(
        [rows.dict("task_run", task), rows.dict("task_run", orphan_task)], key=lambda r: r["id"]
    )
    assert store.rows("state") == [rows.dict("state", state)]
    assert store.rows("log") == [rows.dict("log", log)]


def test_none_in_a_json_column_is_sql_null(store: Store, rows: Rows) -> None:
    batch, run_id = _batch(rows)
    task = rows.task_run(run_id, task_inputs=None)
    batch.task_runs[task[0]] = task
    store.writer.write(batch)

    with store.engine.connect() as conn:
        nulls = conn.execute(
            sa.select(sa.func.count()).where(tables.task_run.c.task_inputs.is_(None))
        ).scalar_one()
    assert nulls == 1


def test_a_value_json_cannot_represent_is_stored_as_its_repr(store: Store, rows: Rows) -> None:
    flow = rows.flow()
    run = rows.flow_run(flow[0], parameters={"when": {1, 2}})
    store.writer.write(Batch(flows={flow[0]: flow}, flow_runs={run[0]: run}))
    assert store.get("flow_run", run[0])["parameters"] == {"when": "{1, 2}"}


def test_second_upsert_of_a_run_replaces_its_state_but_keeps_created(
    store: Store, rows: Rows
) -> None:
    flow = rows.flow()
    run = rows.flow_run(flow[0], state_type=StateType.PENDING, state_name="Pending", created=T0)
    task = rows.task_run(run[0], created=T0 + 2)
    store.writer.write(
        Batch(flows={flow[0]: flow}, flow_runs={run[0]: run}, task_runs={task[0]: task})
    )

    later_run = rows.tuple(
        "flow_run",
        rows.dict("flow_run", run)
        | {
            "state_type": StateType.COMPLETED,
            "state_name": "Completed",
            "state_message": "All good",
            "state_timestamp": T0 + 10,
            "end_time": T0 + 10,
            "updated": T0 + 10,
            "run_count": 2,
            "created": T0 + 99,  # a later row never moves `created`
        },
    )
    later_task = rows.tuple(
        "task_run",
        rows.dict("task_run", task)
        | {
            "state_type": StateType.FAILED,
            "state_name": "Failed",
            "created": T0 + 99,
            "run_count": 3,
        },
    )
    store.writer.write(Batch(flow_runs={run[0]: later_run}, task_runs={task[0]: later_task}))

    stored_run = store.get("flow_run", run[0])
    assert stored_run == rows.dict("flow_run", later_run) | {"created": T0}
    stored_task = store.get("task_run", task[0])
    assert stored_task == rows.dict("task_run", later_task) | {"created": T0 + 2}


def _listen(store: Store, trigger: dict[str, Any] | None = None, *, enabled: bool = True) -> None:
    """Store an automation: events its trigger may count go to the inbox."""
    import time

    store.writer.open()  # creates the schema
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(tables.automation).values(
                id=uuid.uuid4(),
                name=f"listener-{uuid.uuid4().hex[:6]}",
                enabled=enabled,
                trigger=trigger or {"type": "event"},  # no `expect`: every event
                actions=[{"type": "do-nothing"}],
                actions_on_trigger=[],
                actions_on_resolve=[],
                tags=[],
                created=time.time(),
                updated=time.time(),
            )
        )


def test_writing_the_same_batch_twice_writes_each_record_once(store: Store, rows: Rows) -> None:
    _listen(store)
    batch, _ = _batch(rows, tasks=3)
    store.writer.write(batch)
    store.writer.write(batch)

    for table, expected in [
        ("flow", 1),
        ("flow_run", 1),
        ("task_run", 3),
        ("state", 4),
        ("log", 1),
        ("event", 4),
    ]:
        assert len(store.rows(table)) == expected, table
    assert _inbox_count(store) == 4


def _inbox_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(tables.event_inbox)).scalar_one()
        )


def _events(store: Store) -> dict[str, dict[str, Any]]:
    """Stored events by event name."""
    return {row["event"]: row for row in store.rows("event")}


def test_each_state_row_becomes_a_lifecycle_event_with_labels_and_related(
    store: Store, rows: Rows
) -> None:
    _listen(store)
    flow = rows.flow("etl")
    run = rows.flow_run(flow[0], name="brave-otter", tags=["nightly"])
    task = rows.task_run(run[0], name="load-1", tags=["db"])
    task_state = (uuid7_hex(), run[0], task[0], StateType.COMPLETED, "Cached", "hit", T0 + 5)
    run_state = (uuid7_hex(), run[0], None, StateType.FAILED, "Failed", "boom", T0 + 6)
    store.writer.write(
        Batch(
            flows={flow[0]: flow},
            flow_runs={run[0]: run},
            task_runs={task[0]: task},
            states=[task_state, run_state],
        )
    )

    events = _events(store)
    assert set(events) == {"headwater.task-run.Cached", "headwater.flow-run.Failed"}
    run_event = events["headwater.flow-run.Failed"]
    assert run_event["id"] == run_state[0]
    assert run_event["occurred"] == T0 + 6
    run_resource = f"headwater.flow-run.{uuid.UUID(run[0])}"
    assert run_event["resource_id"] == run_resource
    assert run_event["resource"] == {
        "headwater.resource.id": run_resource,
        "headwater.resource.name": "brave-otter",
        "headwater.state-type": "FAILED",
        "headwater.state-name": "Failed",
        "headwater.state-message": "boom",
    }
    flow_resource = {
        "headwater.resource.id": f"headwater.flow.{uuid.UUID(flow[0])}",
        "headwater.resource.name": "etl",
        "headwater.resource.role": "flow",
    }
    tag = {"headwater.resource.id": "headwater.tag.nightly", "headwater.resource.role": "tag"}
    assert run_event["related"] == [flow_resource, tag]
    assert run_event["payload"]["validated_state"]["type"] == "FAILED"
    assert run_event["payload"]["validated_state"]["message"] == "boom"

    task_event = events["headwater.task-run.Cached"]
    assert task_event["resource"]["headwater.resource.name"] == "load-1"
    assert task_event["resource"]["headwater.state-type"] == "COMPLETED"
    assert task_event["related"] == [
        {
            "headwater.resource.id": run_resource,
            "headwater.resource.name": "brave-otter",
            "headwater.resource.role": "flow-run",
        },
        flow_resource,
        {"headwater.resource.id": "headwater.tag.db", "headwater.resource.role": "tag"},
    ]
    assert _inbox_count(store) == 2


def test_events_of_a_batch_are_written_once_with_their_inbox_entries(
    store: Store, rows: Rows
) -> None:
    event_id = uuid7_hex()
    event = (
        event_id,
        T0,
        "customer.signup",
        "customer.42",
        {"headwater.resource.id": "customer.42"},
        [],
        {"plan": "pro"},
        None,
        None,
    )
    _listen(store)
    store.writer.write(Batch(events=[event, event]))
    store.writer.write(Batch(events=[event]))

    [stored] = store.rows("event")
    assert stored["id"] == event_id
    assert stored["payload"] == {"plan": "pro"}
    assert stored["received"] is not None
    assert _inbox_count(store) == 1


def test_a_flow_written_again_by_another_batch_is_not_duplicated(store: Store, rows: Rows) -> None:
    flow = rows.flow("shared")
    first = rows.flow_run(flow[0])
    second = rows.flow_run(flow[0])
    store.writer.write(Batch(flows={flow[0]: flow}, flow_runs={first[0]: first}))
    store.writer.write(Batch(flows={flow[0]: flow}, flow_runs={second[0]: second}))
    assert [f["name"] for f in store.rows("flow")] == ["shared"]
    assert len(store.rows("flow_run")) == 2


@pytest.mark.parametrize("broken", ["flow_run", "log"])
def test_a_batch_that_fails_midway_writes_nothing(store: Store, rows: Rows, broken: str) -> None:
    batch, run_id = _batch(rows, tasks=2)
    if broken == "flow_run":
        bad = rows.flow_run(next(iter(batch.flows)), name=None)  # NOT NULL column
        batch.flow_runs[bad[0]] = bad
    else:
        batch.logs.append((uuid7_hex(), run_id, None, 20, "x", None, T0))  # NOT NULL message

    with pytest.raises(Exception) as failure:
        store.writer.write(batch)
    assert "null" in str(failure.value).lower()

    for table in ("flow", "flow_run", "task_run", "state", "log"):
        assert store.rows(table) == [], table
    # The writer stays usable after a failed batch.
    good, _ = _batch(rows)
    store.writer.write(good)
    assert len(store.rows("flow_run")) == 1


def test_a_batch_of_thousands_of_rows_is_written(store: Store, rows: Rows) -> None:
    batch, run_id = _batch(rows, tasks=3000)
    batch.logs.extend(rows.log(run_id, f"line {i}") for i in range(2000))
    store.writer.write(batch)
    with store.engine.connect() as conn:
        counts = {
            name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for name, (table, _cols) in tables.RECORDED.items()
        }
    assert counts == {
        "flow": 1,
        "flow_run": 1,
        "task_run": 3000,
        "state": 3001,
        "log": 2001,
        # One lifecycle event per state row.
        "event": 3001,
    }


def test_an_empty_batch_is_a_no_op(store: Store) -> None:
    store.writer.write(Batch())
    assert store.rows("flow_run") == []


def test_active_runs_lists_active_runs_of_the_host_only(store: Store, rows: Rows) -> None:
    flow = rows.flow()
    runs = {
        "pending": rows.flow_run(flow[0], state_type=StateType.PENDING, process="host-a:1:1.0"),
        "running": rows.flow_run(flow[0], state_type=StateType.RUNNING, process="host-a:2:1.0"),
        "cancelling": rows.flow_run(
            flow[0], state_type=StateType.CANCELLING, process="host-a:3:1.0"
        ),
        "completed": rows.flow_run(flow[0], state_type=StateType.COMPLETED, process="host-a:4:1.0"),
        "scheduled": rows.flow_run(flow[0], state_type=StateType.SCHEDULED, process="host-a:5:1.0"),
        "paused": rows.flow_run(flow[0], state_type=StateType.PAUSED, process="host-a:6:1.0"),
        "other host": rows.flow_run(flow[0], process="host-b:7:1.0"),
        "longer host name": rows.flow_run(flow[0], process="host-ab:8:1.0"),
        "other case": rows.flow_run(flow[0], process="HOST-A:9:1.0"),
        "like wildcard": rows.flow_run(flow[0], process="host_a:10:1.0"),
        "no process": rows.flow_run(flow[0], process=None),
    }
    store.writer.write(
        Batch(flows={flow[0]: flow}, flow_runs={run[0]: run for run in runs.values()})
    )

    active = store.writer.active_runs("host-a")
    assert all(isinstance(run_id, uuid.UUID) for run_id, _ in active)
    assert sorted((run_id.hex, process) for run_id, process in active) == sorted(
        (runs[k][0], runs[k][-1]) for k in ("pending", "running", "cancelling")
    )
    assert store.writer.active_runs("host-c") == []


def _states(store: Store, **where: str | None) -> list[tuple[Any, ...]]:
    """(type, name, message, timestamp) of the state history rows matching `where`."""
    t = tables.state
    query = sa.select(t.c.type, t.c.name, t.c.message, t.c.timestamp)
    for column, value in where.items():
        column_ = t.c[column]
        query = query.where(column_.is_(None) if value is None else column_ == uuid.UUID(value))
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query.order_by(t.c.timestamp))]


def test_mark_crashed_moves_active_runs_and_their_unfinished_tasks_to_crashed(
    store: Store, rows: Rows
) -> None:
    flow = rows.flow()
    run = rows.flow_run(flow[0], state_type=StateType.RUNNING, end_time=None)
    running = rows.task_run(run[0], state_type=StateType.RUNNING)
    pending = rows.task_run(run[0], state_type=StateType.PENDING, start_time=None)
    completed = rows.task_run(
        run[0], state_type=StateType.COMPLETED, state_name="Completed", end_time=T0 + 3
    )
    store.writer.write(
        Batch(
            flows={flow[0]: flow},
            flow_runs={run[0]: run},
            task_runs={t[0]: t for t in (running, pending, completed)},
        )
    )
    now = T0 + 60

    store.writer.mark_crashed([run[0]], "Process 123 on host-a died", now)

    crash = {
        "state_type": "CRASHED",
        "state_name": "Crashed",
        "state_message": "Process 123 on host-a died",
        "state_timestamp": now,
        "end_time": now,
        "updated": now,
    }
    assert store.get("flow_run", run[0]) == rows.dict("flow_run", run) | crash
    for task in (running, pending):
        assert store.get("task_run", task[0]) == rows.dict("task_run", task) | crash
    assert store.get("task_run", completed[0]) == rows.dict("task_run", completed)

    history = ("CRASHED", "Crashed", "Process 123 on host-a died", now)
    assert _states(store, flow_run_id=run[0], task_run_id=None) == [history]
    for task in (running, pending):
        assert _states(store, task_run_id=task[0]) == [history]
    assert _states(store, task_run_id=completed[0]) == []
    assert store.writer.active_runs("host-a") == []
    crashed = sorted(e["resource_id"] for e in store.rows("event"))
    assert crashed == sorted(
        [f"headwater.flow-run.{uuid.UUID(run[0])}"]
        + [f"headwater.task-run.{uuid.UUID(t[0])}" for t in (running, pending)]
    )
    assert {e["event"] for e in store.rows("event")} == {
        "headwater.flow-run.Crashed",
        "headwater.task-run.Crashed",
    }


def test_mark_crashed_never_overwrites_a_terminal_state(store: Store, rows: Rows) -> None:
    flow = rows.flow()
    done = rows.flow_run(
        flow[0], state_type=StateType.COMPLETED, state_name="Completed", end_time=T0 + 5
    )
    failed = rows.flow_run(
        flow[0], state_type=StateType.FAILED, state_name="Failed", end_time=T0 + 5
    )
    cancelling = rows.flow_run(flow[0], state_type=StateType.CANCELLING, state_name="Cancelling")
    stray_task = rows.task_run(done[0], state_type=StateType.RUNNING)
    store.writer.write(
        Batch(
            flows={flow[0]: flow},
            flow_runs={r[0]: r for r in (done, failed, cancelling)},
            task_runs={stray_task[0]: stray_task},
        )
    )

    # Ids as the recorder keeps them (hex) or as uuid.UUID objects.
    ids = [done[0], uuid.UUID(failed[0]), uuid.UUID(cancelling[0]), uuid7_hex()]
    store.writer.mark_crashed(ids, "gone", T0 + 60)
    store.writer.mark_crashed([cancelling[0]], "gone again", T0 + 70)

    assert store.get("flow_run", done[0]) == rows.dict("flow_run", done)
    assert store.get("flow_run", failed[0]) == rows.dict("flow_run", failed)
    assert store.get("task_run", stray_task[0]) == rows.dict("task_run", stray_task)
    assert store.get("flow_run", cancelling[0])["state_type"] == "CRASHED"
    assert store.get("flow_run", cancelling[0])["state_message"] == "gone"
    assert len(store.rows("state")) == 1


def test_mark_crashed_handles_many_runs_and_no_runs(store: Store, rows: Rows) -> None:
    flow = rows.flow()
    runs = [rows.flow_run(flow[0], state_type=StateType.PENDING) for _ in range(1200)]
    store.writer.write(Batch(flows={flow[0]: flow}, flow_runs={r[0]: r for r in runs}))

    store.writer.mark_crashed([], "nothing", T0 + 60)
    store.writer.mark_crashed([r[0] for r in runs], "host rebooted", T0 + 60)

    assert {r["state_type"] for r in store.rows("flow_run")} == {"CRASHED"}
    assert len(store.rows("state")) == 1200


def test_only_events_an_enabled_automation_may_count_enter_the_inbox(
    store: Store, rows: Rows
) -> None:
    def signup() -> Row:
        event_id = uuid7_hex()
        return (
            event_id,
            T0,
            "customer.signup",
            "c",
            {"headwater.resource.id": "c"},
            [],
            {},
            None,
            None,
        )

    def other() -> Row:
        event_id = uuid7_hex()
        return (
            event_id,
            T0,
            "files.landed",
            "f",
            {"headwater.resource.id": "f"},
            [],
            {},
            None,
            None,
        )

    store.writer.write(Batch(events=[signup(), other()]))
    assert len(store.rows("event")) == 2
    assert _inbox_count(store) == 0  # no automation: nothing to evaluate

    _listen(store, {"type": "event", "expect": ["files.landed"]}, enabled=False)
    store.writer.write(Batch(events=[signup(), other()]))
    assert _inbox_count(store) == 0  # a paused automation listens to nothing

    _listen(
        store,
        {
            "type": "compound",
            "require": "all",
            "triggers": [
                {"type": "event", "expect": ["customer.*"]},
                {"type": "metric", "metric": {"name": "duration", "threshold": 1, "operator": ">"}},
            ],
        },
    )
    store.writer.write(Batch(events=[signup(), other()]))
    assert len(store.rows("event")) == 6
    assert _inbox_count(store) == 1  # the signup, not the landed files

    _listen(store)  # every event
    store.writer.write(Batch(events=[signup(), other()]))
    assert _inbox_count(store) == 3


def test_task_run_events_can_be_turned_off(
    store: Store, rows: Rows, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.settings import reset_settings

    monkeypatch.setenv("HEADWATER_TASK_RUN_EVENTS", "false")
    reset_settings()
    try:
        batch, _ = _batch(rows, tasks=3)
        store.writer.write(batch)
    finally:
        monkeypatch.delenv("HEADWATER_TASK_RUN_EVENTS")
        reset_settings()

    names = [row["event"] for row in store.rows("event")]
    assert names and all(name.startswith("headwater.flow-run.") for name in names)
    assert len(store.rows("state")) == 4  # the task runs' states are all kept
