"""Work pools, their queues and workers: create, read, update, pause, delete, heartbeats."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Path, Query, Response

from headwater.core.states import StateType
from headwater.schemas._types import NAME_LENGTH, NO_NUL_PATTERN
from headwater.schemas.common import Page, Paging
from headwater.schemas.work_pools import (
    WorkerHeartbeat,
    WorkerResponse,
    WorkPoolCreate,
    WorkPoolResponse,
    WorkPoolTypeResponse,
    WorkPoolUpdate,
    WorkQueueCreate,
    WorkQueueResponse,
    WorkQueueUpdate,
)
from headwater.server import lifecycle
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.notifications import NotifierDep
from headwater.server.repositories import work_pools

if TYPE_CHECKING:
    import sqlalchemy as sa

router = APIRouter(tags=["work pools"])

PoolName = Annotated[
    str, Path(min_length=1, max_length=NAME_LENGTH, pattern=NO_NUL_PATTERN, description="Pool")
]
QueueName = Annotated[
    str, Path(min_length=1, max_length=NAME_LENGTH, pattern=NO_NUL_PATTERN, description="Queue")
]


# -- Types ---------------------------------------------------------------------------------


@router.get("/work_pool_types")
def list_work_pool_types() -> list[WorkPoolTypeResponse]:
    """The work pool types this server knows, with their default job templates."""
    from headwater.worker.infrastructure import default_base_job_template, infrastructure_types

    return [
        WorkPoolTypeResponse(type=name, base_job_template=default_base_job_template(name))
        for name in infrastructure_types()
    ]


# -- Pools ---------------------------------------------------------------------------------


@router.post("/work_pools", status_code=201, responses=errors(409, 422))
def create_work_pool(db: DatabaseDep, body: WorkPoolCreate) -> WorkPoolResponse:
    """Create a work pool, and its queue "default" (priority 1)."""
    template = body.base_job_template
    if template is None:
        from headwater.worker.infrastructure import default_base_job_template

        template = default_base_job_template(body.type)
    with db.write() as conn:
        return work_pools.create_pool(conn, body=body, base_job_template=template, now=time.time())


@router.get("/work_pools")
def list_work_pools(db: DatabaseDep, query: Annotated[Paging, Query()]) -> Page[WorkPoolResponse]:
    """Work pools by name, a page at a time."""
    with db.read() as conn:
        items, total = work_pools.list_pools(
            conn, offset=query.offset, limit=query.limit, now=time.time()
        )
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/work_pools/{pool}", responses=errors(404))
def read_work_pool(db: DatabaseDep, pool: PoolName) -> WorkPoolResponse:
    """The work pool named `pool`, with its status (READY when a worker is online)."""
    with db.read() as conn:
        return work_pools.read_pool(conn, name=pool, now=time.time())


def _update_pool(
    db: DatabaseDep, notifier: NotifierDep, pool: str, changes: dict[str, object]
) -> WorkPoolResponse:
    now = time.time()
    with db.write() as conn:
        before = work_pools.pool_row(conn, pool)
        updated = work_pools.update_pool(conn, name=pool, changes=changes, now=now)
        wake: list[uuid.UUID] = []
        if _opened(before, updated.paused, updated.concurrency_limit):
            wake = work_pools.due_runs(conn, pool_id=updated.id, now=now)
    notifier.publish(wake)
    return updated


def _opened(before: sa.RowMapping, paused: bool, limit: int | None) -> bool:
    """Whether a change may let waiting runs start (resumed, or a higher limit)."""
    if before["paused"] and not paused:
        return True
    old_limit = before["concurrency_limit"]
    return old_limit is not None and (limit is None or limit > old_limit)


@router.patch("/work_pools/{pool}", responses=errors(404, 422))
def update_work_pool(
    db: DatabaseDep, notifier: NotifierDep, pool: PoolName, body: WorkPoolUpdate
) -> WorkPoolResponse:
    """Change the fields given: description, base_job_template, concurrency_limit (null
    removes the limit), paused."""
    return _update_pool(db, notifier, pool, body.model_dump(exclude_unset=True))


@router.post("/work_pools/{pool}/pause", responses=errors(404))
def pause_work_pool(db: DatabaseDep, notifier: NotifierDep, pool: PoolName) -> WorkPoolResponse:
    """Pause the pool: workers claim none of its runs until it is resumed."""
    return _update_pool(db, notifier, pool, {"paused": True})


@router.post("/work_pools/{pool}/resume", responses=errors(404))
def resume_work_pool(db: DatabaseDep, notifier: NotifierDep, pool: PoolName) -> WorkPoolResponse:
    """Resume a paused pool; its due runs start at once."""
    return _update_pool(db, notifier, pool, {"paused": False})


@router.delete("/work_pools/{pool}", status_code=204, responses=errors(404, 409))
def delete_work_pool(db: DatabaseDep, notifier: NotifierDep, pool: PoolName) -> Response:
    """Delete a pool with its queues and workers (409 while deployments use it).

    Runs still waiting in its queues are Cancelled: no worker would ever claim them.
    """
    now = time.time()
    with db.write() as conn:
        pool_id = work_pools.deletable_pool(conn, name=pool)
        cancelled = lifecycle.change_states_where(
            conn,
            work_pools.waiting_in_pool(pool_id),
            state_type=StateType.CANCELLED,
            name="Cancelled",
            message=f"Work pool {pool!r} was deleted while the run waited in it.",
            timestamp=now,
        )
        work_pools.delete_pool(conn, pool_id=pool_id)
    notifier.publish(cancelled)
    return Response(status_code=204)


# -- Queues --------------------------------------------------------------------------------


@router.post("/work_pools/{pool}/queues", status_code=201, responses=errors(404, 409, 422))
def create_work_queue(db: DatabaseDep, pool: PoolName, body: WorkQueueCreate) -> WorkQueueResponse:
    """Create a queue in the pool; without `priority`, it is served after the others."""
    with db.write() as conn:
        return work_pools.create_queue(conn, pool=pool, body=body, now=time.time())


@router.get("/work_pools/{pool}/queues", responses=errors(404))
def list_work_queues(db: DatabaseDep, pool: PoolName) -> list[WorkQueueResponse]:
    """The pool's queues in the order they are served: priority 1 first, then by name."""
    with db.read() as conn:
        return work_pools.list_queues(conn, pool=pool)


@router.get("/work_pools/{pool}/queues/{queue}", responses=errors(404))
def read_work_queue(db: DatabaseDep, pool: PoolName, queue: QueueName) -> WorkQueueResponse:
    """One queue of the pool."""
    with db.read() as conn:
        return work_pools.read_queue(conn, pool=pool, name=queue)


def _update_queue(
    db: DatabaseDep, notifier: NotifierDep, pool: str, queue: str, changes: dict[str, object]
) -> WorkQueueResponse:
    now = time.time()
    with db.write() as conn:
        pool_id = work_pools.pool_row(conn, pool)["id"]
        before = work_pools.queue_row(conn, pool_id, pool, queue)
        updated = work_pools.update_queue(conn, pool=pool, name=queue, changes=changes, now=now)
        wake: list[uuid.UUID] = []
        if _opened(before, updated.paused, updated.concurrency_limit):
            wake = work_pools.due_runs(conn, pool_id=pool_id, queue_id=updated.id, now=now)
    notifier.publish(wake)
    return updated


@router.patch("/work_pools/{pool}/queues/{queue}", responses=errors(404, 422))
def update_work_queue(
    db: DatabaseDep,
    notifier: NotifierDep,
    pool: PoolName,
    queue: QueueName,
    body: WorkQueueUpdate,
) -> WorkQueueResponse:
    """Change the fields given: description, priority, concurrency_limit (null removes the
    limit), paused."""
    return _update_queue(db, notifier, pool, queue, body.model_dump(exclude_unset=True))


@router.post("/work_pools/{pool}/queues/{queue}/pause", responses=errors(404))
def pause_work_queue(
    db: DatabaseDep, notifier: NotifierDep, pool: PoolName, queue: QueueName
) -> WorkQueueResponse:
    """Pause the queue: workers claim none of its runs until it is resumed."""
    return _update_queue(db, notifier, pool, queue, {"paused": True})


@router.post("/work_pools/{pool}/queues/{queue}/resume", responses=errors(404))
def resume_work_queue(
    db: DatabaseDep, notifier: NotifierDep, pool: PoolName, queue: QueueName
) -> WorkQueueResponse:
    """Resume a paused queue; its due runs start at once."""
    return _update_queue(db, notifier, pool, queue, {"paused": False})


@router.delete("/work_pools/{pool}/queues/{queue}", status_code=204, responses=errors(404, 409))
def delete_work_queue(db: DatabaseDep, pool: PoolName, queue: QueueName) -> Response:
    """Delete a queue (not "default"; 409 while deployments use it); runs waiting in it
    move to the pool's default queue."""
    with db.write() as conn:
        work_pools.delete_queue(conn, pool=pool, name=queue)
    return Response(status_code=204)


# -- Workers -------------------------------------------------------------------------------


@router.post("/work_pools/{pool}/workers/heartbeat", responses=errors(404, 422))
def heartbeat_pool_worker(db: DatabaseDep, pool: PoolName, body: WorkerHeartbeat) -> WorkerResponse:
    """A worker of the pool is alive: the first heartbeat registers it (by name)."""
    with db.write() as conn:
        return work_pools.heartbeat(
            conn,
            pool=pool,
            name=body.name,
            heartbeat_interval=body.heartbeat_interval,
            now=time.time(),
        )


@router.get("/work_pools/{pool}/workers", responses=errors(404))
def list_pool_workers(db: DatabaseDep, pool: PoolName) -> list[WorkerResponse]:
    """The pool's workers, most recently heard from first, ONLINE or OFFLINE."""
    with db.read() as conn:
        return work_pools.list_workers(conn, pool=pool, now=time.time())


@router.post("/workers/heartbeat", responses=errors(422))
def heartbeat_worker(db: DatabaseDep, body: WorkerHeartbeat) -> WorkerResponse:
    """A process that runs flow runs without a pool (`flow.serve()`) is alive."""
    with db.write() as conn:
        return work_pools.heartbeat(
            conn,
            pool=None,
            name=body.name,
            heartbeat_interval=body.heartbeat_interval,
            now=time.time(),
        )
