"""Artifacts, variables, secrets and flow run inputs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Written out by hand (see 0001).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine[float]:
    return sa.Float().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "artifact",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("data", _json(), nullable=True),
        sa.Column("flow_run_id", sa.Uuid(), nullable=True),
        sa.Column("task_run_id", sa.Uuid(), nullable=True),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_artifact"),
    )
    op.create_index("ix_artifact_key_created", "artifact", ["key", "created"])
    op.create_index("ix_artifact_flow_run_id", "artifact", ["flow_run_id"])
    op.create_table(
        "variable",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", _json(), nullable=True),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_variable"),
        sa.UniqueConstraint("name", name="uq_variable_name"),
    )
    op.create_table(
        "secret",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_secret"),
        sa.UniqueConstraint("name", name="uq_secret_name"),
    )
    op.create_table(
        "flow_run_input",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("flow_run_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", _json(), nullable=True),
        sa.Column("sender", sa.String(255), nullable=True),
        sa.Column("created", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_run_input"),
        sa.UniqueConstraint("flow_run_id", "key", name="uq_flow_run_input_flow_run_id_key"),
    )


def downgrade() -> None:
    op.drop_table("flow_run_input")
    op.drop_table("secret")
    op.drop_table("variable")
    op.drop_index("ix_artifact_flow_run_id", table_name="artifact")
    op.drop_index("ix_artifact_key_created", table_name="artifact")
    op.drop_table("artifact")
