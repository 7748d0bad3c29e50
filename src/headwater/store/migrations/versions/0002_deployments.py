"""Deployments, schedules, work pools and queues, workers, the run queue, concurrency limits.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Written out by hand (see 0001). The new `flow_run` columns are nullable, so adding
or dropping them rewrites no table.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine[float]:
    return sa.Float().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _stamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
    ]


_FLOW_RUN_COLUMNS = (
    ("work_pool_id", sa.Uuid()),
    ("work_queue_id", sa.Uuid()),
    ("schedule_id", sa.Uuid()),
    ("idempotency_key", sa.String(255)),
    ("job_variables", _json()),
    ("worker_id", sa.Uuid()),
    ("claim_token", sa.String(32)),
    ("empirical_policy", _json()),
)

_FLOW_RUN_INDEXES = (
    ("ix_flow_run_deployment_id_state_type", ["deployment_id", "state_type"], False),
    ("ix_flow_run_state_type_expected_start_time", ["state_type", "expected_start_time"], False),
    ("ix_flow_run_worker_id", ["worker_id"], False),
    ("uq_flow_run_flow_id_idempotency_key", ["flow_id", "idempotency_key"], True),
)


def upgrade() -> None:
    op.create_table(
        "work_pool",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("base_job_template", _json(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_work_pool"),
        sa.UniqueConstraint("name", name="uq_work_pool_name"),
    )
    op.create_table(
        "work_queue",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_work_queue"),
        sa.ForeignKeyConstraint(
            ["work_pool_id"],
            ["work_pool.id"],
            name="fk_work_queue_work_pool_id_work_pool",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("work_pool_id", "name", name="uq_work_queue_work_pool_id_name"),
    )
    op.create_table(
        "worker",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("heartbeat_interval", sa.Float(), nullable=False),
        sa.Column("last_heartbeat", _timestamp(), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_worker"),
        sa.ForeignKeyConstraint(
            ["work_pool_id"],
            ["work_pool.id"],
            name="fk_worker_work_pool_id_work_pool",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_worker_work_pool_id_name", "worker", ["work_pool_id", "name"])
    op.create_table(
        "deployment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("entrypoint", sa.Text(), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("parameters", _json(), nullable=False),
        sa.Column("parameter_schema", _json(), nullable=False),
        sa.Column("enforce_parameter_schema", sa.Boolean(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=True),
        sa.Column("work_queue_id", sa.Uuid(), nullable=True),
        sa.Column("job_variables", _json(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("collision_strategy", sa.String(16), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("last_polled", _timestamp(), nullable=True),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_deployment"),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flow.id"], name="fk_deployment_flow_id_flow", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["work_pool_id"],
            ["work_pool.id"],
            name="fk_deployment_work_pool_id_work_pool",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["work_queue_id"],
            ["work_queue.id"],
            name="fk_deployment_work_queue_id_work_queue",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("flow_id", "name", name="uq_deployment_flow_id_name"),
    )
    op.create_index("ix_deployment_work_pool_id", "deployment", ["work_pool_id"])
    op.create_table(
        "deployment_schedule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("schedule", _json(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("catchup", sa.String(16), nullable=False),
        sa.Column("parameters", _json(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_schedule"),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployment.id"],
            name="fk_deployment_schedule_deployment_id_deployment",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_deployment_schedule_deployment_id", "deployment_schedule", ["deployment_id"]
    )
    op.create_table(
        "flow_run_queue",
        sa.Column("flow_run_id", sa.Uuid(), nullable=False),
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("work_pool_id", sa.Uuid(), nullable=True),
        sa.Column("work_queue_id", sa.Uuid(), nullable=True),
        sa.Column("scheduled_time", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("flow_run_id", name="pk_flow_run_queue"),
        sa.ForeignKeyConstraint(
            ["flow_run_id"],
            ["flow_run.id"],
            name="fk_flow_run_queue_flow_run_id_flow_run",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_flow_run_queue_work_pool_id_scheduled_time",
        "flow_run_queue",
        ["work_pool_id", "scheduled_time"],
    )
    op.create_index(
        "ix_flow_run_queue_deployment_id_scheduled_time",
        "flow_run_queue",
        ["deployment_id", "scheduled_time"],
    )
    op.create_table(
        "concurrency_limit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("active_slots", sa.Float(), nullable=False),
        sa.Column("slot_decay_per_second", sa.Float(), nullable=False),
        sa.Column("decayed_at", _timestamp(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("id", name="pk_concurrency_limit"),
        sa.UniqueConstraint("name", name="uq_concurrency_limit_name"),
    )
    op.create_table(
        "concurrency_lease",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("limit_ids", _json(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("holder", _json(), nullable=True),
        sa.Column("expires", _timestamp(), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_concurrency_lease"),
    )
    op.create_index("ix_concurrency_lease_expires", "concurrency_lease", ["expires"])

    # New columns are nullable: adding them rewrites nothing on either database.
    for name, type_ in _FLOW_RUN_COLUMNS:
        op.add_column("flow_run", sa.Column(name, type_, nullable=True))
    for name, columns, unique in _FLOW_RUN_INDEXES:
        op.create_index(name, "flow_run", columns, unique=unique)
    op.create_index(
        "ix_flow_run_schedule_id_expected_start_time",
        "flow_run",
        ["schedule_id", "expected_start_time"],
        sqlite_where=sa.text("schedule_id IS NOT NULL"),
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_flow_run_schedule_id_expected_start_time", table_name="flow_run")
    for name, _columns, _unique in reversed(_FLOW_RUN_INDEXES):
        op.drop_index(name, table_name="flow_run")
    # Plain DROP COLUMN (SQLite >= 3.35): batch mode would copy the table and lose the
    # expression index ix_flow_run_run_time, which it cannot reflect.
    for name, _type in reversed(_FLOW_RUN_COLUMNS):
        op.drop_column("flow_run", name)
    op.drop_index("ix_concurrency_lease_expires", table_name="concurrency_lease")
    op.drop_table("concurrency_lease")
    op.drop_table("concurrency_limit")
    op.drop_index("ix_flow_run_queue_deployment_id_scheduled_time", table_name="flow_run_queue")
    op.drop_index("ix_flow_run_queue_work_pool_id_scheduled_time", table_name="flow_run_queue")
    op.drop_table("flow_run_queue")
    op.drop_index("ix_deployment_schedule_deployment_id", table_name="deployment_schedule")
    op.drop_table("deployment_schedule")
    op.drop_index("ix_deployment_work_pool_id", table_name="deployment")
    op.drop_table("deployment")
    op.drop_index("ix_worker_work_pool_id_name", table_name="worker")
    op.drop_table("worker")
    op.drop_table("work_queue")
    op.drop_table("work_pool")
