"""Events, webhooks and automations.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21

Written out by hand (see 0001).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _timestamp() -> sa.types.TypeEngine[float]:
    return sa.Float().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("worker", sa.Column("announced", sa.String(16), nullable=True))
    op.create_table(
        "event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred", _timestamp(), nullable=False),
        sa.Column("event", sa.String(1024), nullable=False),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("resource", _json(), nullable=False),
        sa.Column("related", _json(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("follows", sa.Uuid(), nullable=True),
        sa.Column("received", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event"),
    )
    op.create_index("ix_event_occurred", "event", ["occurred"])
    op.create_index("ix_event_event_occurred", "event", ["event", "occurred"])
    op.create_index("ix_event_resource_id_occurred", "event", ["resource_id", "occurred"])
    op.create_index("ix_event_received", "event", ["received"])
    op.create_table(
        "event_inbox",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("occurred", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_event_inbox"),
    )
    op.create_index("ix_event_inbox_occurred", "event_inbox", ["occurred"])
    op.create_table(
        "webhook",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("signing_secret", sa.Text(), nullable=True),
        sa.Column("signing_key_id", sa.String(64), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook"),
        sa.UniqueConstraint("name", name="uq_webhook_name"),
        sa.UniqueConstraint("slug", name="uq_webhook_slug"),
    )
    op.create_table(
        "automation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger", _json(), nullable=False),
        sa.Column("actions", _json(), nullable=False),
        sa.Column("actions_on_trigger", _json(), nullable=False),
        sa.Column("actions_on_resolve", _json(), nullable=False),
        sa.Column("tags", _json(), nullable=False),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automation"),
        sa.UniqueConstraint("name", name="uq_automation_name"),
    )
    op.create_table(
        "automation_bucket",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("automation_id", sa.Uuid(), nullable=False),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("bucket_key", sa.String(1024), nullable=False),
        sa.Column("start", _timestamp(), nullable=False),
        sa.Column("end", _timestamp(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("data", _json(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automation_bucket"),
        sa.UniqueConstraint(
            "automation_id", "trigger_id", "bucket_key", name="uq_automation_bucket_key"
        ),
    )
    op.create_index("ix_automation_bucket_end", "automation_bucket", ["end"])
    op.create_table(
        "automation_firing",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("automation_id", sa.Uuid(), nullable=False),
        sa.Column("trigger_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("bucket_key", sa.String(1024), nullable=False),
        sa.Column("triggering_event_id", sa.Uuid(), nullable=True),
        sa.Column("context", _json(), nullable=False),
        sa.Column("occurred", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automation_firing"),
    )
    op.create_index(
        "ix_automation_firing_automation_id_occurred",
        "automation_firing",
        ["automation_id", "occurred"],
    )
    op.create_index("ix_automation_firing_occurred", "automation_firing", ["occurred"])
    op.create_table(
        "automation_action",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("firing_id", sa.Uuid(), nullable=False),
        sa.Column("automation_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("action", _json(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", _timestamp(), nullable=False),
        sa.Column("result", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", _timestamp(), nullable=False),
        sa.Column("updated", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automation_action"),
    )
    op.create_index(
        "ix_automation_action_state_next_attempt",
        "automation_action",
        ["state", "next_attempt"],
    )
    op.create_index("ix_automation_action_firing_id", "automation_action", ["firing_id"])
    op.create_index(
        "ix_automation_action_automation_id_created",
        "automation_action",
        ["automation_id", "created"],
    )


def downgrade() -> None:
    for table in (
        "automation_action",
        "automation_firing",
        "automation_bucket",
        "automation",
        "webhook",
        "event_inbox",
        "event",
    ):
        op.drop_table(table)
    op.drop_column("worker", "announced")
