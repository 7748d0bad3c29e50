"""Lifecycle services on each database, at a simulated time: late runs, runs of dead workers,
cancellations nobody finishes. Runs and workers are written as the server writes them."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.core.states import StateType
from headwater.schemas.work_pools import WorkPoolCreate
from headwater.server import lifecycle
from headwater.server.database import Database
from headwater.server.repositories import work_pools
from headwater.server.repositories.deployment_runs import DeploymentTarget, NewRun, insert_runs
from headwater.server.services import run_once
from headwater.store.tables import deployment, flow, flow_run, flow_run_queue, state, worker

#: The simulated present.
NOW = 1_800_000_000.0


class Store:
    """A store with one flow, a pool "etl" with a deployment, and ways to add runs and workers."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.write() as conn:
            pool = work_pools.create_pool(
                conn,
                body=WorkPoolCreate(name="etl", type="process"),
                base_job_template={"job_configuration": {}, "variables": {}},
                now=NOW - 3600,
            )
            self.flow_id = uuid7()
            conn.execute(sa.insert(flow).values(id=self.flow_id, name="etl", created=NOW))
            self.target = DeploymentTarget(
                id=uuid7(),
                flow_id=self.flow_id,
                work_pool_id=pool.id,
                work_queue_id=pool.default_queue_id,
                tags=[],
            )
            conn.execute(
                sa.insert(deployment).values(
                    id=self.target.id,
                    flow_id=self.flow_id,
                    name="nightly",
                    parameters={},
                    parameter_schema={},
                    enforce_parameter_schema=False,
                    tags=[],
                    work_pool_id=pool.id,
                    work_queue_id=pool.default_queue_id,
                    job_variables={},
                    collision_strategy="ENQUEUE",
                    paused=False,
                    created=NOW,
                    updated=NOW,
                )
            )

    def worker(self, name: str, *, last_heartbeat: float, interval: float = 10.0) -> uuid.UUID:
        worker_id = uuid7()
        with self.db.write() as conn:
            conn.execute(
                sa.insert(worker).values(
                    id=worker_id,
                    work_pool_id=self.target.work_pool_id,
                    name=name,
                    heartbeat_interval=interval,
                    last_heartbeat=last_heartbeat,
                    created=last_heartbeat,
                )
            )
        return worker_id

    def run(
        self,
        state_type: StateType = StateType.SCHEDULED,
        name: str | None = None,
        *,
        due: float = NOW,
        since: float = NOW - 60,
        worker_id: uuid.UUID | None = None,
        run_count: int = 0,
        policy: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        """A run of the deployment, as a claim and the engine leave it in `state_type`."""
        with self.db.write() as conn:
            (run_id,) = insert_runs(
                conn, [NewRun(self.target, due, {}, f"run-{uuid.uuid4().hex[:6]}")]
            )
            if state_type is not StateType.SCHEDULED or name is not None:
                conn.execute(
                    sa.update(flow_run)
                    .where(flow_run.c.id == run_id)
                    .values(
                        state_type=state_type.value,
                        state_name=name or state_type.value.title(),
                        state_timestamp=since,
                        worker_id=worker_id,
                        claim_token=None if worker_id is None else uuid.uuid4().hex,
                        run_count=run_count,
                        empirical_policy=policy,
                    )
                )
            if state_type is not StateType.SCHEDULED:
                conn.execute(
                    sa.delete(flow_run_queue).where(flow_run_queue.c.flow_run_id == run_id)
                )
        return run_id

    def read(self, run_id: uuid.UUID) -> sa.RowMapping:
        with self.db.read() as conn:
            return conn.execute(sa.select(flow_run).where(flow_run.c.id == run_id)).mappings().one()

    def states(self, run_id: uuid.UUID) -> list[str]:
        with self.db.read() as conn:
            query = sa.select(state.c.name).where(state.c.flow_run_id == run_id)
            return list(conn.execute(query.order_by(state.c.timestamp, state.c.id)).scalars())

    def queued(self, run_id: uuid.UUID) -> float | None:
        """When the run is due in the claim queue (None: not queued)."""
        with self.db.read() as conn:
            query = sa.select(flow_run_queue.c.scheduled_time).where(
                flow_run_queue.c.flow_run_id == run_id
            )
            scheduled: float | None = conn.execute(query).scalar_one_or_none()
            return scheduled


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    db = Database(database_url, pool_size=2)
    db.ensure_schema()
    yield Store(db)
    db.dispose()


# -- Late runs -----------------------------------------------------------------------------


def test_runs_not_claimed_15_seconds_after_they_were_due_are_late(store: Store) -> None:
    overdue = store.run(due=NOW - 16)
    just_due = store.run(due=NOW - 14)
    future = store.run(due=NOW + 60)
    retrying = store.run(StateType.SCHEDULED, "AwaitingRetry", due=NOW - 60)

    outcome = lifecycle.mark_late_runs(store.db, NOW)

    assert outcome.changed == 1
    assert outcome.flow_run_ids == {overdue.hex}
    late = store.read(overdue)
    assert (late["state_type"], late["state_name"]) == ("SCHEDULED", "Late")
    assert store.states(overdue) == ["Scheduled", "Late"]
    assert store.queued(overdue) == NOW - 16  # still claimable, as due as before
    for other in (just_due, future):
        assert store.read(other)["state_name"] == "Scheduled"
    assert store.read(retrying)["state_name"] == "AwaitingRetry"
    assert lifecycle.mark_late_runs(store.db, NOW + 1).changed == 0  # once is enough


def test_thousands_of_late_runs_are_marked_in_one_round(store: Store) -> None:
    count = lifecycle.BATCH + 100
    with store.db.write() as conn:
        insert_runs(
            conn,
            [NewRun(store.target, NOW - 7200 + i, {}, f"run-{i}") for i in range(count)],
        )

    outcome = lifecycle.mark_late_runs(store.db, NOW)

    assert outcome.changed == count == len(outcome.flow_run_ids)
    with store.db.read() as conn:
        names = conn.execute(
            sa.select(flow_run.c.state_name, sa.func.count()).group_by(flow_run.c.state_name)
        ).all()
        history = conn.execute(
            sa.select(sa.func.count()).select_from(state).where(state.c.name == "Late")
        ).scalar_one()
    assert dict(names) == {"Late": count}
    assert history == count


def test_a_claim_that_races_the_late_marker_wins(store: Store) -> None:
    run_id = store.run(due=NOW - 60)
    claimer = store.db.engine.connect()
    transaction = claimer.begin()
    claimer.execute(
        sa.update(flow_run)
        .where(flow_run.c.id == run_id)
        .values(state_type="PENDING", state_name="Pending", state_timestamp=NOW)
    )
    outcomes: list[Any] = []
    marker = threading.Thread(
        target=lambda: outcomes.append(lifecycle.mark_late_runs(store.db, NOW))
    )
    marker.start()
    time.sleep(0.3)  # the marker runs while the claim is not committed yet
    transaction.commit()
    claimer.close()
    marker.join(30)

    assert outcomes and outcomes[0].changed == 0
    assert store.read(run_id)["state_name"] == "Pending"
    assert "Late" not in store.states(run_id)


# -- Dead workers --------------------------------------------------------------------------


def test_runs_of_a_dead_worker_are_requeued_crashed_retried_or_cancelled(store: Store) -> None:
    dead = store.worker("w-dead", last_heartbeat=NOW - 31, interval=10)
    pending = store.run(StateType.PENDING, due=NOW - 5, worker_id=dead)
    running = store.run(StateType.RUNNING, worker_id=dead, run_count=1)
    retried = store.run(
        StateType.RUNNING,
        worker_id=dead,
        run_count=1,
        policy={"retries": 2, "retry_delay_seconds": 5},
    )
    out_of_retries = store.run(
        StateType.RUNNING,
        worker_id=dead,
        run_count=3,
        policy={"retries": 2, "retry_delay_seconds": 5},
    )
    cancelling = store.run(StateType.CANCELLING, worker_id=dead, run_count=1)

    outcome = lifecycle.recover_runs_of_dead_workers(store.db, NOW)

    assert outcome.changed == 5
    assert outcome.flow_run_ids == {
        r.hex for r in (pending, running, retried, out_of_retries, cancelling)
    }
    requeued = store.read(pending)
    assert (requeued["state_type"], requeued["state_name"]) == ("SCHEDULED", "Scheduled")
    assert (requeued["worker_id"], requeued["claim_token"]) == (None, None)
    assert store.queued(pending) == NOW - 5
    assert "w-dead" in requeued["state_message"]

    crashed = store.read(running)
    assert (crashed["state_type"], crashed["end_time"]) == ("CRASHED", NOW)
    assert "Worker 'w-dead' of work pool 'etl' stopped heartbeating" in crashed["state_message"]
    assert store.queued(running) is None

    retry = store.read(retried)
    assert (retry["state_type"], retry["state_name"]) == ("SCHEDULED", "AwaitingRetry")
    assert (retry["worker_id"], retry["claim_token"]) == (None, None)
    assert retry["expected_start_time"] == NOW + 5
    assert store.queued(retried) == NOW + 5
    assert "retry 1 of 2" in retry["state_message"]
    assert store.states(retried)[-1] == "AwaitingRetry"

    assert store.read(out_of_retries)["state_type"] == "CRASHED"
    assert store.read(cancelling)["state_type"] == "CANCELLED"
    assert lifecycle.recover_runs_of_dead_workers(store.db, NOW + 1).changed == 0


def test_live_workers_keep_their_runs(store: Store) -> None:
    recent = store.worker("w-recent", last_heartbeat=NOW - 25, interval=10)  # 25 s < 3 x 10 s
    # 3 x 2 s is 6 s, but a worker is never offline before 10 s.
    fast = store.worker("w-fast", last_heartbeat=NOW - 8, interval=2)
    runs = [
        store.run(StateType.RUNNING, worker_id=recent, run_count=1),
        store.run(StateType.PENDING, worker_id=fast),
    ]

    assert lifecycle.recover_runs_of_dead_workers(store.db, NOW).changed == 0
    assert [store.read(r)["state_type"] for r in runs] == ["RUNNING", "PENDING"]
    with store.db.read() as conn:
        statuses = {
            w.name: w.status.value for w in work_pools.list_workers(conn, pool="etl", now=NOW)
        }
    assert statuses == {"w-recent": "ONLINE", "w-fast": "ONLINE"}

    with store.db.read() as conn:
        later = {
            w.name: w.status.value for w in work_pools.list_workers(conn, pool="etl", now=NOW + 6)
        }
    assert later == {"w-recent": "OFFLINE", "w-fast": "OFFLINE"}


def test_a_dead_worker_that_heartbeats_again_gets_nothing_back(store: Store) -> None:
    dead = store.worker("w-1", last_heartbeat=NOW - 60)
    run_id = store.run(StateType.PENDING, worker_id=dead)
    lifecycle.recover_runs_of_dead_workers(store.db, NOW)

    with store.db.write() as conn:
        back = work_pools.heartbeat(conn, pool="etl", name="w-1", heartbeat_interval=10, now=NOW)
    assert (back.id, back.status.value) == (dead, "ONLINE")
    assert lifecycle.recover_runs_of_dead_workers(store.db, NOW + 1).changed == 0

    run = store.read(run_id)
    assert (run["state_name"], run["worker_id"]) == ("Scheduled", None)
    assert store.queued(run_id) is not None


def test_runs_of_a_deleted_worker_or_a_dead_serve_process_are_recovered(store: Store) -> None:
    deleted = uuid7()  # its pool was deleted with its workers
    orphan = store.run(StateType.RUNNING, worker_id=deleted, run_count=1)
    with store.db.write() as conn:
        serve = work_pools.heartbeat(
            conn, pool=None, name="serve-nightly", heartbeat_interval=5, now=NOW - 20
        )
    served = store.run(StateType.RUNNING, worker_id=serve.id, run_count=1)

    outcome = lifecycle.recover_runs_of_dead_workers(store.db, NOW)

    assert outcome.flow_run_ids == {orphan.hex, served.hex}
    assert "was deleted" in store.read(orphan)["state_message"]
    crashed = store.read(served)
    assert crashed["state_type"] == "CRASHED"
    assert "Worker 'serve-nightly' stopped heartbeating" in crashed["state_message"]


def test_workers_silent_for_a_week_are_forgotten(store: Store) -> None:
    store.worker("w-old", last_heartbeat=NOW - 8 * 86_400)
    store.worker("w-yesterday", last_heartbeat=NOW - 86_400)

    lifecycle.recover_runs_of_dead_workers(store.db, NOW)

    with store.db.read() as conn:
        names = [w.name for w in work_pools.list_workers(conn, pool="etl", now=NOW)]
    assert names == ["w-yesterday"]


# -- Cancellations -------------------------------------------------------------------------


def test_cancellations_nobody_will_finish_end_after_the_grace_period(store: Store) -> None:
    live = store.worker("w-live", last_heartbeat=NOW - 1)
    dead = store.worker("w-dead", last_heartbeat=NOW - 600)
    unclaimed = store.run(StateType.CANCELLING, since=NOW - 31)
    too_soon = store.run(StateType.CANCELLING, since=NOW - 20)
    with_live_worker = store.run(StateType.CANCELLING, since=NOW - 300, worker_id=live)
    with_dead_worker = store.run(StateType.CANCELLING, since=NOW - 31, worker_id=dead)

    outcome = lifecycle.finish_cancellations(store.db, NOW)

    assert outcome.flow_run_ids == {unclaimed.hex, with_dead_worker.hex}
    for run_id in (unclaimed, with_dead_worker):
        run = store.read(run_id)
        assert (run["state_type"], run["end_time"]) == ("CANCELLED", NOW)
        assert store.states(run_id)[-1] == "Cancelled"
    assert store.read(too_soon)["state_type"] == "CANCELLING"
    assert store.read(with_live_worker)["state_type"] == "CANCELLING"
    assert lifecycle.finish_cancellations(store.db, NOW + 11).flow_run_ids == {too_soon.hex}


def test_a_services_round_runs_the_lifecycle_services(store: Store) -> None:
    overdue = store.run(due=NOW - 60)
    dead = store.worker("w-gone", last_heartbeat=NOW - 600)
    crashed = store.run(StateType.RUNNING, worker_id=dead, run_count=1)

    report = run_once(store.db.url, database=store.db, now=NOW)

    assert report is not None
    assert (report["late_runs"], report["dead_workers"]) == (1, 1)
    assert store.read(overdue)["state_name"] == "Late"
    assert store.read(crashed)["state_type"] == "CRASHED"
