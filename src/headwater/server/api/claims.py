"""Workers and `serve` claim due runs here, long-polling; a claimed run's process begins it.

`POST /api/work_pools/{name}/get_scheduled_flow_runs` (a pool's worker) and
`POST /api/deployments/get_scheduled_flow_runs` (a `serve` process) claim up to
`limit` due runs. With `wait`, the request stays open until a run is due, a
notification says runs changed (a run created, a run of `running` being
cancelled), or `wait` seconds pass: a run created now starts without waiting
for a polling interval.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from headwater.exceptions import ObjectNotFound
from headwater.schemas.deployments import (
    BeginRequest,
    CancelRequest,
    CancelResponse,
    ClaimedRun,
    ClaimRequest,
    ClaimResponse,
    ExitReport,
)
from headwater.schemas.flow_runs import FlowRunResponse
from headwater.server.api._responses import errors
from headwater.server.config import ServerConfig
from headwater.server.database import Database
from headwater.server.dependencies import ConfigDep, DatabaseDep
from headwater.server.notifications import Notifier, NotifierDep
from headwater.server.repositories import claims, deployments, flow_runs
from headwater.store.tables import deployment, flow_run, work_pool

router = APIRouter(tags=["workers"])

#: Seconds between two claim attempts of a waiting request when nothing woke it (a run
#: written by another process on SQLite, which cannot notify this one).
POLL_INTERVAL = 1.0


def _pool(db: Database, name: str) -> tuple[uuid.UUID, dict[str, Any]]:
    with db.read() as conn:
        row = conn.execute(
            sa.select(work_pool.c.id, work_pool.c.base_job_template).where(work_pool.c.name == name)
        ).first()
    if row is None:
        raise ObjectNotFound(
            f"No work pool named {name!r}; create it with "
            f"`headwater work-pool create {name} --type process`."
        )
    return row.id, row.base_job_template or {}


def _claim_once(
    db: Database,
    body: ClaimRequest,
    *,
    pool_id: uuid.UUID | None,
    template: dict[str, Any],
    deployment_ids: list[uuid.UUID],
) -> tuple[ClaimResponse, list[uuid.UUID]]:
    """One claim attempt: (the answer, ids of the runs whose state changed)."""
    worker_id = uuid.UUID(body.worker_id)
    running = [uuid.UUID(i) for i in body.running]
    now = time.time()
    with db.write() as conn:
        if pool_id is None:
            deployments.mark_polled(conn, deployment_ids, now)
        result = claims.claim(
            conn,
            worker_id=worker_id,
            limit=body.limit,
            now=now,
            work_pool_id=pool_id,
            work_queue_names=body.work_queue_names,
            deployment_ids=deployment_ids,
        )
        claimed = []
        for item in result.claimed:
            run = flow_runs.read(conn, flow_run_id=item.flow_run_id)
            row = conn.execute(
                sa.select(
                    deployment.c.name,
                    deployment.c.version,
                    deployment.c.entrypoint,
                    deployment.c.path,
                    deployment.c.job_variables,
                    flow_run.c.job_variables.label("run_job_variables"),
                )
                .join(flow_run, flow_run.c.deployment_id == deployment.c.id)
                .where(flow_run.c.id == item.flow_run_id)
            ).one()
            try:
                configuration = _job_configuration(
                    template, row.job_variables or {}, row.run_job_variables or {}
                )
            except ValueError as exc:  # JobTemplateError: the run cannot start as configured
                claims.fail_claimed(conn, flow_run_id=item.flow_run_id, message=str(exc))
                result.cancelled.append(item.flow_run_id)
                continue
            claimed.append(
                ClaimedRun(
                    flow_run=run,
                    claim_token=item.claim_token,
                    deployment_id=item.deployment_id,
                    deployment_name=row.name,
                    deployment_version=row.version,
                    entrypoint=row.entrypoint,
                    path=row.path,
                    job_configuration=configuration,
                )
            )
        cancelling = claims.cancelling_among(conn, running)
    changed = [c.flow_run.id for c in claimed] + result.cancelled
    return ClaimResponse(flow_runs=claimed, cancelling=cancelling), changed


def _job_configuration(
    template: dict[str, Any], deployment_variables: dict[str, Any], run_variables: dict[str, Any]
) -> dict[str, Any]:
    if not template:
        return {**deployment_variables, **run_variables}
    from headwater.worker.infrastructure import render_job_configuration

    return render_job_configuration(
        template, deployment_job_variables=deployment_variables, run_job_variables=run_variables
    )


async def _claim(
    request: Request,
    db: Database,
    notifier: Notifier,
    config: ServerConfig,
    body: ClaimRequest,
    *,
    pool_name: str | None,
) -> ClaimResponse:
    pool_id: uuid.UUID | None = None
    template: dict[str, Any] = {}
    if pool_name is not None:
        pool_id, template = await run_in_threadpool(_pool, db, pool_name)
    deployment_ids = [uuid.UUID(i) for i in body.deployment_ids]
    deadline = time.monotonic() + min(body.wait, config.claim_max_wait)
    # Subscribed before the first attempt: a run created meanwhile wakes us.
    async with notifier.subscribe() as subscription:
        while True:
            answer, changed = await run_in_threadpool(
                _claim_once,
                db,
                body,
                pool_id=pool_id,
                template=template,
                deployment_ids=deployment_ids,
            )
            if changed:
                notifier.publish(changed)
            remaining = deadline - time.monotonic()
            if answer.flow_runs or answer.cancelling or remaining <= 0:
                return answer
            due = await run_in_threadpool(_next_due, db, pool_id, deployment_ids)
            timeout = min(remaining, POLL_INTERVAL)
            if due is not None:
                timeout = max(0.0, min(timeout, due - time.time()))
            if timeout > 0:
                try:
                    await subscription.wait(timeout)
                except asyncio.CancelledError:
                    # The server is shutting down: answer "nothing yet" rather than fail;
                    # the worker asks again (of this server when it is back, or a replica).
                    return answer
            if await request.is_disconnected():
                return answer  # the worker is gone: nothing was claimed for it


def _next_due(
    db: Database, pool_id: uuid.UUID | None, deployment_ids: list[uuid.UUID]
) -> float | None:
    with db.read() as conn:
        return claims.next_due(conn, work_pool_id=pool_id, deployment_ids=deployment_ids)


@router.post("/work_pools/{name}/get_scheduled_flow_runs", responses=errors(404))
async def claim_pool_runs(
    request: Request,
    db: DatabaseDep,
    notifier: NotifierDep,
    config: ConfigDep,
    name: str,
    body: ClaimRequest,
) -> ClaimResponse:
    """Claim due runs of the pool's queues for `worker_id` (highest priority queue first).

    Each claimed run moves to Pending with a claim token; start it with that
    token (`/flow_runs/{id}/begin`). `cancelling` lists the runs of `running`
    that are being cancelled: stop their processes.
    """
    return await _claim(request, db, notifier, config, body, pool_name=name)


@router.post("/deployments/get_scheduled_flow_runs")
async def claim_deployment_runs(
    request: Request, db: DatabaseDep, notifier: NotifierDep, config: ConfigDep, body: ClaimRequest
) -> ClaimResponse:
    """Claim due runs of `deployment_ids` (deployments without a work pool): `serve` asks here,
    which also marks those deployments READY."""
    return await _claim(request, db, notifier, config, body, pool_name=None)


@router.post("/flow_runs/{flow_run_id}/begin", responses=errors(404, 409))
def begin_flow_run(
    db: DatabaseDep, notifier: NotifierDep, flow_run_id: uuid.UUID, body: BeginRequest
) -> FlowRunResponse:
    """Start a claimed run: Pending -> Running, if `claim_token` is its current claim.

    409 means the process must not run the flow: the run was cancelled,
    reclaimed by another worker, or started already.
    """
    with db.write() as conn:
        claims.begin(
            conn,
            flow_run_id=flow_run_id,
            claim_token=body.claim_token,
            retries=body.retries,
            retry_delay_seconds=body.retry_delay_seconds,
            process=body.process,
        )
        run = flow_runs.read(conn, flow_run_id=flow_run_id)
    notifier.publish([flow_run_id])
    return run


@router.post("/flow_runs/{flow_run_id}/cancel", responses=errors(404, 409))
def cancel_flow_run(
    db: DatabaseDep,
    notifier: NotifierDep,
    flow_run_id: uuid.UUID,
    body: CancelRequest | None = None,
) -> CancelResponse:
    """Cancel a run. Not started yet: Cancelled at once. Pending or Running: Cancelling, and
    its worker stops the process within seconds, then marks it Cancelled. 409 if it is
    already in a final state."""
    with db.write() as conn:
        position = claims.cancel(
            conn, flow_run_id=flow_run_id, message=body.message if body else None
        )
        run = flow_runs.read(conn, flow_run_id=flow_run_id)
    notifier.publish([flow_run_id])
    return CancelResponse(
        flow_run_id=flow_run_id, state_type=position.state_type, state_name=run.state_name
    )


@router.post("/flow_runs/{flow_run_id}/exited", responses=errors(404))
def process_exited(
    db: DatabaseDep, notifier: NotifierDep, flow_run_id: uuid.UUID, body: ExitReport
) -> FlowRunResponse:
    """A worker reports that the process of this run ended.

    A run still Cancelling becomes Cancelled; one still Pending or Running
    crashed: Crashed, or queued again (AwaitingRetry) if the flow's retries
    allow. A run that settled itself is left as it is.
    """
    with db.write() as conn:
        claims.process_exited(
            conn, flow_run_id=flow_run_id, exit_code=body.exit_code, claim_token=body.claim_token
        )
        run = flow_runs.read(conn, flow_run_id=flow_run_id)
    notifier.publish([flow_run_id])
    return run


@router.post("/flow_runs/{flow_run_id}/retry", responses=errors(404, 409))
def retry_flow_run(
    db: DatabaseDep, notifier: NotifierDep, flow_run_id: uuid.UUID
) -> FlowRunResponse:
    """Run a Failed, Crashed or Cancelled run of a deployment again, under the same id: it is
    Scheduled (AwaitingRetry) due now, and tasks that persisted results in an earlier
    attempt are reused. 409 for a run in another state, or without a deployment."""
    with db.write() as conn:
        claims.retry(conn, flow_run_id=flow_run_id)
        run = flow_runs.read(conn, flow_run_id=flow_run_id)
    notifier.publish([flow_run_id])
    return run
