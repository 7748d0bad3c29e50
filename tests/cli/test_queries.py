"""The read-side queries, on SQLite and PostgreSQL, over rows written by the real writer."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.core.states import StateType
from headwater.exceptions import ObjectNotFound
from headwater.store import queries
from headwater.store.engine import create_engine

from .helpers import BASE, StoreBuilder


@pytest.fixture
def conn(store: StoreBuilder) -> Iterator[sa.Connection]:
    store.writer.open()  # creates the schema
    engine = create_engine(store.url)
    with engine.connect() as connection:
        yield connection
    engine.dispose()


def test_list_flow_runs_joins_flow_name_latest_first_with_duration(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    older = store.flow_run("etl", name="older", start=BASE, duration=4.0)
    newer = store.flow_run("report", name="newer", start=BASE + 60, duration=None, state="RUNNING")

    runs = queries.list_flow_runs(conn)

    assert [(r.id, r.name, r.flow_name) for r in runs] == [
        (newer.id, "newer", "report"),
        (older.id, "older", "etl"),
    ]
    assert runs[1].duration == pytest.approx(4.0)
    assert runs[0].duration is None
    assert runs[1].state_type is StateType.COMPLETED
    assert runs[1].parameters == {"n": 3}


def test_list_flow_runs_orders_unstarted_runs_by_expected_start(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    started = store.flow_run(start=BASE + 10)
    scheduled_later = store.flow_run(state="SCHEDULED", start=None, expected_start=BASE + 500)
    scheduled_earlier = store.flow_run(state="SCHEDULED", start=None, expected_start=BASE + 5)

    ids = [r.id for r in queries.list_flow_runs(conn)]

    assert ids == [scheduled_later.id, started.id, scheduled_earlier.id]


def test_list_flow_runs_filters_combine(store: StoreBuilder, conn: sa.Connection) -> None:
    store.flow_run("etl", state="COMPLETED", start=BASE)
    etl_failed = store.flow_run("etl", state="FAILED", start=BASE + 100)
    store.flow_run("report", state="FAILED", start=BASE + 200)
    etl_crashed = store.flow_run("etl", state="CRASHED", start=BASE + 300)

    def ids(**filters: object) -> set[uuid.UUID]:
        return {r.id for r in queries.list_flow_runs(conn, **filters)}  # type: ignore[arg-type]

    assert ids(flow_name="etl", state_types=["FAILED", StateType.CRASHED]) == {
        etl_failed.id,
        etl_crashed.id,
    }
    assert ids(flow_name="etl", since=BASE + 50, until=BASE + 250) == {etl_failed.id}
    assert ids(flow_name="no-such-flow") == set()
    assert ids(state_types=["failed"]) == {etl_failed.id} | {
        r.id for r in queries.list_flow_runs(conn, flow_name="report")
    }


def test_list_flow_runs_pages_and_filters_by_parent(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    parent = store.flow_run("parent", start=BASE)
    children = [store.flow_run("child", start=BASE + i, parent=parent.id).id for i in range(1, 6)]

    first = queries.list_flow_runs(conn, parent_flow_run_id=parent.id, limit=2)
    rest = queries.list_flow_runs(conn, parent_flow_run_id=parent.id, limit=10, offset=2)

    assert [r.id for r in first + rest] == children[::-1]
    assert first[0].parent_flow_run_id == parent.id


def test_count_flow_runs_by_state_uses_the_same_filters(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    for state in ("COMPLETED", "COMPLETED", "FAILED"):
        store.flow_run("etl", state=state)
    store.flow_run("report", state="RUNNING")

    assert queries.count_flow_runs_by_state(conn) == {
        StateType.COMPLETED: 2,
        StateType.FAILED: 1,
        StateType.RUNNING: 1,
    }
    assert queries.count_flow_runs_by_state(conn, flow_name="etl", state_types=["FAILED"]) == {
        StateType.FAILED: 1
    }


def test_unknown_state_type_is_a_value_error(conn: sa.Connection) -> None:
    with pytest.raises(ValueError):
        queries.list_flow_runs(conn, state_types=["RUNING"])


def test_read_flow_run_by_full_id_prefix_and_dashed_prefix(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    run_id = uuid.UUID("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
    store.flow_run(run_id=run_id, name="target", tags=["x"])
    store.flow_run(run_id=uuid.UUID("0193a1b2-c3d4-7f00-8000-000000000000"), name="sibling")

    for text in (
        str(run_id),
        run_id.hex,
        run_id,
        "0193A1B2-C3D4-7E5",
        "0193a1b2c3d47e",
        " 0193a1b2-c3d4-7e5f-8a9b ",
    ):
        run = queries.read_flow_run(conn, text)
        assert (run.id, run.name, run.tags) == (run_id, "target", ["x"])


def test_read_flow_run_ambiguous_prefix_names_candidates(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    first = store.flow_run(run_id=uuid.UUID("0193a1b2-0000-7000-8000-000000000001"), name="one")
    second = store.flow_run(run_id=uuid.UUID("0193a1b2-0000-7000-8000-000000000002"), name="two")

    with pytest.raises(queries.AmbiguousIdError) as caught:
        queries.read_flow_run(conn, "0193a1b2")

    message = str(caught.value)
    assert isinstance(caught.value, ObjectNotFound)
    assert f"{first.id} (one)" in message and f"{second.id} (two)" in message
    assert "more characters" in message


def test_read_flow_run_missing_or_malformed(store: StoreBuilder, conn: sa.Connection) -> None:
    store.flow_run(run_id=uuid.UUID("0193a1b2-0000-7000-8000-000000000001"))

    with pytest.raises(ObjectNotFound, match=r"No flow run found with id 'ffff'.*flow-run ls"):
        queries.read_flow_run(conn, "ffff")
    with pytest.raises(ObjectNotFound, match="not an id or id prefix"):
        queries.read_flow_run(conn, "not-hex")
    with pytest.raises(ObjectNotFound, match="not an id or id prefix"):
        queries.read_flow_run(conn, "0" * 33)
    with pytest.raises(ObjectNotFound):
        queries.read_flow_run(conn, uuid7())


def test_list_task_runs_in_run_order_or_latest_first(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    run = store.flow_run(name="parent-run")
    other = store.flow_run()
    extract = store.task_run(run.id, "extract-0", start=BASE)
    load = store.task_run(run.id, "load-0", start=BASE + 1, state="FAILED", run_count=3)
    store.task_run(other.id, "elsewhere-0", start=BASE + 2)

    in_order = queries.list_task_runs(conn, flow_run_id=run.id, newest_first=False)
    failed = queries.list_task_runs(conn, state_types=["FAILED"])
    everything = queries.list_task_runs(conn, limit=2)

    assert [t.id for t in in_order] == [extract, load]
    assert in_order[0].flow_run_name == "parent-run"
    assert in_order[0].duration == pytest.approx(0.5)
    assert [(t.id, t.run_count, t.state_type) for t in failed] == [(load, 3, StateType.FAILED)]
    assert [t.name for t in everything] == ["elsewhere-0", "load-0"]
    assert queries.count_task_runs_by_state(conn, flow_run_id=run.id) == {
        StateType.COMPLETED: 1,
        StateType.FAILED: 1,
    }


def test_state_history_of_flow_run_excludes_its_task_runs(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    run = store.flow_run(state="FAILED", message="boom")
    task = store.task_run(run.id, "extract-0", state="COMPLETED")

    flow_history = queries.read_state_history(conn, flow_run_id=run.id)
    task_history = queries.read_state_history(conn, task_run_id=task)

    assert [(s.type, s.message) for s in flow_history] == [
        (StateType.PENDING, None),
        (StateType.RUNNING, None),
        (StateType.FAILED, "boom"),
    ]
    assert [s.type for s in task_history] == [StateType.RUNNING, StateType.COMPLETED]
    with pytest.raises(ValueError):
        queries.read_state_history(conn)


def test_read_logs_in_time_order_with_task_names_and_filters(
    store: StoreBuilder, conn: sa.Connection
) -> None:
    run = store.flow_run()
    other = store.flow_run()
    task = store.task_run(run.id, "extract-0")
    store.log(run.id, "third", at=BASE + 3, level=40, task_run=task)
    store.log(run.id, "first", at=BASE + 1)
    store.log(run.id, "second", at=BASE + 2, level=10, task_run=task)
    store.log(other.id, "not mine", at=BASE + 1.5)

    lines = queries.read_logs(conn, flow_run_id=run.id)

    assert [(line.message, line.task_run_name) for line in lines] == [
        ("first", None),
        ("second", "extract-0"),
        ("third", "extract-0"),
    ]
    assert [line.message for line in queries.read_logs(conn, flow_run_id=run.id, min_level=20)] == [
        "first",
        "third",
    ]
    after = queries.read_logs(conn, flow_run_id=run.id, after_timestamp=BASE + 2)
    assert [line.message for line in after] == ["third"]
    assert [line.message for line in queries.read_logs(conn, flow_run_id=run.id, limit=1)] == [
        "first"
    ]


def test_resolve_id_works_for_task_runs(store: StoreBuilder, conn: sa.Connection) -> None:
    from headwater.store.tables import task_run

    run = store.flow_run()
    task = store.task_run(run.id, "extract-0")

    assert queries.resolve_id(conn, task_run, str(task)[:20], kind="task run") == task
    with pytest.raises(ObjectNotFound, match=r"No task run found.*`headwater task-run ls`"):
        queries.resolve_id(conn, task_run, "fff", kind="task run")
