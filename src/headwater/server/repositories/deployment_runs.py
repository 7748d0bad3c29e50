"""Runs of deployments: created Scheduled, queued for a worker or `serve`, claimed once.

A run of a deployment is a `flow_run` row in state Scheduled, plus a row in the
narrow `flow_run_queue` that workers read. Claiming a run deletes its queue
row and moves it to Pending under a fresh claim token (the fencing token):
only the process started with that token may move it to Running (`begin`).
Every function here works inside the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7_hex
from headwater.core.states import StateType
from headwater.server.repositories._common import upsertable_insert
from headwater.server.repositories.events import record_state_events
from headwater.store.tables import flow_run, flow_run_queue, state


@dataclasses.dataclass(frozen=True, slots=True)
class DeploymentTarget:
    """What a run copies from its deployment."""

    id: uuid.UUID
    flow_id: uuid.UUID
    work_pool_id: uuid.UUID | None
    work_queue_id: uuid.UUID | None
    tags: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class NewRun:
    """A run of `deployment` to create, due at `scheduled_time` (epoch seconds)."""

    deployment: DeploymentTarget
    scheduled_time: float
    parameters: dict[str, Any]
    name: str
    tags: list[str] = dataclasses.field(default_factory=list)
    #: unique per flow: a second run with the same key is not created
    idempotency_key: str | None = None
    schedule_id: uuid.UUID | None = None
    job_variables: dict[str, Any] | None = None
    state_name: str = "Scheduled"
    state_message: str | None = None
    id: uuid.UUID | None = None
    parent_flow_run_id: uuid.UUID | None = None
    root_flow_run_id: uuid.UUID | None = None
    parent_task_run_id: uuid.UUID | None = None


def insert_runs(conn: sa.Connection, runs: Sequence[NewRun]) -> list[uuid.UUID]:
    """Create `runs` Scheduled and queue them; the ids of those created now.

    A run whose idempotency key (or id) is already used for its flow is skipped:
    retries of a request, restarted schedulers and concurrent replicas cannot
    create a run twice.
    """
    if not runs:
        return []
    now = time.time()
    values = []
    by_id: dict[uuid.UUID, NewRun] = {}
    for run in runs:
        run_id = run.id or uuid.UUID(uuid7_hex())
        by_id[run_id] = run
        target = run.deployment
        values.append(
            {
                "id": run_id,
                "flow_id": target.flow_id,
                "name": run.name,
                "state_type": StateType.SCHEDULED.value,
                "state_name": run.state_name,
                "state_message": run.state_message,
                "state_timestamp": now,
                "parameters": run.parameters,
                "tags": sorted({*target.tags, *run.tags}),
                "run_count": 0,
                "parent_flow_run_id": run.parent_flow_run_id,
                "root_flow_run_id": run.root_flow_run_id or run_id,
                "parent_task_run_id": run.parent_task_run_id,
                "deployment_id": target.id,
                "expected_start_time": run.scheduled_time,
                "created": now,
                "updated": now,
                "work_pool_id": target.work_pool_id,
                "work_queue_id": target.work_queue_id,
                "schedule_id": run.schedule_id,
                "idempotency_key": run.idempotency_key,
                "job_variables": run.job_variables,
            }
        )
    created = _insert_flow_runs(conn, values)
    if not created:
        return []
    scheduled = [
        {
            "id": uuid.UUID(uuid7_hex()),
            "flow_run_id": run_id,
            "task_run_id": None,
            "type": StateType.SCHEDULED.value,
            "name": by_id[run_id].state_name,
            "message": by_id[run_id].state_message,
            "timestamp": now,
        }
        for run_id in created
    ]
    conn.execute(sa.insert(state), scheduled)
    record_state_events(conn, scheduled)
    enqueue(
        conn,
        [(run_id, by_id[run_id].deployment, by_id[run_id].scheduled_time) for run_id in created],
    )
    return created


def enqueue(
    conn: sa.Connection, items: Sequence[tuple[uuid.UUID, DeploymentTarget, float]]
) -> None:
    """Put Scheduled runs (id, deployment, due time) where workers and `serve` find them."""
    if not items:
        return
    conn.execute(
        upsertable_insert(conn, flow_run_queue).on_conflict_do_nothing(),
        [
            {
                "flow_run_id": run_id,
                "deployment_id": target.id,
                "work_pool_id": target.work_pool_id,
                "work_queue_id": target.work_queue_id,
                "scheduled_time": due,
            }
            for run_id, target, due in items
        ],
    )


def dequeue(conn: sa.Connection, flow_run_ids: Sequence[uuid.UUID]) -> None:
    """Take runs out of the queue (cancelled, deleted, or claimed)."""
    if flow_run_ids:
        conn.execute(
            sa.delete(flow_run_queue).where(flow_run_queue.c.flow_run_id.in_(flow_run_ids))
        )


def _insert_flow_runs(conn: sa.Connection, values: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Insert flow_run rows unless their id or idempotency key is taken; the ids inserted."""
    if conn.dialect.name != "postgresql":
        insert = upsertable_insert(conn, flow_run).on_conflict_do_nothing().returning(flow_run.c.id)
        return [row[0] for row in conn.execute(insert, values)]
    # PostgreSQL: the rows as one JSON parameter. A multi-row VALUES statement with RETURNING
    # has ~20 parameters per row, which psycopg rewrites in Python (~300 us a row at 10,000
    # scheduled runs); this is one short statement, the same cost as a handful of rows.
    created: list[uuid.UUID] = []
    for start in range(0, len(values), 2000):
        rows = json.dumps(values[start : start + 2000], default=_json_default)
        result = conn.execute(_postgresql_insert_flow_runs(), {"rows": rows})
        created.extend(row[0] for row in result)
    return created


_FLOW_RUN_COLUMNS = {
    # column: (type in the JSON record, SQL turning r.<column> into the column's value)
    "id": "uuid", "flow_id": "uuid", "name": "text", "state_type": "text",
    "state_name": "text", "state_message": "text", "state_timestamp": "timestamp",
    "parameters": "jsonb", "tags": "jsonb", "run_count": "integer",
    "parent_flow_run_id": "uuid", "root_flow_run_id": "uuid", "parent_task_run_id": "uuid",
    "deployment_id": "uuid", "expected_start_time": "timestamp", "created": "timestamp",
    "updated": "timestamp", "work_pool_id": "uuid", "work_queue_id": "uuid",
    "schedule_id": "uuid", "idempotency_key": "text", "job_variables": "jsonb",
}  # fmt: skip


def _postgresql_insert_flow_runs() -> sa.TextClause:
    record = ", ".join(
        f"{name} {'float8' if kind == 'timestamp' else kind}"
        for name, kind in _FLOW_RUN_COLUMNS.items()
    )
    selected = ", ".join(
        # As tables.Timestamp binds a float: rounded to the microsecond like fromtimestamp.
        f"to_timestamp(trunc(r.{name})) + round((r.{name} - trunc(r.{name})) * 1000000) "
        "* interval '1 microsecond'"
        if kind == "timestamp"
        else f"r.{name}"
        for name, kind in _FLOW_RUN_COLUMNS.items()
    )
    return sa.text(
        f"INSERT INTO flow_run ({', '.join(_FLOW_RUN_COLUMNS)}) "
        f"SELECT {selected} FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({record}) "
        "ON CONFLICT DO NOTHING RETURNING id"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    return repr(value)  # as the Database's JSON serializer does
