"""Work pools, their queues and workers: create, read, update, delete, heartbeats.

Every pool has a queue named "default" (priority 1), made with the pool and
never deleted. A worker is a row per (pool, name), upserted by each
heartbeat; `serve` processes are workers without a pool. A worker is online
while its last heartbeat is at most `offline_after(interval)` old: three
missed heartbeats, and at least `MIN_OFFLINE_AFTER` seconds (a short
interval must not turn a busy process offline over one slow request).
"""

from __future__ import annotations

import shlex
import uuid
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7_hex
from headwater.exceptions import Conflict, ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.work_pools import (
    WorkerResponse,
    WorkerStatus,
    WorkPoolCreate,
    WorkPoolResponse,
    WorkPoolStatus,
    WorkQueueCreate,
    WorkQueueResponse,
)
from headwater.server.repositories import events
from headwater.server.repositories._common import total, upsertable_insert
from headwater.store.tables import (
    deployment,
    flow,
    flow_run,
    flow_run_queue,
    work_pool,
    work_queue,
    worker,
)

#: The queue every pool has.
DEFAULT_QUEUE = "default"
#: A worker is offline after this many heartbeat intervals without one ...
OFFLINE_AFTER_HEARTBEATS = 3
#: ... and never sooner than this many seconds.
MIN_OFFLINE_AFTER = 10.0
#: Deployments a 409 names before "and N more".
_NAMED = 10
#: First key of the PostgreSQL advisory locks that serialise one worker's heartbeats.
_HEARTBEAT_LOCK_CLASS = 0x4857_4B52


def offline_after(heartbeat_interval: float) -> float:
    """Seconds without a heartbeat after which a worker is offline (and its runs recovered)."""
    return max(OFFLINE_AFTER_HEARTBEATS * heartbeat_interval, MIN_OFFLINE_AFTER)


def is_online(last_heartbeat: float, heartbeat_interval: float, now: float) -> bool:
    return now - last_heartbeat <= offline_after(heartbeat_interval)


# -- Pools ---------------------------------------------------------------------------------


def pool_not_found(name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"No work pool named {name!r}; create it with "
        f"`headwater work-pool create {_quoted(name)} --type process`."
    )


def _quoted(name: str) -> str:
    """`name` as a shell word, for the commands messages suggest."""
    return shlex.quote(name)


def pool_row(conn: sa.Connection, name: str) -> sa.RowMapping:
    """The work pool named `name` as a row (id, paused, concurrency_limit, ...).

    Raises:
        ObjectNotFound: there is none; the message says how to create it.
    """
    row = conn.execute(sa.select(work_pool).where(work_pool.c.name == name)).mappings().first()
    if row is None:
        raise pool_not_found(name)
    return row


def _pool_responses(
    conn: sa.Connection, rows: Sequence[sa.RowMapping], now: float
) -> list[WorkPoolResponse]:
    ids = [row["id"] for row in rows]
    online: set[uuid.UUID] = set()
    defaults: dict[uuid.UUID, uuid.UUID] = {}
    if ids:
        heartbeats = sa.select(
            worker.c.work_pool_id, worker.c.heartbeat_interval, worker.c.last_heartbeat
        ).where(worker.c.work_pool_id.in_(ids))
        for pool_id, interval, last in conn.execute(heartbeats):
            if is_online(last, interval, now):
                online.add(pool_id)
        queues = sa.select(work_queue.c.work_pool_id, work_queue.c.id).where(
            work_queue.c.work_pool_id.in_(ids), work_queue.c.name == DEFAULT_QUEUE
        )
        defaults = {pool_id: queue_id for pool_id, queue_id in conn.execute(queues)}
    responses = []
    for row in rows:
        if row["paused"]:
            status = WorkPoolStatus.PAUSED
        elif row["id"] in online:
            status = WorkPoolStatus.READY
        else:
            status = WorkPoolStatus.NOT_READY
        responses.append(
            WorkPoolResponse(
                id=row["id"],
                name=row["name"],
                type=row["type"],
                description=row["description"],
                base_job_template=row["base_job_template"] or {},
                concurrency_limit=row["concurrency_limit"],
                paused=row["paused"],
                status=status,
                default_queue_id=defaults.get(row["id"]),
                created=utc(row["created"]),
                updated=utc(row["updated"]),
            )
        )
    return responses


def read_pool(conn: sa.Connection, *, name: str, now: float) -> WorkPoolResponse:
    """The work pool named `name`, with its status.

    Raises:
        ObjectNotFound: there is none.
    """
    return _pool_responses(conn, [pool_row(conn, name)], now)[0]


def list_pools(
    conn: sa.Connection, *, offset: int, limit: int, now: float
) -> tuple[list[WorkPoolResponse], int]:
    """One page of work pools by name, and how many there are."""
    query = sa.select(work_pool)
    rows = conn.execute(query.order_by(work_pool.c.name).offset(offset).limit(limit)).mappings()
    items = _pool_responses(conn, list(rows), now)
    if offset == 0 and len(items) < limit:
        return items, len(items)
    return items, total(conn, query)


def create_pool(
    conn: sa.Connection, *, body: WorkPoolCreate, base_job_template: dict[str, Any], now: float
) -> WorkPoolResponse:
    """Create a work pool and its "default" queue.

    Raises:
        Conflict: a pool of that name exists.
    """
    pool_id = uuid.UUID(uuid7_hex())
    insert = (
        upsertable_insert(conn, work_pool)
        .values(
            id=pool_id,
            name=body.name,
            type=body.type,
            description=body.description,
            base_job_template=base_job_template,
            concurrency_limit=body.concurrency_limit,
            paused=body.paused,
            created=now,
            updated=now,
        )
        .on_conflict_do_nothing()
        .returning(work_pool.c.id)
    )
    # RETURNING, not rowcount: psycopg reports -1 for these inserts.
    if conn.execute(insert).first() is None:
        raise Conflict(
            f"A work pool named {body.name!r} already exists; see it with `headwater "
            f"work-pool inspect {_quoted(body.name)}`, or choose another name."
        )
    _pool_event(conn, "created", pool_id, body.name)
    default_queue_id = uuid.UUID(uuid7_hex())
    conn.execute(
        sa.insert(work_queue).values(
            id=default_queue_id,
            work_pool_id=pool_id,
            name=DEFAULT_QUEUE,
            description="The pool's default queue.",
            priority=1,
            concurrency_limit=None,
            paused=False,
            created=now,
            updated=now,
        )
    )
    _queue_event(conn, "created", default_queue_id, DEFAULT_QUEUE, pool_id, body.name)
    return read_pool(conn, name=body.name, now=now)


def _pool_event(conn: sa.Connection, action: str, pool_id: uuid.UUID, name: str) -> None:
    events.emit(
        conn, f"headwater.work-pool.{action}", kind="work-pool", resource_id=pool_id, name=name
    )


def _queue_event(
    conn: sa.Connection,
    action: str,
    queue_id: uuid.UUID,
    name: str,
    pool_id: uuid.UUID,
    pool_name: str,
) -> None:
    events.emit(
        conn,
        f"headwater.work-queue.{action}",
        kind="work-queue",
        resource_id=queue_id,
        name=name,
        related=[("work-pool", pool_id, pool_name)],
    )


def _change_events(row: sa.RowMapping, changes: dict[str, Any]) -> list[str]:
    """The lifecycle actions of applying `changes` to `row`: paused/resumed, updated."""
    actions = []
    if "paused" in changes and changes["paused"] != row["paused"]:
        actions.append("paused" if changes["paused"] else "resumed")
    if any(key != "paused" and row.get(key) != value for key, value in changes.items()):
        actions.append("updated")
    return actions


def update_pool(
    conn: sa.Connection, *, name: str, changes: dict[str, Any], now: float
) -> WorkPoolResponse:
    """Change the given fields of the pool named `name`.

    Raises:
        ObjectNotFound: there is none.
    """
    row = pool_row(conn, name)
    if changes:
        conn.execute(
            sa.update(work_pool).where(work_pool.c.id == row["id"]).values(**changes, updated=now)
        )
        for action in _change_events(row, changes):
            _pool_event(conn, action, row["id"], name)
    return read_pool(conn, name=name, now=now)


def _deployments_using(conn: sa.Connection, condition: sa.ColumnElement[bool]) -> str | None:
    """ "2 deployments (etl/nightly, etl/hourly)" using something, or None."""
    names = conn.execute(
        sa.select(flow.c.name, deployment.c.name)
        .join_from(deployment, flow, flow.c.id == deployment.c.flow_id)
        .where(condition)
        .order_by(flow.c.name, deployment.c.name)
        .limit(_NAMED)
    ).all()
    if not names:
        return None
    count = total(conn, sa.select(deployment.c.id).where(condition))
    shown = ", ".join(f"{flow_name}/{deployment_name}" for flow_name, deployment_name in names)
    more = f" and {count - len(names)} more" if count > len(names) else ""
    return f"{count} deployment{'s' if count != 1 else ''} ({shown}{more})"


def deletable_pool(conn: sa.Connection, *, name: str) -> uuid.UUID:
    """The id of the pool named `name`, if no deployment uses it.

    Raises:
        ObjectNotFound: there is none. Conflict: deployments use it (named).
    """
    pool_id: uuid.UUID = pool_row(conn, name)["id"]
    used = _deployments_using(conn, deployment.c.work_pool_id == pool_id)
    if used:
        raise Conflict(
            f"Work pool {name!r} is used by {used}; point them at another pool or delete "
            "them first."
        )
    return pool_id


def waiting_in_pool(pool_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """Flow runs waiting in the pool's queues to be claimed."""
    return flow_run.c.id.in_(
        sa.select(flow_run_queue.c.flow_run_id).where(flow_run_queue.c.work_pool_id == pool_id)
    )


def delete_pool(conn: sa.Connection, *, pool_id: uuid.UUID) -> None:
    """Delete a pool (see `deletable_pool`) with its queues, workers and waiting-queue rows.

    Runs its workers had claimed are recovered by the lifecycle service, which
    treats a deleted worker as a dead one.
    """
    name = conn.execute(sa.select(work_pool.c.name).where(work_pool.c.id == pool_id)).scalar()
    _pool_event(conn, "deleted", pool_id, name or str(pool_id))
    # Explicit, not ON DELETE CASCADE: SQLite connections run without foreign keys.
    conn.execute(sa.delete(flow_run_queue).where(flow_run_queue.c.work_pool_id == pool_id))
    conn.execute(sa.delete(worker).where(worker.c.work_pool_id == pool_id))
    conn.execute(sa.delete(work_queue).where(work_queue.c.work_pool_id == pool_id))
    conn.execute(sa.delete(work_pool).where(work_pool.c.id == pool_id))


def due_runs(
    conn: sa.Connection,
    *,
    pool_id: uuid.UUID,
    now: float,
    queue_id: uuid.UUID | None = None,
    limit: int = 1000,
) -> list[uuid.UUID]:
    """Runs due in the pool (or one of its queues): whom to wake when it is resumed."""
    query = sa.select(flow_run_queue.c.flow_run_id).where(
        flow_run_queue.c.work_pool_id == pool_id, flow_run_queue.c.scheduled_time <= now
    )
    if queue_id is not None:
        query = query.where(flow_run_queue.c.work_queue_id == queue_id)
    return list(conn.execute(query.limit(limit)).scalars())


# -- Queues --------------------------------------------------------------------------------


def queue_not_found(pool: str, name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"No work queue named {name!r} in work pool {pool!r}; create it with "
        f"`headwater work-queue create {_quoted(name)} --pool {_quoted(pool)}`."
    )


def _queue_response(row: sa.RowMapping, pool_name: str) -> WorkQueueResponse:
    return WorkQueueResponse(
        id=row["id"],
        work_pool_id=row["work_pool_id"],
        work_pool_name=pool_name,
        name=row["name"],
        description=row["description"],
        priority=row["priority"],
        concurrency_limit=row["concurrency_limit"],
        paused=row["paused"],
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def queue_row(conn: sa.Connection, pool_id: uuid.UUID, pool: str, name: str) -> sa.RowMapping:
    """The queue `name` of a pool as a row.

    Raises:
        ObjectNotFound: there is none; the message says how to create it.
    """
    row = (
        conn.execute(
            sa.select(work_queue).where(
                work_queue.c.work_pool_id == pool_id, work_queue.c.name == name
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise queue_not_found(pool, name)
    return row


def list_queues(conn: sa.Connection, *, pool: str) -> list[WorkQueueResponse]:
    """The pool's queues, in the order they are served (priority, then name)."""
    pool_id = pool_row(conn, pool)["id"]
    rows = conn.execute(
        sa.select(work_queue)
        .where(work_queue.c.work_pool_id == pool_id)
        .order_by(work_queue.c.priority, work_queue.c.name)
    ).mappings()
    return [_queue_response(row, pool) for row in rows]


def read_queue(conn: sa.Connection, *, pool: str, name: str) -> WorkQueueResponse:
    """The queue `name` of the pool `pool`.

    Raises:
        ObjectNotFound: no such pool, or no such queue in it.
    """
    pool_id = pool_row(conn, pool)["id"]
    return _queue_response(queue_row(conn, pool_id, pool, name), pool)


def create_queue(
    conn: sa.Connection, *, pool: str, body: WorkQueueCreate, now: float
) -> WorkQueueResponse:
    """Create a queue in `pool`; without a priority, it is served after the others.

    Raises:
        ObjectNotFound: no such pool. Conflict: the pool has a queue of that name.
    """
    pool_id = pool_row(conn, pool)["id"]
    priority = body.priority
    if priority is None:
        highest = conn.execute(
            sa.select(sa.func.max(work_queue.c.priority)).where(
                work_queue.c.work_pool_id == pool_id
            )
        ).scalar_one()
        priority = min((highest or 0) + 1, 2**31 - 1)
    queue_id = uuid.UUID(uuid7_hex())
    insert = (
        upsertable_insert(conn, work_queue)
        .values(
            id=queue_id,
            work_pool_id=pool_id,
            name=body.name,
            description=body.description,
            priority=priority,
            concurrency_limit=body.concurrency_limit,
            paused=body.paused,
            created=now,
            updated=now,
        )
        .on_conflict_do_nothing()
        .returning(work_queue.c.id)
    )
    if conn.execute(insert).first() is None:
        raise Conflict(
            f"Work pool {pool!r} already has a queue named {body.name!r}; see it with "
            f"`headwater work-queue inspect {_quoted(body.name)} --pool {_quoted(pool)}`, "
            "or choose another name."
        )
    _queue_event(conn, "created", queue_id, body.name, pool_id, pool)
    return read_queue(conn, pool=pool, name=body.name)


def update_queue(
    conn: sa.Connection, *, pool: str, name: str, changes: dict[str, Any], now: float
) -> WorkQueueResponse:
    """Change the given fields of a queue.

    Raises:
        ObjectNotFound: no such pool or queue.
    """
    pool_id = pool_row(conn, pool)["id"]
    row = queue_row(conn, pool_id, pool, name)
    if changes:
        conn.execute(
            sa.update(work_queue).where(work_queue.c.id == row["id"]).values(**changes, updated=now)
        )
        for action in _change_events(row, changes):
            _queue_event(conn, action, row["id"], changes.get("name", name), pool_id, pool)
    return read_queue(conn, pool=pool, name=name)


def delete_queue(conn: sa.Connection, *, pool: str, name: str) -> None:
    """Delete a queue; the runs waiting in it move to the pool's default queue.

    Raises:
        ObjectNotFound: no such pool or queue.
        Conflict: it is the default queue, or deployments use it (named).
    """
    pool_id = pool_row(conn, pool)["id"]
    row = queue_row(conn, pool_id, pool, name)
    if name == DEFAULT_QUEUE:
        raise Conflict(
            f"The queue {DEFAULT_QUEUE!r} of work pool {pool!r} cannot be deleted: every pool "
            "has one. Pause it instead (`headwater work-queue pause default --pool "
            f"{_quoted(pool)}`)."
        )
    used = _deployments_using(conn, deployment.c.work_queue_id == row["id"])
    if used:
        raise Conflict(
            f"Work queue {name!r} of work pool {pool!r} is used by {used}; point them at "
            "another queue or delete them first."
        )
    default_id = queue_row(conn, pool_id, pool, DEFAULT_QUEUE)["id"]
    waiting = sa.select(flow_run_queue.c.flow_run_id).where(
        flow_run_queue.c.work_queue_id == row["id"]
    )
    conn.execute(
        sa.update(flow_run).where(flow_run.c.id.in_(waiting)).values(work_queue_id=default_id)
    )
    conn.execute(
        sa.update(flow_run_queue)
        .where(flow_run_queue.c.work_queue_id == row["id"])
        .values(work_queue_id=default_id)
    )
    conn.execute(sa.delete(work_queue).where(work_queue.c.id == row["id"]))
    _queue_event(conn, "deleted", row["id"], name, pool_id, pool)


# -- Workers -------------------------------------------------------------------------------


def _worker_response(
    row: sa.RowMapping | dict[str, Any], pool_name: str | None, now: float
) -> WorkerResponse:
    online = is_online(row["last_heartbeat"], row["heartbeat_interval"], now)
    return WorkerResponse(
        id=row["id"],
        name=row["name"],
        work_pool_id=row["work_pool_id"],
        work_pool_name=pool_name,
        heartbeat_interval=row["heartbeat_interval"],
        last_heartbeat=utc(row["last_heartbeat"]),
        status=WorkerStatus.ONLINE if online else WorkerStatus.OFFLINE,
        created=utc(row["created"]),
    )


def heartbeat(
    conn: sa.Connection,
    *,
    pool: str | None,
    name: str,
    heartbeat_interval: float,
    now: float,
) -> WorkerResponse:
    """Record that the worker `name` of `pool` (None: a `serve` process) is alive.

    The first heartbeat creates the worker; later ones update it (same id).

    Raises:
        ObjectNotFound: no such pool.
    """
    pool_id: uuid.UUID | None = None if pool is None else pool_row(conn, pool)["id"]
    same = sa.and_(
        worker.c.work_pool_id.is_(None) if pool_id is None else worker.c.work_pool_id == pool_id,
        worker.c.name == name,
    )
    if conn.dialect.name == "postgresql":
        # Two first heartbeats of one worker must not both insert (SQLite has one writer).
        key = zlib.crc32(f"{pool_id} {name}".encode()) - 2**31
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_HEARTBEAT_LOCK_CLASS, key)))
    found = conn.execute(
        sa.select(worker.c.id, worker.c.created, worker.c.announced)
        .where(same)
        .order_by(worker.c.created)
        .limit(1)
    ).first()
    if found is not None and found[2] != "started":
        # The first heartbeat after the worker was declared offline (the very first: below).
        events.emit(
            conn,
            "headwater.worker.started",
            kind="worker",
            resource_id=found[0],
            name=name,
            related=[("work-pool", pool_id, pool)],
        )
    if found is None:
        worker_id, created = uuid.UUID(uuid7_hex()), now
        conn.execute(
            sa.insert(worker).values(
                id=worker_id,
                work_pool_id=pool_id,
                name=name,
                heartbeat_interval=heartbeat_interval,
                last_heartbeat=now,
                created=now,
                announced="started",
            )
        )
        events.emit(
            conn,
            "headwater.worker.started",
            kind="worker",
            resource_id=worker_id,
            name=name,
            related=[("work-pool", pool_id, pool)],
        )
    else:
        worker_id, created = found[0], found[1]
        conn.execute(
            sa.update(worker)
            .where(worker.c.id == worker_id)
            .values(heartbeat_interval=heartbeat_interval, last_heartbeat=now, announced="started")
        )
    row = {
        "id": worker_id,
        "name": name,
        "work_pool_id": pool_id,
        "heartbeat_interval": heartbeat_interval,
        "last_heartbeat": now,
        "created": created,
    }
    return _worker_response(row, pool, now)


def list_workers(conn: sa.Connection, *, pool: str, now: float) -> list[WorkerResponse]:
    """The pool's workers, most recently heard from first, with their status."""
    pool_id = pool_row(conn, pool)["id"]
    rows = conn.execute(
        sa.select(worker)
        .where(worker.c.work_pool_id == pool_id)
        .order_by(worker.c.last_heartbeat.desc(), worker.c.name)
    ).mappings()
    return [_worker_response(row, pool, now) for row in rows]


def hex_ids(ids: Iterable[uuid.UUID]) -> frozenset[str]:
    """Flow run ids as the notifier and the services' outcomes carry them."""
    return frozenset(value.hex for value in ids)
