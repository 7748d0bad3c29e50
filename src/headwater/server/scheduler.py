"""The scheduler service: creates the runs of deployment schedules ahead of time.

Every services round, for each active schedule of each deployment that is not
paused, the scheduler makes sure the runs due soon exist (`SchedulerPolicy`):
at least `min_runs` future runs and every time in the next `lookahead`
seconds, at most `max_runs` future runs and nothing beyond `max_lookahead`.
A run is a Scheduled flow run queued for its work pool (or `serve`), with the
deployment's parameters updated by the schedule's, the deployment's tags,
and the idempotency key "scheduled <deployment> <schedule> <time>": the
unique index on (flow_id, idempotency_key) makes a restarted scheduler, a
second services process or a replica skip a run that exists, never double it.

After downtime, each schedule's `catchup` says what happens to the times it
missed: those after the latest run the schedule made (and after the schedule
and its deployment last changed) and before now. SKIP forgets them, LATEST
runs the most recent one, ALL runs every one (the most recent
`max_catchup_runs`). A catch-up run keeps its scheduled time, so it is due at
once. A schedule that has made no run yet has missed nothing.

Work is done in chunks of schedules, one transaction each: one query pages
the schedules (on PostgreSQL it also takes a share lock on their deployments),
one reads them with the latest and future run of each, and one `insert_runs`
creates the runs. `delete_future_runs`, which the API calls when a schedule or
its deployment changes, locks the deployment row for update: a chunk that read
the old schedule has committed before the delete looks, and a chunk that starts
after it reads the new one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from headwater.core import schedules
from headwater.core.states import StateType
from headwater.engine.names import generate_run_name
from headwater.server.repositories.deployment_runs import DeploymentTarget, NewRun, insert_runs
from headwater.server.services import Outcome
from headwater.store.tables import (
    deployment,
    deployment_schedule,
    flow_run,
    flow_run_queue,
    state,
)

if TYPE_CHECKING:
    from headwater.server.database import Database

logger = logging.getLogger(__name__)

SKIP, LATEST, ALL = "SKIP", "LATEST", "ALL"


@dataclasses.dataclass(frozen=True, slots=True)
class SchedulerPolicy:
    """How far ahead the scheduler creates runs, and how much it catches up."""

    #: each schedule has at least this many future runs...
    min_runs: int = 3
    #: ...and a run for every time in the next this many seconds
    lookahead: float = 300.0
    #: at most this many future runs per schedule (so also per round)
    max_runs: int = 100
    #: and none further ahead than this (100 days)
    max_lookahead: float = 100 * 86_400.0
    #: catch-up ALL runs at most the most recent this many missed times
    max_catchup_runs: int = 100
    #: schedules read, computed and written per transaction
    chunk_size: int = 500


DEFAULT_POLICY = SchedulerPolicy()


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduleRow:
    """What the scheduler reads about one schedule and its deployment."""

    id: uuid.UUID
    spec: Mapping[str, Any]
    catchup: str
    parameters: Mapping[str, Any]
    #: when the schedule or its deployment last changed
    changed: float
    target: DeploymentTarget
    deployment_parameters: Mapping[str, Any]
    #: the latest expected start time of a run this schedule made (None: none yet)
    latest: float | None
    #: how many of its runs are due at or after now
    future_runs: int


def schedule_runs(db: Database, now: float, policy: SchedulerPolicy = DEFAULT_POLICY) -> Outcome:
    """Create the runs every active schedule is due to make; see the module docstring."""
    created: list[uuid.UUID] = []
    after: uuid.UUID | None = None
    while True:
        with db.write() as conn:
            page = _page(conn, after, policy.chunk_size)
            if not page:
                break
            after = page[-1]
            rows = _read(conn, page, now)
            runs = [run for row in rows for run in _runs(row, now, policy)]
            created.extend(insert_runs(conn, runs))
        if len(page) < policy.chunk_size:
            break
    if created:
        logger.info("Scheduled %d flow runs", len(created))
    return Outcome(changed=len(created), flow_run_ids=frozenset(run.hex for run in created))


def due_times(
    spec: Mapping[str, Any] | schedules.Spec,
    *,
    catchup: str,
    latest: float | None,
    changed: float,
    future_runs: int,
    now: float,
    policy: SchedulerPolicy = DEFAULT_POLICY,
) -> list[float]:
    """The times a schedule needs runs for now, beyond those it made; see the module docstring.

    `latest` is the latest time it made a run for (None: never), `changed` when the
    schedule or its deployment last changed, `future_runs` how many runs it has at or
    after `now`.
    """
    times: list[float] = []
    if latest is not None and latest < now and catchup in (LATEST, ALL):
        count = 1 if catchup == LATEST else policy.max_catchup_runs
        missed = schedules.previous_times(spec, now, count=count, since=max(latest, changed))
        times.extend(reversed(missed))
    horizon = now + policy.lookahead
    # Times from now on (inclusive), after the runs already made.
    start = math.nextafter(now, -math.inf)
    if latest is not None and latest > start:
        start = latest
    have = future_runs
    if start >= horizon and have >= policy.min_runs:
        return times
    for moment in schedules.iter_times(spec, start):
        if moment > now + policy.max_lookahead or have >= policy.max_runs:
            break
        if moment > horizon and have >= policy.min_runs:
            break
        times.append(moment)
        have += 1
        if moment >= horizon and have >= policy.min_runs:
            break  # every later time is past the horizon too: no need to compute it
    return times


def idempotency_key(deployment_id: uuid.UUID, schedule_id: uuid.UUID, moment: float) -> str:
    """The key of a schedule's run at `moment`: one run per (deployment, schedule, time)."""
    iso = dt.datetime.fromtimestamp(moment, dt.UTC).isoformat()
    return f"scheduled {deployment_id} {schedule_id} {iso}"


def delete_future_runs(
    conn: sa.Connection,
    *,
    deployment_id: uuid.UUID,
    schedule_id: uuid.UUID | None = None,
    now: float,
) -> list[uuid.UUID]:
    """Delete the runs schedules made that are still waiting to start; their ids.

    Those of the deployment's schedules (or of `schedule_id` only) that are
    Scheduled, still queued and due at or after `now`, with their states and
    queue rows. Call it in the transaction that edits, deactivates or deletes a
    schedule, or pauses the deployment or changes its parameters: the next
    scheduler round creates the runs again from the new settings. It takes the
    deployment row's lock, so a scheduler transaction that read the old
    settings is committed first and its runs are deleted too.
    """
    conn.execute(
        sa.select(deployment.c.id).where(deployment.c.id == deployment_id).with_for_update()
    )
    query = (
        sa.select(flow_run.c.id)
        .join(flow_run_queue, flow_run_queue.c.flow_run_id == flow_run.c.id)
        .where(
            flow_run_queue.c.deployment_id == deployment_id,
            flow_run.c.deployment_id == deployment_id,
            flow_run.c.schedule_id.is_not(None),
            flow_run.c.state_type == StateType.SCHEDULED.value,
            flow_run.c.expected_start_time >= now,
        )
    )
    if schedule_id is not None:
        query = query.where(flow_run.c.schedule_id == schedule_id)
    ids = [row[0] for row in conn.execute(query)]
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        conn.execute(
            sa.delete(state).where(state.c.flow_run_id.in_(chunk), state.c.task_run_id.is_(None))
        )
        conn.execute(sa.delete(flow_run_queue).where(flow_run_queue.c.flow_run_id.in_(chunk)))
        conn.execute(sa.delete(flow_run).where(flow_run.c.id.in_(chunk)))
    return ids


# -- Reading -----------------------------------------------------------------------------


def _page(conn: sa.Connection, after: uuid.UUID | None, size: int) -> list[uuid.UUID]:
    """The next `size` active schedules of deployments not paused, by id; locks those
    deployments against changes (PostgreSQL) until the transaction ends."""
    query = (
        sa.select(deployment_schedule.c.id)
        .join(deployment, deployment.c.id == deployment_schedule.c.deployment_id)
        .where(deployment_schedule.c.active.is_(True), deployment.c.paused.is_(False))
        .order_by(deployment_schedule.c.id)
        .limit(size)
        .with_for_update(read=True, of=deployment)
    )
    if after is not None:
        query = query.where(deployment_schedule.c.id > after)
    return [row[0] for row in conn.execute(query)]


def _read(conn: sa.Connection, ids: Sequence[uuid.UUID], now: float) -> list[ScheduleRow]:
    """The schedules `ids` as they are now (a new statement: after the locks were taken)."""
    mine = flow_run.c.schedule_id == deployment_schedule.c.id
    latest = sa.select(sa.func.max(flow_run.c.expected_start_time)).where(mine)
    future = (
        sa.select(sa.func.count())
        .select_from(flow_run)
        .where(mine, flow_run.c.expected_start_time >= now)
    )
    query = (
        sa.select(
            deployment_schedule.c.id,
            deployment_schedule.c.schedule,
            deployment_schedule.c.catchup,
            deployment_schedule.c.parameters,
            deployment_schedule.c.updated,
            deployment.c.id.label("deployment_id"),
            deployment.c.flow_id,
            deployment.c.work_pool_id,
            deployment.c.work_queue_id,
            deployment.c.tags,
            deployment.c.parameters.label("deployment_parameters"),
            deployment.c.updated.label("deployment_updated"),
            latest.scalar_subquery().label("latest"),
            future.scalar_subquery().label("future_runs"),
        )
        .join(deployment, deployment.c.id == deployment_schedule.c.deployment_id)
        .where(
            deployment_schedule.c.id.in_(ids),
            deployment_schedule.c.active.is_(True),
            deployment.c.paused.is_(False),
        )
        .order_by(deployment_schedule.c.id)
    )
    return [
        ScheduleRow(
            id=row.id,
            spec=row.schedule,
            catchup=row.catchup,
            parameters=row.parameters or {},
            changed=max(row.updated, row.deployment_updated),
            target=DeploymentTarget(
                id=row.deployment_id,
                flow_id=row.flow_id,
                work_pool_id=row.work_pool_id,
                work_queue_id=row.work_queue_id,
                tags=list(row.tags or []),
            ),
            deployment_parameters=row.deployment_parameters or {},
            latest=row.latest,
            future_runs=int(row.future_runs),
        )
        for row in conn.execute(query)
    ]


def _runs(row: ScheduleRow, now: float, policy: SchedulerPolicy) -> list[NewRun]:
    """The runs `row` needs now; a schedule that cannot be read is logged and skipped."""
    try:
        spec = schedules.parse_schedule(row.spec, check=False)
        times = due_times(
            spec,
            catchup=row.catchup,
            latest=row.latest,
            changed=row.changed,
            future_runs=row.future_runs,
            now=now,
            policy=policy,
        )
    except Exception as exc:  # one broken schedule must not stop the others
        logger.warning(
            "Schedule %s of deployment %s is skipped: %s: %s",
            row.id,
            row.target.id,
            type(exc).__name__,
            exc,
        )
        return []
    parameters = {**row.deployment_parameters, **row.parameters}
    return [
        NewRun(
            deployment=row.target,
            scheduled_time=moment,
            parameters=dict(parameters),
            name=generate_run_name(),
            idempotency_key=idempotency_key(row.target.id, row.id, moment),
            schedule_id=row.id,
        )
        for moment in times
    ]
