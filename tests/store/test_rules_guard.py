"""Every writer applies the orchestration rules inside its upsert."""

from __future__ import annotations

from headwater.core.records import Batch
from headwater.core.states import StateType

from .helpers import T0, Rows, Store


def _write_run(store: Store, rows: Rows, flow: tuple, **values: object) -> None:  # type: ignore[type-arg]
    batch = Batch()
    batch.flows[flow[0]] = flow
    run = rows.flow_run(flow[0], **values)
    batch.flow_runs[run[0]] = run
    store.writer.write(batch)


def test_terminal_state_is_final_within_an_attempt(store: Store, rows: Rows) -> None:
    flow = rows.flow()
    run_id = "0" * 31 + "1"
    _write_run(
        store,
        rows,
        flow,
        id=run_id,
        state_type=StateType.COMPLETED,
        state_name="Completed",
        state_timestamp=T0 + 5,
    )
    _write_run(
        store,
        rows,
        flow,
        id=run_id,
        state_type=StateType.RUNNING,
        state_name="Running",
        state_timestamp=T0 + 6,
    )
    assert store.get("flow_run", run_id)["state_type"] == "COMPLETED"


def test_a_retry_leaves_a_terminal_state(store: Store, rows: Rows) -> None:
    flow = rows.flow()
    run_id = "0" * 31 + "2"
    _write_run(
        store,
        rows,
        flow,
        id=run_id,
        state_type=StateType.FAILED,
        state_name="Failed",
        state_timestamp=T0 + 5,
        run_count=1,
    )
    _write_run(
        store,
        rows,
        flow,
        id=run_id,
        state_type=StateType.RUNNING,
        state_name="Retrying",
        state_timestamp=T0 + 6,
        run_count=2,
    )
    row = store.get("flow_run", run_id)
    assert (row["state_name"], row["run_count"]) == ("Retrying", 2)


def test_a_stale_writer_cannot_overwrite_a_newer_state(store: Store, rows: Rows) -> None:
    flow = rows.flow()
    run_id = "0" * 31 + "3"
    _write_run(
        store,
        rows,
        flow,
        id=run_id,
        state_type=StateType.RUNNING,
        state_name="Running",
        state_timestamp=T0 + 9,
        run_count=2,
    )
    _write_run(
        store,
        rows,
        flow,
        id=run_id,
        state_type=StateType.PENDING,
        state_name="Pending",
        state_timestamp=T0 + 1,
        run_count=0,
    )
    _write_run(
        store,
        rows,
        flow,
        id=run_id,
        state_type=StateType.RUNNING,
        state_name="Running",
        state_timestamp=T0 + 8,
        run_count=2,
    )
    row = store.get("flow_run", run_id)
    assert (row["state_type"], row["state_timestamp"]) == ("RUNNING", T0 + 9)


def test_crashed_runs_stay_crashed_when_their_process_reports_late(
    store: Store, rows: Rows
) -> None:
    flow = rows.flow()
    run_id = "0" * 31 + "4"
    _write_run(store, rows, flow, id=run_id, process="h:1:1")
    store.writer.mark_crashed([run_id], "gone", T0 + 50)
    _write_run(
        store,
        rows,
        flow,
        id=run_id,
        state_type=StateType.COMPLETED,
        state_name="Completed",
        state_timestamp=T0 + 60,
    )
    assert store.get("flow_run", run_id)["state_type"] == "CRASHED"
