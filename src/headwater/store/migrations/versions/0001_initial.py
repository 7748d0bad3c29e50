"""The initial store: flows, flow runs, task runs, state history and logs.

Revision ID: 0001
Revises:
Create Date: 2024-11-21

Written out by hand rather than built from tables.py, so that later changes
to tables.py cannot change what this revision creates. Constraint names follow
the usual convention (pk_/uq_/fk_<table>_<column>...) so later batch
migrations on SQLite can refer to them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine[float]:
    # Epoch seconds: REAL on SQLite, timestamptz on PostgreSQL (tables.Timestamp).
    return sa.Float().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _state_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("state_type", sa.String(16), nullable=False),
        sa.Column("state_name", sa.String(64), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=True),
        sa.Column("state_timestamp", _timestamp(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "flow",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow"),
        sa.UniqueConstraint("name", name="uq_flow_name"),
    )
    op.create_table(
        "flow_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flow_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        *_state_columns(),
        sa.Column("parameters", _json(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("parent_flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("root_flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("parent_task_run_id", sa.Uuid(), nullable=True),
        sa.Column("deployment_id", sa.Uuid(), nullable=True),
        sa.Column("expected_start_time", _timestamp(), nullable=True),
        sa.Column("start_time", _timestamp(), nullable=True),
        sa.Column("end_time", _timestamp(), nullable=True),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.Column("process", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_flow_run"),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flow.id"], name="fk_flow_run_flow_id_flow", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_flow_run_flow_id_created", "flow_run", ["flow_id", "created"])
    op.create_index("ix_flow_run_created", "flow_run", ["created"])
    op.create_index("ix_flow_run_state_type", "flow_run", ["state_type"])
    op.create_index("ix_flow_run_parent_flow_run_id", "flow_run", ["parent_flow_run_id"])
    op.create_index(
        "ix_flow_run_run_time",
        "flow_run",
        [sa.text("coalesce(start_time, expected_start_time, created)"), "id"],
    )

    op.create_table(
        "task_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("task_key", sa.String(255), nullable=False),
        sa.Column("dynamic_key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        *_state_columns(),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("task_inputs", _json(), nullable=True),
        sa.Column("start_time", _timestamp(), nullable=True),
        sa.Column("end_time", _timestamp(), nullable=True),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_task_run"),
        sa.ForeignKeyConstraint(
            ["flow_run_id"],
            ["flow_run.id"],
            name="fk_task_run_flow_run_id_flow_run",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_task_run_flow_run_id", "task_run", ["flow_run_id"])
    op.create_index("ix_task_run_created", "task_run", ["created"])

    op.create_table(
        "state",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("task_run_id", sa.Uuid(), nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("timestamp", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_state"),
    )
    # Only a flow run's own states: task-run states are found through task_run_id,
    # and leaving them out of this index saves a B-tree insert per task state.
    op.create_index(
        "ix_state_flow_run_id",
        "state",
        ["flow_run_id"],
        sqlite_where=sa.text("task_run_id IS NULL"),
        postgresql_where=sa.text("task_run_id IS NULL"),
    )
    op.create_index("ix_state_task_run_id", "state", ["task_run_id"])

    op.create_table(
        "log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("task_run_id", sa.Uuid(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("timestamp", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_log"),
    )
    op.create_index("ix_log_flow_run_id_timestamp", "log", ["flow_run_id", "timestamp"])


def downgrade() -> None:
    op.drop_index("ix_log_flow_run_id_timestamp", table_name="log")
    op.drop_table("log")
    op.drop_index("ix_state_task_run_id", table_name="state")
    op.drop_index("ix_state_flow_run_id", table_name="state")
    op.drop_table("state")
    op.drop_index("ix_task_run_created", table_name="task_run")
    op.drop_index("ix_task_run_flow_run_id", table_name="task_run")
    op.drop_table("task_run")
    op.drop_index("ix_flow_run_run_time", table_name="flow_run")
    op.drop_index("ix_flow_run_parent_flow_run_id", table_name="flow_run")
    op.drop_index("ix_flow_run_state_type", table_name="flow_run")
    op.drop_index("ix_flow_run_created", table_name="flow_run")
    op.drop_index("ix_flow_run_flow_id_created", table_name="flow_run")
    op.drop_table("flow_run")
    op.drop_table("flow")
