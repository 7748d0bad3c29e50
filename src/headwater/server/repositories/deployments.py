"""Deployments: upsert, read, list, update, pause, delete, their schedules, and their runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import flow_id as flow_id_of
from headwater.core.ids import uuid7_hex
from headwater.exceptions import Conflict, ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.deployments import (
    CollisionStrategy,
    DeploymentCreate,
    DeploymentFlowRunCreate,
    DeploymentQuery,
    DeploymentResponse,
    DeploymentStatus,
    DeploymentUpdate,
)
from headwater.schemas.schedules import (
    Catchup,
    DeploymentScheduleCreate,
    DeploymentScheduleResponse,
    DeploymentScheduleUpdate,
)
from headwater.server.repositories import events
from headwater.server.repositories._common import has_all_tags, page, upsertable_insert
from headwater.server.repositories.deployment_runs import DeploymentTarget, NewRun, insert_runs
from headwater.server.repositories.work_pools import is_online
from headwater.store.tables import (
    deployment,
    deployment_schedule,
    flow,
    flow_run,
    flow_run_queue,
    state,
    work_pool,
    work_queue,
    worker,
)

#: A `serve` process that asked for runs within this many seconds makes its deployments READY.
SERVE_READY_SECONDS = 60.0

_COLUMNS = [
    *deployment.c,
    flow.c.name.label("flow_name"),
    work_pool.c.name.label("work_pool_name"),
    work_queue.c.name.label("work_queue_name"),
]


def _select() -> sa.Select[Any]:
    return (
        sa.select(*_COLUMNS)
        .join_from(deployment, flow, flow.c.id == deployment.c.flow_id)
        .outerjoin(work_pool, work_pool.c.id == deployment.c.work_pool_id)
        .outerjoin(work_queue, work_queue.c.id == deployment.c.work_queue_id)
    )


def _schedule_response(row: sa.RowMapping) -> DeploymentScheduleResponse:
    return DeploymentScheduleResponse(
        id=row["id"],
        deployment_id=row["deployment_id"],
        schedule=row["schedule"],
        active=row["active"],
        catchup=Catchup(row["catchup"]),
        parameters=row["parameters"] or {},
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def _schedules_of(
    conn: sa.Connection, deployment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[DeploymentScheduleResponse]]:
    found: dict[uuid.UUID, list[DeploymentScheduleResponse]] = {i: [] for i in deployment_ids}
    if not deployment_ids:
        return found
    query = (
        sa.select(deployment_schedule)
        .where(deployment_schedule.c.deployment_id.in_(deployment_ids))
        .order_by(deployment_schedule.c.created, deployment_schedule.c.id)
    )
    for row in conn.execute(query).mappings():
        found[row["deployment_id"]].append(_schedule_response(row))
    return found


def _ready_pools(conn: sa.Connection, pool_ids: set[uuid.UUID], now: float) -> set[uuid.UUID]:
    """The pools among `pool_ids` with an online worker (the rule of `work_pools.is_online`)."""
    if not pool_ids:
        return set()
    query = sa.select(
        worker.c.work_pool_id, worker.c.last_heartbeat, worker.c.heartbeat_interval
    ).where(worker.c.work_pool_id.in_(pool_ids))
    return {
        pool_id for pool_id, last, interval in conn.execute(query) if is_online(last, interval, now)
    }


def _responses(conn: sa.Connection, rows: Sequence[sa.RowMapping]) -> list[DeploymentResponse]:
    now = time.time()
    schedules = _schedules_of(conn, [row["id"] for row in rows])
    ready_pools = _ready_pools(
        conn, {row["work_pool_id"] for row in rows if row["work_pool_id"]}, now
    )
    responses = []
    for row in rows:
        if row["work_pool_id"] is not None:
            ready = row["work_pool_id"] in ready_pools
        else:
            polled = row["last_polled"]
            ready = polled is not None and polled >= now - SERVE_READY_SECONDS
        responses.append(
            DeploymentResponse(
                id=row["id"],
                name=row["name"],
                flow_id=row["flow_id"],
                flow_name=row["flow_name"],
                version=row["version"],
                description=row["description"],
                entrypoint=row["entrypoint"],
                path=row["path"],
                parameters=row["parameters"] or {},
                parameter_schema=row["parameter_schema"] or {},
                enforce_parameter_schema=row["enforce_parameter_schema"],
                tags=row["tags"] or [],
                work_pool_name=row["work_pool_name"],
                work_queue_name=row["work_queue_name"],
                job_variables=row["job_variables"] or {},
                concurrency_limit=row["concurrency_limit"],
                collision_strategy=CollisionStrategy(row["collision_strategy"]),
                paused=row["paused"],
                status=DeploymentStatus.READY if ready else DeploymentStatus.NOT_READY,
                last_polled=utc(row["last_polled"]),
                schedules=schedules[row["id"]],
                created=utc(row["created"]),
                updated=utc(row["updated"]),
            )
        )
    return responses


def read(conn: sa.Connection, *, deployment_id: uuid.UUID) -> DeploymentResponse:
    """The deployment with this id.

    Raises:
        ObjectNotFound: there is none.
    """
    row = conn.execute(_select().where(deployment.c.id == deployment_id)).mappings().first()
    if row is None:
        raise ObjectNotFound(f"No deployment found with id {str(deployment_id)!r}.")
    return _responses(conn, [row])[0]


def read_by_name(conn: sa.Connection, *, flow_name: str, name: str) -> DeploymentResponse:
    """The deployment `flow_name/name`.

    Raises:
        ObjectNotFound: there is none.
    """
    query = _select().where(flow.c.name == flow_name, deployment.c.name == name)
    row = conn.execute(query).mappings().first()
    if row is None:
        raise ObjectNotFound(
            f"No deployment named {f'{flow_name}/{name}'!r}; list them with "
            "`headwater deployment ls`."
        )
    return _responses(conn, [row])[0]


def list_deployments(
    conn: sa.Connection, query: DeploymentQuery
) -> tuple[list[DeploymentResponse], int]:
    """One page of the deployments matching `query` (by flow name, then name), and the total."""
    where: list[sa.ColumnElement[bool]] = []
    if query.flow_name is not None:
        where.append(flow.c.name == query.flow_name)
    if query.work_pool_name is not None:
        where.append(work_pool.c.name == query.work_pool_name)
    if query.paused is not None:
        where.append(deployment.c.paused == query.paused)
    if query.tag:
        where.extend(has_all_tags(conn, deployment.c.tags, query.tag))
    rows, total = page(
        conn,
        _select().where(*where),
        (flow.c.name, deployment.c.name),
        query.offset,
        query.limit,
        lambda row: row,
    )
    return _responses(conn, rows), total


def _pool_and_queue(
    conn: sa.Connection, pool_name: str | None, queue_name: str | None
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    if pool_name is None:
        if queue_name is not None:
            raise Conflict(
                f"work_queue_name {queue_name!r} needs a work_pool_name: queues belong to pools."
            )
        return None, None
    pool_id = conn.execute(
        sa.select(work_pool.c.id).where(work_pool.c.name == pool_name)
    ).scalar_one_or_none()
    if pool_id is None:
        raise ObjectNotFound(
            f"No work pool named {pool_name!r}; create it with "
            f"`headwater work-pool create {pool_name} --type process`."
        )
    queue = queue_name or "default"
    queue_id = conn.execute(
        sa.select(work_queue.c.id).where(
            work_queue.c.work_pool_id == pool_id, work_queue.c.name == queue
        )
    ).scalar_one_or_none()
    if queue_id is None:
        raise ObjectNotFound(
            f"No work queue named {queue!r} in work pool {pool_name!r}; create it with "
            f"`headwater work-queue create {queue} --pool {pool_name}`."
        )
    return pool_id, queue_id


def _check_job_variables(
    conn: sa.Connection, pool_id: uuid.UUID | None, job_variables: dict[str, Any] | None
) -> None:
    """Refuse job variables the pool's job template does not know, or of the wrong type
    (JobTemplateError, a 422 naming the variable), before anything is stored."""
    if pool_id is None or not job_variables:
        return
    from headwater.worker.infrastructure import check_job_variables

    template = conn.execute(
        sa.select(work_pool.c.base_job_template).where(work_pool.c.id == pool_id)
    ).scalar_one_or_none()
    check_job_variables(template or {}, job_variables)


def _ensure_flow(conn: sa.Connection, flow_name: str, now: float) -> uuid.UUID:
    conn.execute(
        upsertable_insert(conn, flow)
        .values(id=uuid.UUID(flow_id_of(flow_name)), name=flow_name, created=now)
        .on_conflict_do_nothing()
    )
    found: uuid.UUID = conn.execute(
        sa.select(flow.c.id).where(flow.c.name == flow_name)
    ).scalar_one()
    return found


def upsert(conn: sa.Connection, body: DeploymentCreate) -> tuple[DeploymentResponse, bool]:
    """Create the deployment, or update the one of this flow with this name; (it, created).

    Updating replaces its schedules, and deletes the future runs the old ones made.
    """
    from headwater.server.parameters import check_parameters

    check_parameters(body.parameter_schema, body.parameters, complete=False)
    now = time.time()
    flow_uuid = _ensure_flow(conn, body.flow_name, now)
    pool_id, queue_id = _pool_and_queue(conn, body.work_pool_name, body.work_queue_name)
    _check_job_variables(conn, pool_id, body.job_variables)
    values: dict[str, Any] = {
        "version": body.version,
        "description": body.description,
        "entrypoint": body.entrypoint,
        "path": body.path,
        "parameters": body.parameters,
        "parameter_schema": body.parameter_schema,
        "enforce_parameter_schema": body.enforce_parameter_schema,
        "tags": body.tags,
        "work_pool_id": pool_id,
        "work_queue_id": queue_id,
        "job_variables": body.job_variables,
        "concurrency_limit": body.concurrency_limit,
        "collision_strategy": body.collision_strategy.value,
        "paused": body.paused,
        "updated": now,
    }
    existing = conn.execute(
        sa.select(deployment).where(
            deployment.c.flow_id == flow_uuid, deployment.c.name == body.name
        )
    ).first()
    schedules = [_schedule_values(schedule) for schedule in body.schedules]
    if existing is None:
        deployment_id = uuid.UUID(uuid7_hex())
        inserted = conn.execute(
            upsertable_insert(conn, deployment)
            .values(id=deployment_id, flow_id=flow_uuid, name=body.name, created=now, **values)
            .on_conflict_do_nothing()
            .returning(deployment.c.id)
        ).first()
        if inserted is None:
            raise Conflict(
                f"Deployment {f'{body.flow_name}/{body.name}'!r} was created by another "
                "request meanwhile; send yours again to update it."
            )
        created = True
        _deployment_event(conn, "created", deployment_id, body.name, flow_uuid, pool_id, queue_id)
    else:
        # Sending the same deployment again (a restarted `serve`, a repeated `deploy`)
        # changes nothing: its schedules, their future runs and what catch-up counts
        # from (the deployment's `updated`) stay as they are.
        deployment_id = existing.id
        created = False
        if any(
            getattr(existing, key) != value for key, value in values.items() if key != "updated"
        ):
            conn.execute(sa.update(deployment).where(deployment.c.id == existing.id).values(values))
            _deployment_event(
                conn, "updated", deployment_id, body.name, flow_uuid, pool_id, queue_id
            )
        if _current_schedules(conn, deployment_id) == sorted(schedules, key=_schedule_key):
            return read(conn, deployment_id=deployment_id), created
        _drop_schedules(conn, deployment_id, now)
    for schedule in body.schedules:
        add_schedule(conn, deployment_id=deployment_id, body=schedule, now=now)
    return read(conn, deployment_id=deployment_id), created


def _schedule_values(body: DeploymentScheduleCreate) -> dict[str, Any]:
    """A schedule as stored (what makes two schedules the same)."""
    return {
        "schedule": body.schedule.model_dump(mode="json", exclude_none=True),
        "active": body.active,
        "catchup": body.catchup.value,
        "parameters": body.parameters,
    }


def _schedule_key(values: dict[str, Any]) -> str:
    import json

    return json.dumps(values, sort_keys=True)


def _current_schedules(conn: sa.Connection, deployment_id: uuid.UUID) -> list[dict[str, Any]]:
    query = sa.select(
        deployment_schedule.c.schedule,
        deployment_schedule.c.active,
        deployment_schedule.c.catchup,
        deployment_schedule.c.parameters,
    ).where(deployment_schedule.c.deployment_id == deployment_id)
    found = [dict(row._mapping) for row in conn.execute(query)]
    return sorted(found, key=_schedule_key)


def _drop_schedules(conn: sa.Connection, deployment_id: uuid.UUID, now: float) -> None:
    from headwater.server.scheduler import delete_future_runs

    delete_future_runs(conn, deployment_id=deployment_id, now=now)
    conn.execute(
        sa.delete(deployment_schedule).where(deployment_schedule.c.deployment_id == deployment_id)
    )


def _require(conn: sa.Connection, deployment_id: uuid.UUID) -> sa.Row[Any]:
    row = conn.execute(sa.select(deployment).where(deployment.c.id == deployment_id)).first()
    if row is None:
        raise ObjectNotFound(f"No deployment found with id {str(deployment_id)!r}.")
    return row


def update(
    conn: sa.Connection, *, deployment_id: uuid.UUID, body: DeploymentUpdate
) -> DeploymentResponse:
    """Change the fields `body` sets; new parameters or pausing replace the future runs."""
    from headwater.server.parameters import check_parameters
    from headwater.server.scheduler import delete_future_runs

    row = _require(conn, deployment_id)
    now = time.time()
    changes = body.model_dump(exclude_unset=True)
    values: dict[str, Any] = {"updated": now}
    for key in (
        "version",
        "description",
        "entrypoint",
        "path",
        "parameters",
        "parameter_schema",
        "enforce_parameter_schema",
        "tags",
        "job_variables",
        "concurrency_limit",
        "paused",
    ):
        if key in changes:
            values[key] = changes[key]
    if "concurrency_limit" in values and values["concurrency_limit"] == 0:
        values["concurrency_limit"] = None  # 0 clears the limit
    if "collision_strategy" in changes and changes["collision_strategy"] is not None:
        values["collision_strategy"] = CollisionStrategy(changes["collision_strategy"]).value
    if "work_pool_name" in changes or "work_queue_name" in changes:
        pool_name = changes.get("work_pool_name")
        if "work_pool_name" not in changes and row.work_pool_id is not None:
            pool_name = conn.execute(
                sa.select(work_pool.c.name).where(work_pool.c.id == row.work_pool_id)
            ).scalar_one_or_none()
        values["work_pool_id"], values["work_queue_id"] = _pool_and_queue(
            conn, pool_name, changes.get("work_queue_name")
        )
    check_parameters(
        values.get("parameter_schema", row.parameter_schema) or {},
        values.get("parameters", row.parameters) or {},
        complete=False,
    )
    _check_job_variables(
        conn,
        values.get("work_pool_id", row.work_pool_id),
        values.get("job_variables", row.job_variables),
    )
    conn.execute(sa.update(deployment).where(deployment.c.id == deployment_id).values(values))
    if values.get("paused") or "parameters" in values or "work_pool_id" in values:
        delete_future_runs(conn, deployment_id=deployment_id, now=now)
    pool_id = values.get("work_pool_id", row.work_pool_id)
    queue_id = values.get("work_queue_id", row.work_queue_id)
    if "paused" in values and values["paused"] != row.paused:
        action = "paused" if values["paused"] else "resumed"
        _deployment_event(conn, action, deployment_id, row.name, row.flow_id, pool_id, queue_id)
    if any(key not in ("paused", "updated") for key in values):
        _deployment_event(conn, "updated", deployment_id, row.name, row.flow_id, pool_id, queue_id)
    return read(conn, deployment_id=deployment_id)


def _deployment_event(
    conn: sa.Connection,
    action: str,
    deployment_id: uuid.UUID,
    name: str,
    flow_id: uuid.UUID,
    pool_id: uuid.UUID | None,
    queue_id: uuid.UUID | None,
) -> None:
    """`headwater.deployment.<action>`, related to its flow, work pool and work queue."""
    events.emit(
        conn,
        f"headwater.deployment.{action}",
        kind="deployment",
        resource_id=deployment_id,
        name=name,
        related=[
            ("flow", flow_id, None),
            ("work-pool", pool_id, None),
            ("work-queue", queue_id, None),
        ],
    )


def delete(conn: sa.Connection, *, deployment_id: uuid.UUID) -> None:
    """Delete the deployment and its schedules, and the runs of it not yet started.

    Runs that started stay, with their history (their deployment_id then names nothing).
    """
    row = _require(conn, deployment_id)
    _deployment_event(
        conn, "deleted", deployment_id, row.name, row.flow_id, row.work_pool_id, row.work_queue_id
    )
    waiting = sa.select(flow_run_queue.c.flow_run_id).where(
        flow_run_queue.c.deployment_id == deployment_id
    )
    ids = [row[0] for row in conn.execute(waiting)]
    if ids:
        conn.execute(sa.delete(flow_run_queue).where(flow_run_queue.c.flow_run_id.in_(ids)))
        conn.execute(
            sa.delete(state).where(state.c.flow_run_id.in_(ids), state.c.task_run_id.is_(None))
        )
        conn.execute(sa.delete(flow_run).where(flow_run.c.id.in_(ids)))
    conn.execute(
        sa.delete(deployment_schedule).where(deployment_schedule.c.deployment_id == deployment_id)
    )
    conn.execute(sa.delete(deployment).where(deployment.c.id == deployment_id))


# -- schedules ------------------------------------------------------------------------


def add_schedule(
    conn: sa.Connection,
    *,
    deployment_id: uuid.UUID,
    body: DeploymentScheduleCreate,
    now: float | None = None,
) -> DeploymentScheduleResponse:
    _require(conn, deployment_id)
    now = time.time() if now is None else now
    schedule_id = uuid.UUID(uuid7_hex())
    conn.execute(
        sa.insert(deployment_schedule).values(
            id=schedule_id,
            deployment_id=deployment_id,
            created=now,
            updated=now,
            **_schedule_values(body),
        )
    )
    return _read_schedule(conn, deployment_id, schedule_id)


def _read_schedule(
    conn: sa.Connection, deployment_id: uuid.UUID, schedule_id: uuid.UUID
) -> DeploymentScheduleResponse:
    row = (
        conn.execute(
            sa.select(deployment_schedule).where(
                deployment_schedule.c.id == schedule_id,
                deployment_schedule.c.deployment_id == deployment_id,
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ObjectNotFound(
            f"No schedule {str(schedule_id)!r} in deployment {str(deployment_id)!r}."
        )
    return _schedule_response(row)


def list_schedules(
    conn: sa.Connection, *, deployment_id: uuid.UUID
) -> list[DeploymentScheduleResponse]:
    _require(conn, deployment_id)
    return _schedules_of(conn, [deployment_id])[deployment_id]


def update_schedule(
    conn: sa.Connection,
    *,
    deployment_id: uuid.UUID,
    schedule_id: uuid.UUID,
    body: DeploymentScheduleUpdate,
) -> DeploymentScheduleResponse:
    """Change a schedule; the future runs it made are replaced on the next scheduler round."""
    from headwater.server.scheduler import delete_future_runs

    _read_schedule(conn, deployment_id, schedule_id)
    now = time.time()
    values: dict[str, Any] = {"updated": now}
    if body.schedule is not None:
        values["schedule"] = body.schedule.model_dump(mode="json", exclude_none=True)
    if body.active is not None:
        values["active"] = body.active
    if body.catchup is not None:
        values["catchup"] = body.catchup.value
    if body.parameters is not None:
        values["parameters"] = body.parameters
    conn.execute(
        sa.update(deployment_schedule).where(deployment_schedule.c.id == schedule_id).values(values)
    )
    delete_future_runs(conn, deployment_id=deployment_id, schedule_id=schedule_id, now=now)
    return _read_schedule(conn, deployment_id, schedule_id)


def delete_schedule(
    conn: sa.Connection, *, deployment_id: uuid.UUID, schedule_id: uuid.UUID
) -> None:
    from headwater.server.scheduler import delete_future_runs

    _read_schedule(conn, deployment_id, schedule_id)
    delete_future_runs(conn, deployment_id=deployment_id, schedule_id=schedule_id, now=time.time())
    conn.execute(sa.delete(deployment_schedule).where(deployment_schedule.c.id == schedule_id))


# -- runs -------------------------------------------------------------------------------


def create_flow_run(
    conn: sa.Connection,
    *,
    deployment_id: uuid.UUID,
    body: DeploymentFlowRunCreate,
    name: str,
) -> tuple[uuid.UUID, bool]:
    """Create a Scheduled run of the deployment; (its id, whether created now).

    With an idempotency key already used for this flow, the existing run is
    returned. Parameters are the deployment's defaults updated with the
    request's, checked against the parameter schema when it is enforced.

    Raises:
        ObjectNotFound: no such deployment.
        InvalidParameters: a parameter is missing or does not match the schema.
    """
    from headwater.server.parameters import check_parameters

    row = _require(conn, deployment_id)
    _check_job_variables(conn, row.work_pool_id, body.job_variables)
    parameters = {**(row.parameters or {}), **body.parameters}
    if row.enforce_parameter_schema:
        check_parameters(row.parameter_schema or {}, parameters, complete=True)
    if body.idempotency_key is not None:
        found = conn.execute(
            sa.select(flow_run.c.id).where(
                flow_run.c.flow_id == row.flow_id,
                flow_run.c.idempotency_key == body.idempotency_key,
            )
        ).scalar_one_or_none()
        if found is not None:
            return found, False
    target = DeploymentTarget(
        id=row.id,
        flow_id=row.flow_id,
        work_pool_id=row.work_pool_id,
        work_queue_id=row.work_queue_id,
        tags=row.tags or [],
    )
    root: uuid.UUID | None = None
    parent = uuid.UUID(body.parent_flow_run_id) if body.parent_flow_run_id else None
    if parent is not None:
        parent_row = conn.execute(
            sa.select(flow_run.c.root_flow_run_id).where(flow_run.c.id == parent)
        ).first()
        if parent_row is None:
            raise ObjectNotFound(f"No flow run found with id {str(parent)!r} (parent_flow_run_id).")
        root = parent_row[0] or parent
    run = NewRun(
        deployment=target,
        scheduled_time=body.scheduled_time if body.scheduled_time is not None else time.time(),
        parameters=parameters,
        name=name,
        tags=body.tags,
        idempotency_key=body.idempotency_key,
        job_variables=body.job_variables,
        parent_flow_run_id=parent,
        root_flow_run_id=root,
        parent_task_run_id=(
            uuid.UUID(body.parent_task_run_id) if body.parent_task_run_id else None
        ),
    )
    created = insert_runs(conn, [run])
    if created:
        return created[0], True
    # Lost a race with a request carrying the same idempotency key.
    found = conn.execute(
        sa.select(flow_run.c.id).where(
            flow_run.c.flow_id == row.flow_id,
            flow_run.c.idempotency_key == body.idempotency_key,
        )
    ).scalar_one()
    return found, False


def mark_polled(conn: sa.Connection, deployment_ids: Sequence[uuid.UUID], now: float) -> None:
    """Remember that a `serve` process asked for these deployments' runs (they are READY)."""
    if deployment_ids:
        conn.execute(
            sa.update(deployment).where(deployment.c.id.in_(deployment_ids)).values(last_polled=now)
        )
