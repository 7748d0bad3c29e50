"""SQLAlchemy Core tables: the one definition of the schema.

Migrations (`store/migrations`) create exactly these; `columns.py` lists the
same column order for the recorder's positional rows.

Timestamps are epoch seconds (float) in Python everywhere; on PostgreSQL they
are stored as `timestamptz`, on SQLite as REAL (sortable, and cheap for the
embedded writer, which binds the float directly).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from headwater.store import columns

metadata = sa.MetaData()

# Python None is SQL NULL (not the JSON text 'null'), as in the embedded writer.
JSONType = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)


class Timestamp(sa.types.TypeDecorator[float]):
    """Epoch seconds in Python; `timestamptz` on PostgreSQL, REAL elsewhere."""

    impl = sa.Float
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(sa.DateTime(timezone=True))
        return dialect.type_descriptor(sa.Float())

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            if isinstance(value, dt.datetime):
                return value
            return dt.datetime.fromtimestamp(value, tz=dt.UTC)
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=dt.UTC)
            return value.timestamp()
        return float(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> float | None:
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.timestamp()
        return float(value)


def _state_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("state_type", sa.String(16), nullable=False),
        sa.Column("state_name", sa.String(64), nullable=False),
        sa.Column("state_message", sa.Text),
        sa.Column("state_timestamp", Timestamp, nullable=False),
    ]


flow = sa.Table(
    "flow",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("created", Timestamp, nullable=False),
)

flow_run = sa.Table(
    "flow_run",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("flow_id", sa.Uuid, sa.ForeignKey("flow.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    *_state_columns(),
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("run_count", sa.Integer, nullable=False),
    sa.Column("parent_flow_run_id", sa.Uuid),
    sa.Column("root_flow_run_id", sa.Uuid),
    sa.Column("parent_task_run_id", sa.Uuid),
    sa.Column("deployment_id", sa.Uuid),
    sa.Column("expected_start_time", Timestamp),
    sa.Column("start_time", Timestamp),
    sa.Column("end_time", Timestamp),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
    # "host:pid:process-start" of the process executing the run; crash detection
    # compares it with the live processes of that host.
    sa.Column("process", sa.String(255)),
    sa.Index("ix_flow_run_flow_id_created", "flow_id", "created"),
    sa.Index("ix_flow_run_created", "created"),
    sa.Index("ix_flow_run_state_type", "state_type"),
    sa.Index("ix_flow_run_parent_flow_run_id", "parent_flow_run_id"),
)

# `flow-run ls` orders and filters by when a run started, else when it is due,
# else when it was created: an expression index keeps that fast at 100,000s of runs.
RUN_TIME = sa.func.coalesce(
    flow_run.c.start_time, flow_run.c.expected_start_time, flow_run.c.created
)
sa.Index("ix_flow_run_run_time", RUN_TIME, flow_run.c.id)

task_run = sa.Table(
    "task_run",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("flow_run_id", sa.Uuid, sa.ForeignKey("flow_run.id", ondelete="CASCADE")),
    sa.Column("task_key", sa.String(255), nullable=False),
    sa.Column("dynamic_key", sa.String(64), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    *_state_columns(),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("run_count", sa.Integer, nullable=False),
    sa.Column("task_inputs", JSONType),
    sa.Column("start_time", Timestamp),
    sa.Column("end_time", Timestamp),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
    sa.Index("ix_task_run_flow_run_id", "flow_run_id"),
    sa.Index("ix_task_run_created", "created"),
)

state = sa.Table(
    "state",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("flow_run_id", sa.Uuid),
    sa.Column("task_run_id", sa.Uuid),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("message", sa.Text),
    sa.Column("timestamp", Timestamp, nullable=False),
    # Only a flow run's own states (task-run states are found by task_run_id): one
    # B-tree insert less per task state. Queries must say `task_run_id IS NULL`.
    sa.Index(
        "ix_state_flow_run_id",
        "flow_run_id",
        sqlite_where=sa.text("task_run_id IS NULL"),
        postgresql_where=sa.text("task_run_id IS NULL"),
    ),
    sa.Index("ix_state_task_run_id", "task_run_id"),
)

log = sa.Table(
    "log",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("flow_run_id", sa.Uuid),
    sa.Column("task_run_id", sa.Uuid),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("timestamp", Timestamp, nullable=False),
    sa.Index("ix_log_flow_run_id_timestamp", "flow_run_id", "timestamp"),
)

#: The recorder's tables with their positional column order.
RECORDED = {
    "flow": (flow, columns.FLOW),
    "flow_run": (flow_run, columns.FLOW_RUN),
    "task_run": (task_run, columns.TASK_RUN),
    "state": (state, columns.STATE),
    "log": (log, columns.LOG),
}
