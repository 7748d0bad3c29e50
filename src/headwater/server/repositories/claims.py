"""Claiming due runs for a worker (or `serve`), starting a claimed run, and cancelling runs.

The claim is the one place two workers could collide, so it is atomic:
candidate rows of `flow_run_queue` are locked (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite has one writer at a time), deleted, and their runs moved
from Scheduled to Pending with a fresh claim token. A run's process must show
that token to `begin` it; a stale or second claimant is refused.

Concurrency limits are applied here: a pool's and a queue's limit count their
runs in Pending, Running or Cancelling; so does a deployment's, whose
collision strategy decides between leaving the run queued (ENQUEUE) and
cancelling it (CANCEL_NEW).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7_hex
from headwater.core.rules import RunPosition
from headwater.core.states import StateType
from headwater.exceptions import Conflict, ObjectNotFound
from headwater.schemas.deployments import CollisionStrategy
from headwater.server.repositories import flow_runs
from headwater.server.repositories.deployment_runs import DeploymentTarget, dequeue, enqueue
from headwater.store.tables import deployment, flow_run, flow_run_queue, work_pool, work_queue

#: States in which a run occupies a concurrency slot of its pool, queue and deployment.
ACTIVE = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)
#: Candidates read per claim, beyond `limit`, so runs held back by a limit can be skipped.
_LOOKAHEAD = 4


@dataclasses.dataclass(frozen=True, slots=True)
class Claimed:
    flow_run_id: uuid.UUID
    claim_token: str
    deployment_id: uuid.UUID


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: list[Claimed]
    #: runs cancelled by their deployment's CANCEL_NEW collision strategy
    cancelled: list[uuid.UUID]


def _active_counts(
    conn: sa.Connection, column: sa.Column[Any], ids: set[uuid.UUID]
) -> Counter[uuid.UUID]:
    if not ids:
        return Counter()
    query = (
        sa.select(column, sa.func.count())
        .where(column.in_(ids), flow_run.c.state_type.in_(ACTIVE))
        .group_by(column)
    )
    return Counter({key: count for key, count in conn.execute(query)})


def claim(
    conn: sa.Connection,
    *,
    worker_id: uuid.UUID,
    limit: int,
    now: float,
    work_pool_id: uuid.UUID | None = None,
    work_queue_names: Sequence[str] = (),
    deployment_ids: Sequence[uuid.UUID] = (),
) -> ClaimResult:
    """Claim up to `limit` due runs of a pool (or of `deployment_ids`) for `worker_id`."""
    due = sa.literal(now, type_=flow_run_queue.c.scheduled_time.type)
    query = (
        sa.select(
            flow_run_queue.c.flow_run_id,
            flow_run_queue.c.deployment_id,
            flow_run_queue.c.work_queue_id,
            deployment.c.concurrency_limit,
            deployment.c.collision_strategy,
        )
        .join(deployment, deployment.c.id == flow_run_queue.c.deployment_id)
        .where(flow_run_queue.c.scheduled_time <= due, deployment.c.paused.is_(False))
    )
    queue_limits: dict[uuid.UUID, int | None] = {}
    pool_limit: int | None = None
    if work_pool_id is not None:
        pool = conn.execute(
            sa.select(work_pool.c.paused, work_pool.c.concurrency_limit).where(
                work_pool.c.id == work_pool_id
            )
        ).first()
        if pool is None or pool.paused:
            return ClaimResult([], [])
        pool_limit = pool.concurrency_limit
        queues = sa.select(work_queue.c.id, work_queue.c.concurrency_limit).where(
            work_queue.c.work_pool_id == work_pool_id, work_queue.c.paused.is_(False)
        )
        if work_queue_names:
            queues = queues.where(work_queue.c.name.in_(list(work_queue_names)))
        queue_limits = {row.id: row.concurrency_limit for row in conn.execute(queues)}
        if not queue_limits:
            return ClaimResult([], [])
        query = (
            query.join(work_queue, work_queue.c.id == flow_run_queue.c.work_queue_id)
            .where(
                flow_run_queue.c.work_pool_id == work_pool_id,
                flow_run_queue.c.work_queue_id.in_(list(queue_limits)),
            )
            .order_by(work_queue.c.priority, flow_run_queue.c.scheduled_time)
        )
    else:
        if not deployment_ids:
            return ClaimResult([], [])
        query = query.where(
            flow_run_queue.c.deployment_id.in_(list(deployment_ids)),
            flow_run_queue.c.work_pool_id.is_(None),
        ).order_by(flow_run_queue.c.scheduled_time)
    query = query.limit(limit * _LOOKAHEAD)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=flow_run_queue, skip_locked=True)
    candidates = conn.execute(query).all()
    if not candidates:
        return ClaimResult([], [])

    limited_deployments = {c.deployment_id for c in candidates if c.concurrency_limit is not None}
    by_deployment = _active_counts(conn, flow_run.c.deployment_id, limited_deployments)
    limited_queues = {q for q, n in queue_limits.items() if n is not None}
    by_queue = _active_counts(conn, flow_run.c.work_queue_id, limited_queues)
    in_pool = 0
    if pool_limit is not None and work_pool_id is not None:
        in_pool = sum(_active_counts(conn, flow_run.c.work_pool_id, {work_pool_id}).values())

    chosen: list[Any] = []
    cancelled: list[uuid.UUID] = []
    for candidate in candidates:
        if len(chosen) >= limit or (pool_limit is not None and in_pool >= pool_limit):
            break
        queue_limit = queue_limits.get(candidate.work_queue_id)
        if queue_limit is not None and by_queue[candidate.work_queue_id] >= queue_limit:
            continue
        if (
            candidate.concurrency_limit is not None
            and by_deployment[candidate.deployment_id] >= candidate.concurrency_limit
        ):
            if candidate.collision_strategy == CollisionStrategy.CANCEL_NEW.value:
                cancelled.append(candidate.flow_run_id)
            continue
        chosen.append(candidate)
        by_deployment[candidate.deployment_id] += 1
        by_queue[candidate.work_queue_id] += 1
        in_pool += 1

    for run_id in cancelled:
        _set_state(
            conn,
            run_id,
            StateType.CANCELLED,
            "Cancelled",
            "Cancelled: the deployment's concurrency limit was reached (collision strategy "
            "CANCEL_NEW).",
            now,
        )
    dequeue(conn, cancelled)
    if not chosen:
        return ClaimResult([], cancelled)
    ids = [c.flow_run_id for c in chosen]
    dequeue(conn, ids)
    claimed = []
    for candidate in chosen:
        token = secrets.token_hex(16)
        moved = _set_state(
            conn,
            candidate.flow_run_id,
            StateType.PENDING,
            "Pending",
            None,
            now,
            extra={"worker_id": worker_id, "claim_token": token},
            expected=StateType.SCHEDULED,
        )
        if moved:
            claimed.append(Claimed(candidate.flow_run_id, token, candidate.deployment_id))
    return ClaimResult(claimed, cancelled)


def _set_state(
    conn: sa.Connection,
    flow_run_id: uuid.UUID,
    state_type: StateType,
    name: str,
    message: str | None,
    now: float,
    *,
    extra: dict[str, Any] | None = None,
    expected: StateType | None = None,
) -> bool:
    """Move a run to a state (compare-and-set on its current state); False if it moved meanwhile."""
    try:
        current = flow_runs.current_state(conn, flow_run_id=flow_run_id)
    except ObjectNotFound:
        return False
    if expected is not None and current.state_type is not expected:
        return False
    timestamp = max(now, current.state_timestamp)
    changed = flow_runs.change_state(
        conn,
        flow_run_id=flow_run_id,
        current=current,
        state_id=uuid.UUID(uuid7_hex()),
        state_type=state_type,
        name=name,
        message=message,
        timestamp=timestamp,
    )
    if changed and extra:
        conn.execute(sa.update(flow_run).where(flow_run.c.id == flow_run_id).values(extra))
    return changed


def next_due(
    conn: sa.Connection,
    *,
    work_pool_id: uuid.UUID | None = None,
    deployment_ids: Sequence[uuid.UUID] = (),
) -> float | None:
    """When the earliest queued run of the pool (or deployments) is due; None if none is queued."""
    query = sa.select(sa.func.min(flow_run_queue.c.scheduled_time))
    if work_pool_id is not None:
        query = query.where(flow_run_queue.c.work_pool_id == work_pool_id)
    else:
        query = query.where(flow_run_queue.c.deployment_id.in_(list(deployment_ids)))
    value = conn.execute(query).scalar_one_or_none()
    if value is None:
        return None
    return float(value.timestamp()) if hasattr(value, "timestamp") else float(value)


def cancelling_among(conn: sa.Connection, flow_run_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The runs among `flow_run_ids` that are being cancelled (their process must stop)."""
    if not flow_run_ids:
        return []
    query = sa.select(flow_run.c.id).where(
        flow_run.c.id.in_(list(flow_run_ids)),
        flow_run.c.state_type == StateType.CANCELLING.value,
    )
    return [row[0] for row in conn.execute(query)]


def begin(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID,
    claim_token: str,
    retries: int,
    retry_delay_seconds: float,
    process: str | None,
) -> None:
    """Move a claimed run to Running, if `claim_token` is its current claim (the fence).

    Raises:
        ObjectNotFound: no such run.
        Conflict: another claim owns the run, or it is no longer Pending (cancelled,
            reclaimed, or started already): the process must not run it.
    """
    row = conn.execute(
        sa.select(flow_run.c.state_type, flow_run.c.claim_token).where(flow_run.c.id == flow_run_id)
    ).first()
    if row is None:
        raise ObjectNotFound(f"No flow run found with id {str(flow_run_id)!r}.")
    if row.claim_token != claim_token:
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} is not claimed with this token (it was reclaimed "
            "or claimed by another worker); this process must not run it."
        )
    if row.state_type != StateType.PENDING.value:
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} is {StateType(row.state_type).value}, not PENDING: "
            "it was cancelled or has started already; this process must not run it."
        )
    moved = _set_state(
        conn,
        flow_run_id,
        StateType.RUNNING,
        "Running",
        None,
        time.time(),
        extra={
            "empirical_policy": {"retries": retries, "retry_delay_seconds": retry_delay_seconds},
            "process": process,
        },
        expected=StateType.PENDING,
    )
    if not moved:
        raise Conflict(f"Flow run {str(flow_run_id)!r} changed state meanwhile; not started.")


def cancel(conn: sa.Connection, *, flow_run_id: uuid.UUID, message: str | None) -> RunPosition:
    """Cancel a run: at once if it has not started, else through Cancelling (its worker stops
    the process, then marks it Cancelled). Returns its new position.

    Raises:
        ObjectNotFound: no such run.
        Conflict: the run is already in a final state.
    """
    current = flow_runs.current_state(conn, flow_run_id=flow_run_id)
    now = time.time()
    kind = current.state_type
    if kind is StateType.CANCELLING:
        return current
    if kind in (StateType.SCHEDULED, StateType.PAUSED):
        dequeue(conn, [flow_run_id])
        target, name = StateType.CANCELLED, "Cancelled"
    elif kind in (StateType.PENDING, StateType.RUNNING):
        target, name = StateType.CANCELLING, "Cancelling"
    else:
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} is already {kind.value}, a final state; there is "
            "nothing to cancel."
        )
    if not _set_state(conn, flow_run_id, target, name, message or "Cancelled by request.", now):
        raise Conflict("The run's state changed meanwhile; read it again and retry.")
    return flow_runs.current_state(conn, flow_run_id=flow_run_id)


def finish_cancelled(conn: sa.Connection, *, flow_run_id: uuid.UUID, message: str) -> bool:
    """A worker stopped a Cancelling run's process: the run is Cancelled. False if it was not
    Cancelling (e.g. it finished on its own first)."""
    return _set_state(
        conn,
        flow_run_id,
        StateType.CANCELLED,
        "Cancelled",
        message,
        time.time(),
        expected=StateType.CANCELLING,
    )


def fail_claimed(conn: sa.Connection, *, flow_run_id: uuid.UUID, message: str) -> bool:
    """A claimed run that cannot start as configured (bad job variables) fails at once."""
    return _set_state(
        conn,
        flow_run_id,
        StateType.FAILED,
        "Failed",
        f"Cannot start the run: {message}",
        time.time(),
        expected=StateType.PENDING,
    )


def process_exited(
    conn: sa.Connection,
    *,
    flow_run_id: uuid.UUID,
    exit_code: int | None,
    claim_token: str | None = None,
) -> RunPosition | None:
    """A worker's process for this run ended: settle the run if it did not settle itself.

    Cancelling -> Cancelled (the worker stopped it). Pending or Running -> Crashed,
    or AwaitingRetry when the flow's retry policy allows another attempt (the
    run is queued again). Runs in any other state, or claimed since under
    another token than `claim_token`, are left alone; returns the new position,
    or None if nothing changed.
    """
    row = _settling_row(conn, flow_run_id)
    if claim_token is not None and row["claim_token"] != claim_token:
        return None  # another worker owns the run now: this report is stale
    kind = StateType(row["state_type"])
    now = time.time()
    if kind is StateType.CANCELLING:
        changed = finish_cancelled(
            conn, flow_run_id=flow_run_id, message="Cancelled: the worker stopped its process."
        )
    elif kind in (StateType.PENDING, StateType.RUNNING):
        reason = (
            f"Its process was killed by signal {-exit_code}"
            if exit_code is not None and exit_code < 0
            else f"Its process exited with code {exit_code} before the run finished"
        )
        current = RunPosition(kind, row["run_count"], row["state_timestamp"])
        changed = retry_or_crash(conn, flow_run_id, current, row, reason, now)
    else:
        return None
    return flow_runs.current_state(conn, flow_run_id=flow_run_id) if changed else None


def _settling_row(conn: sa.Connection, flow_run_id: uuid.UUID) -> sa.RowMapping:
    """What settling a run needs: its state, attempt, retry policy, claim and queue.

    Raises:
        ObjectNotFound: no such run.
    """
    row = (
        conn.execute(
            sa.select(
                flow_run.c.flow_id,
                flow_run.c.state_type,
                flow_run.c.state_timestamp,
                flow_run.c.run_count,
                flow_run.c.empirical_policy,
                flow_run.c.deployment_id,
                flow_run.c.work_pool_id,
                flow_run.c.work_queue_id,
                flow_run.c.claim_token,
            ).where(flow_run.c.id == flow_run_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ObjectNotFound(f"No flow run found with id {str(flow_run_id)!r}.")
    return row


def retries_of(policy: Any) -> int:
    """How many retries a run's `empirical_policy` allows (0 if none or malformed)."""
    if not isinstance(policy, dict):
        return 0
    try:
        return max(0, int(policy.get("retries") or 0))
    except (TypeError, ValueError):
        return 0


def retry_delay(policy: dict[str, Any], attempt: int) -> float:
    """Seconds before retry number `attempt` (a number, or a list of them, as flows set)."""
    delay = policy.get("retry_delay_seconds") or 0
    if isinstance(delay, list):
        delay = delay[min(attempt, len(delay)) - 1] if delay else 0
    try:
        return max(0.0, float(delay))
    except (TypeError, ValueError):
        return 0.0


def retry_or_crash(
    conn: sa.Connection,
    flow_run_id: uuid.UUID,
    current: RunPosition,
    row: sa.RowMapping,
    reason: str,
    now: float,
) -> bool:
    """A run whose process or worker is gone: queue it again if the flow's retry policy
    allows another attempt (AwaitingRetry, due after the retry delay, claim cleared),
    else Crashed. `row` has the run's flow_id, run_count, empirical_policy,
    deployment_id, work_pool_id and work_queue_id. False if the run changed meanwhile.
    """
    policy = row["empirical_policy"] or {}
    retries, attempt = retries_of(policy), row["run_count"]
    if row["deployment_id"] is None or not 0 < attempt <= retries:
        return flow_runs.change_state(
            conn,
            flow_run_id=flow_run_id,
            current=current,
            state_id=uuid.UUID(uuid7_hex()),
            state_type=StateType.CRASHED,
            name="Crashed",
            message=f"{reason}.",
            timestamp=max(now, current.state_timestamp),
        )
    due = now + retry_delay(policy, attempt)
    when = dt.datetime.fromtimestamp(due, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if not flow_runs.change_state(
        conn,
        flow_run_id=flow_run_id,
        current=current,
        state_id=uuid.UUID(uuid7_hex()),
        state_type=StateType.SCHEDULED,
        name="AwaitingRetry",
        message=f"{reason} during attempt {attempt}; retry {attempt} of {retries} at {when}.",
        timestamp=max(now, current.state_timestamp),
    ):
        return False
    requeue(conn, flow_run_id, row, due)
    return True


def requeue(conn: sa.Connection, flow_run_id: uuid.UUID, row: sa.RowMapping, due: float) -> None:
    """Put a run back in its deployment's queue, due at `due`, its claim cleared. `row` has
    its flow_id, deployment_id, work_pool_id and work_queue_id."""
    conn.execute(
        sa.update(flow_run)
        .where(flow_run.c.id == flow_run_id)
        .values(worker_id=None, claim_token=None, expected_start_time=due)
    )
    if row["deployment_id"] is None:
        return
    target = DeploymentTarget(
        id=row["deployment_id"],
        flow_id=row["flow_id"],
        work_pool_id=row["work_pool_id"],
        work_queue_id=row["work_queue_id"],
        tags=[],
    )
    enqueue(conn, [(flow_run_id, target, due)])


def retry(conn: sa.Connection, *, flow_run_id: uuid.UUID) -> RunPosition:
    """Run a finished deployment run again: AwaitingRetry, due now, back in its queue.

    The next attempt runs under the same flow run id, so tasks whose results were
    persisted in an earlier attempt are reused (their cache keys include the run id).

    Raises:
        ObjectNotFound: no such run.
        Conflict: the run is not Failed, Crashed or Cancelled, or has no deployment.
    """
    row = _settling_row(conn, flow_run_id)
    kind = StateType(row["state_type"])
    if kind not in (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} is {kind.value}; only a Failed, Crashed or "
            "Cancelled run can be retried."
        )
    if row["deployment_id"] is None:
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} has no deployment, so no worker can run it again; "
            "run its flow again instead (tasks that persisted results are reused by their "
            "cache keys)."
        )
    now = time.time()
    current = RunPosition(kind, row["run_count"], row["state_timestamp"])
    moved = flow_runs.change_state(
        conn,
        flow_run_id=flow_run_id,
        current=current,
        state_id=uuid.UUID(uuid7_hex()),
        state_type=StateType.SCHEDULED,
        name="AwaitingRetry",
        message=f"Retry of attempt {row['run_count']}, asked for by a user.",
        timestamp=max(now, current.state_timestamp),
    )
    if not moved:
        raise Conflict("The run's state changed meanwhile; read it again and retry.")
    requeue(conn, flow_run_id, row, now)
    return flow_runs.current_state(conn, flow_run_id=flow_run_id)
