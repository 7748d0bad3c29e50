"""Lifecycle services: late runs, runs of dead workers, cancellations that nobody finished.

Each service is `service(db, now) -> Outcome` (see `server/services.py`) and
changes runs with a compare-and-set: the UPDATE matches the state the run
was seen in, so a transition made meanwhile by a worker, a flow or a user
wins, and the service leaves that run alone. Every change writes its row
of state history.

- `mark_late_runs`: Scheduled runs not claimed `LATE_AFTER` seconds after
  they were due are renamed Late (still SCHEDULED and still queued, so a
  worker claims them as soon as it can).
- `recover_runs_of_dead_workers`: a worker (or `serve` process) is dead when
  it missed its heartbeats (`repositories.work_pools.offline_after`), or was
  deleted. Its claimed but unstarted (PENDING) runs are queued again; its
  RUNNING runs are retried if their flow's retry policy allows another
  attempt, else Crashed; its CANCELLING runs are Cancelled. A dead worker
  that heartbeats again gets none of them back. Workers silent for
  `FORGET_WORKERS_AFTER` with nothing left to recover are deleted.
- `finish_cancellations`: CANCELLING runs that no live worker will stop
  (never claimed, or their worker is dead) are Cancelled after
  `CANCELLING_GRACE` seconds.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from headwater.core.ids import uuid7_hex
from headwater.core.rules import RunPosition
from headwater.core.states import TERMINAL_TYPES, StateType
from headwater.server.repositories import events, flow_runs
from headwater.server.repositories.claims import requeue, retry_or_crash
from headwater.server.repositories.deployment_runs import dequeue
from headwater.server.repositories.events import record_state_events
from headwater.server.repositories.work_pools import (
    MIN_OFFLINE_AFTER,
    hex_ids,
    is_online,
    offline_after,
)
from headwater.server.services import Outcome
from headwater.store.tables import flow_run, state, work_pool, worker

if TYPE_CHECKING:
    from headwater.server.database import Database

#: A Scheduled run not claimed this many seconds after it was due is Late.
LATE_AFTER = 15.0
#: Seconds a CANCELLING run that no live worker will stop waits before it is Cancelled.
CANCELLING_GRACE = 30.0
#: Workers silent this long, with no run left to recover, are deleted.
FORGET_WORKERS_AFTER = 7 * 86_400.0
#: Runs changed per transaction by the bulk services.
BATCH = 5000

_LATE_MESSAGE = (
    f"Not claimed within {LATE_AFTER:g}s of its scheduled time; is a worker polling its "
    "work pool (or `serve` running its deployment)?"
)
_CLAIMED_TYPES = (StateType.PENDING, StateType.RUNNING, StateType.CANCELLING)


def change_states_where(
    conn: sa.Connection,
    condition: sa.ColumnElement[bool],
    *,
    state_type: StateType,
    name: str,
    message: str | None,
    timestamp: float,
    limit: int | None = None,
) -> list[uuid.UUID]:
    """Move every run matching `condition` (at most `limit`) to a new state; their ids.

    The compare-and-set of many runs at once: `condition` is checked again by
    the UPDATE itself, so a run that another transition moved meanwhile no
    longer matches and is left alone (on PostgreSQL, runs another transaction
    holds are skipped). Each changed run gets its row of state history. Works
    in statements of `BATCH` runs.
    """
    changed: list[uuid.UUID] = []
    while limit is None or len(changed) < limit:
        size = BATCH if limit is None else min(BATCH, limit - len(changed))
        batch = _change_batch(conn, condition, size, state_type, name, message, timestamp)
        changed.extend(batch)
        if len(batch) < size:
            break
    return changed


def _change_batch(
    conn: sa.Connection,
    condition: sa.ColumnElement[bool],
    size: int,
    state_type: StateType,
    name: str,
    message: str | None,
    timestamp: float,
) -> list[uuid.UUID]:
    candidates = sa.select(flow_run.c.id).where(condition).limit(size)
    if conn.dialect.name == "postgresql":
        # Lock the candidates first; runs another transaction is changing are theirs
        # (skipped, not waited for). Two statements, not `UPDATE ... WHERE id IN
        # (SELECT ... FOR UPDATE)`: on a table not yet analysed PostgreSQL may run
        # that subquery once per row (6 s for 5,000 runs).
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(conn.execute(candidates).scalars())
    if not ids:
        return []
    values: dict[str, Any] = {
        "state_type": state_type.value,
        "state_name": name,
        "state_message": message,
        "state_timestamp": timestamp,
        "updated": timestamp,
    }
    if state_type in TERMINAL_TYPES:
        values["end_time"] = timestamp
    changed = list(
        conn.execute(
            sa.update(flow_run)
            .where(flow_run.c.id.in_(ids), condition)
            .values(values)
            .returning(flow_run.c.id)
        ).scalars()
    )
    if not changed:
        return []
    rows = [
        {
            "id": uuid.UUID(uuid7_hex()),
            "flow_run_id": run_id,
            "task_run_id": None,
            "type": state_type.value,
            "name": name,
            "message": message,
            "timestamp": timestamp,
        }
        for run_id in changed
    ]
    conn.execute(sa.insert(state), rows)
    record_state_events(conn, rows)
    return changed


def mark_late_runs(db: Database, now: float) -> Outcome:
    """Rename Scheduled runs due more than `LATE_AFTER` seconds ago to Late."""
    late = sa.and_(
        flow_run.c.state_type == StateType.SCHEDULED.value,
        flow_run.c.expected_start_time < now - LATE_AFTER,
        flow_run.c.state_name == "Scheduled",
    )
    changed: list[uuid.UUID] = []
    while True:
        with db.write() as conn:
            batch = change_states_where(
                conn,
                late,
                state_type=StateType.SCHEDULED,
                name="Late",
                message=_LATE_MESSAGE,
                timestamp=now,
                limit=BATCH,
            )
        changed.extend(batch)
        if len(batch) < BATCH:
            return Outcome(len(changed), hex_ids(changed))


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def recover_runs_of_dead_workers(db: Database, now: float) -> Outcome:
    """Requeue, retry, crash or cancel the runs of workers that stopped heartbeating."""
    query = (
        sa.select(
            flow_run.c.id,
            flow_run.c.flow_id,
            flow_run.c.state_type,
            flow_run.c.state_timestamp,
            flow_run.c.run_count,
            flow_run.c.deployment_id,
            flow_run.c.work_pool_id,
            flow_run.c.work_queue_id,
            flow_run.c.expected_start_time,
            flow_run.c.empirical_policy,
            flow_run.c.worker_id,
            worker.c.name.label("worker_name"),
            worker.c.heartbeat_interval,
            worker.c.last_heartbeat,
            work_pool.c.name.label("pool_name"),
        )
        .select_from(
            flow_run.outerjoin(worker, worker.c.id == flow_run.c.worker_id).outerjoin(
                work_pool, work_pool.c.id == worker.c.work_pool_id
            )
        )
        .where(
            flow_run.c.state_type.in_([t.value for t in _CLAIMED_TYPES]),
            flow_run.c.worker_id.is_not(None),
            # A coarse filter in SQL (no interval arithmetic on timestamps); exact below.
            sa.or_(worker.c.id.is_(None), worker.c.last_heartbeat < now - MIN_OFFLINE_AFTER),
        )
    )
    changed: list[uuid.UUID] = []
    with db.write() as conn:
        rows = conn.execute(query).mappings().all()
        for row in rows:
            if row["last_heartbeat"] is not None and is_online(
                row["last_heartbeat"], row["heartbeat_interval"], now
            ):
                continue
            if _recover(conn, row, now):
                changed.append(row["id"])
        _announce_stopped_workers(conn, now)
        _forget_workers(conn, now)
    return Outcome(len(changed), hex_ids(changed))


def _who(row: sa.RowMapping) -> str:
    if row["worker_name"] is None:
        return f"The worker {row['worker_id']} that claimed it was deleted"
    pool = f" of work pool {row['pool_name']!r}" if row["pool_name"] else ""
    return (
        f"Worker {row['worker_name']!r}{pool} stopped heartbeating (last heartbeat "
        f"{_when(row['last_heartbeat'])}, expected every {row['heartbeat_interval']:g}s)"
    )


def _recover(conn: sa.Connection, row: sa.RowMapping, now: float) -> bool:
    """Move one run of a dead worker on; False if it changed meanwhile."""
    run_id = row["id"]
    current = RunPosition(StateType(row["state_type"]), row["run_count"], row["state_timestamp"])
    who = _who(row)
    requeue_at: float | None = None
    if current.state_type is StateType.PENDING:
        new, name = StateType.SCHEDULED, "Scheduled"
        message = f"{who} before the run started; it waits for another worker."
        requeue_at = row["expected_start_time"] if row["expected_start_time"] is not None else now
    elif current.state_type is StateType.RUNNING:
        return retry_or_crash(conn, run_id, current, row, who, now)
    else:
        new, name = StateType.CANCELLED, "Cancelled"
        message = f"{who}; nothing runs the flow any more."
    if not flow_runs.change_state(
        conn,
        flow_run_id=run_id,
        current=current,
        state_id=uuid.UUID(uuid7_hex()),
        state_type=new,
        name=name,
        message=message,
        timestamp=now,
    ):
        return False
    if requeue_at is None:
        dequeue(conn, [run_id])
        return True
    requeue(conn, run_id, row, requeue_at)
    return True


def _announce_stopped_workers(conn: sa.Connection, now: float) -> None:
    """Send `headwater.worker.stopped` once for each worker that went offline."""
    silent = conn.execute(
        sa.select(
            worker.c.id,
            worker.c.name,
            worker.c.heartbeat_interval,
            worker.c.last_heartbeat,
            worker.c.work_pool_id,
            work_pool.c.name.label("pool_name"),
        )
        .select_from(worker.outerjoin(work_pool, work_pool.c.id == worker.c.work_pool_id))
        .where(worker.c.announced == "started", worker.c.last_heartbeat < now - MIN_OFFLINE_AFTER)
    ).all()
    for worker_id, name, interval, last, pool_id, pool_name in silent:
        if is_online(last, interval, now):
            continue
        conn.execute(sa.update(worker).where(worker.c.id == worker_id).values(announced="stopped"))
        events.emit(
            conn,
            "headwater.worker.stopped",
            kind="worker",
            resource_id=worker_id,
            name=name,
            related=[("work-pool", pool_id, pool_name)],
        )


def _forget_workers(conn: sa.Connection, now: float) -> None:
    """Delete workers silent for `FORGET_WORKERS_AFTER` that no active run names."""
    silent = conn.execute(
        sa.select(worker.c.id, worker.c.heartbeat_interval, worker.c.last_heartbeat).where(
            worker.c.last_heartbeat < now - FORGET_WORKERS_AFTER
        )
    ).all()
    ids = [
        worker_id
        for worker_id, interval, last in silent
        if now - last > max(offline_after(interval), FORGET_WORKERS_AFTER)
    ]
    if ids:
        busy = sa.select(flow_run.c.worker_id).where(
            flow_run.c.worker_id.in_(ids),
            flow_run.c.state_type.in_([t.value for t in _CLAIMED_TYPES]),
        )
        conn.execute(sa.delete(worker).where(worker.c.id.in_(ids), worker.c.id.not_in(busy)))


def finish_cancellations(db: Database, now: float) -> Outcome:
    """Cancel CANCELLING runs, `CANCELLING_GRACE` seconds on, that no live worker will stop."""
    cutoff = now - CANCELLING_GRACE
    stale = sa.and_(
        flow_run.c.state_type == StateType.CANCELLING.value,
        flow_run.c.state_timestamp < cutoff,
    )
    with db.read() as conn:
        rows = conn.execute(
            sa.select(
                flow_run.c.id,
                flow_run.c.worker_id,
                worker.c.heartbeat_interval,
                worker.c.last_heartbeat,
            )
            .select_from(flow_run.outerjoin(worker, worker.c.id == flow_run.c.worker_id))
            .where(stale)
        ).all()
    orphans = [
        run_id
        for run_id, worker_id, interval, last in rows
        if worker_id is None or last is None or not is_online(last, interval, now)
    ]
    changed: list[uuid.UUID] = []
    for start in range(0, len(orphans), BATCH):
        chunk: Sequence[uuid.UUID] = orphans[start : start + BATCH]
        with db.write() as conn:
            done = change_states_where(
                conn,
                sa.and_(flow_run.c.id.in_(chunk), stale),
                state_type=StateType.CANCELLED,
                name="Cancelled",
                message=(
                    f"Cancelling for over {CANCELLING_GRACE:g}s with no live worker to stop "
                    "it; nothing runs the flow."
                ),
                timestamp=now,
            )
            dequeue(conn, done)
        changed.extend(done)
    return Outcome(len(changed), hex_ids(changed))
