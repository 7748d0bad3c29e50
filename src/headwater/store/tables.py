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
    # Set by the server for runs of deployments (revision 0002); the recorder's rows do
    # not carry these columns, so an engine's upsert never clears them.
    sa.Column("work_pool_id", sa.Uuid),
    sa.Column("work_queue_id", sa.Uuid),
    sa.Column("schedule_id", sa.Uuid),
    # Unique per flow: creating a run with a key already used returns that run.
    sa.Column("idempotency_key", sa.String(255)),
    sa.Column("job_variables", JSONType),
    # The worker (or `serve`) that claimed the run, and the claim's fencing token: only
    # the process started with this token may move the run to Running.
    sa.Column("worker_id", sa.Uuid),
    sa.Column("claim_token", sa.String(32)),
    # {"retries": n, "retry_delay_seconds": s}: the flow's retry policy, reported when
    # the run starts, applied by the server when the run's process or worker dies.
    sa.Column("empirical_policy", JSONType),
    sa.Index("ix_flow_run_flow_id_created", "flow_id", "created"),
    sa.Index("ix_flow_run_created", "created"),
    sa.Index("ix_flow_run_state_type", "state_type"),
    sa.Index("ix_flow_run_parent_flow_run_id", "parent_flow_run_id"),
    sa.Index("ix_flow_run_deployment_id_state_type", "deployment_id", "state_type"),
    sa.Index("ix_flow_run_state_type_expected_start_time", "state_type", "expected_start_time"),
    sa.Index("ix_flow_run_worker_id", "worker_id"),
    sa.Index("uq_flow_run_flow_id_idempotency_key", "flow_id", "idempotency_key", unique=True),
    # The scheduler's latest and future runs of each schedule; only runs schedules made.
    sa.Index(
        "ix_flow_run_schedule_id_expected_start_time",
        "schedule_id",
        "expected_start_time",
        sqlite_where=sa.text("schedule_id IS NOT NULL"),
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    ),
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


# -- Deployments, work pools and workers (revision 0002) ---------------------------------

work_pool = sa.Table(
    "work_pool",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("description", sa.Text),
    # The infrastructure's job template: {"job_configuration": {...}, "variables": <JSON schema>}.
    sa.Column("base_job_template", JSONType, nullable=False),
    sa.Column("concurrency_limit", sa.Integer),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
)

work_queue = sa.Table(
    "work_queue",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "work_pool_id",
        sa.Uuid,
        sa.ForeignKey("work_pool.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text),
    # 1 is served first; runs of a lower-priority queue wait while a higher one has due runs.
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("concurrency_limit", sa.Integer),
    sa.Column("paused", sa.Boolean, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
    sa.UniqueConstraint("work_pool_id", "name", name="uq_work_queue_work_pool_id_name"),
)

# A process that executes flow runs: a pool's worker, or `serve` (no pool).
worker = sa.Table(
    "worker",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("work_pool_id", sa.Uuid, sa.ForeignKey("work_pool.id", ondelete="CASCADE")),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("heartbeat_interval", sa.Float, nullable=False),
    sa.Column("last_heartbeat", Timestamp, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    # The last lifecycle event sent for the worker: "started" or "stopped" (revision 0004).
    sa.Column("announced", sa.String(16)),
    sa.Index("ix_worker_work_pool_id_name", "work_pool_id", "name"),
)

deployment = sa.Table(
    "deployment",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("flow_id", sa.Uuid, sa.ForeignKey("flow.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("version", sa.String(255)),
    sa.Column("description", sa.Text),
    # "path/to/file.py:function", resolved against `path` (the working directory).
    sa.Column("entrypoint", sa.Text),
    sa.Column("path", sa.Text),
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("parameter_schema", JSONType, nullable=False),
    sa.Column("enforce_parameter_schema", sa.Boolean, nullable=False),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("work_pool_id", sa.Uuid, sa.ForeignKey("work_pool.id", ondelete="SET NULL")),
    sa.Column("work_queue_id", sa.Uuid, sa.ForeignKey("work_queue.id", ondelete="SET NULL")),
    sa.Column("job_variables", JSONType, nullable=False),
    sa.Column("concurrency_limit", sa.Integer),
    # What a run does when the deployment's concurrency limit is reached: ENQUEUE or CANCEL_NEW.
    sa.Column("collision_strategy", sa.String(16), nullable=False),
    sa.Column("paused", sa.Boolean, nullable=False),
    # When a `serve` process last asked for this deployment's runs (None: never).
    sa.Column("last_polled", Timestamp),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
    sa.UniqueConstraint("flow_id", "name", name="uq_deployment_flow_id_name"),
    sa.Index("ix_deployment_work_pool_id", "work_pool_id"),
)

deployment_schedule = sa.Table(
    "deployment_schedule",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column(
        "deployment_id",
        sa.Uuid,
        sa.ForeignKey("deployment.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # {"cron": "0 2 * * *", "timezone": "Europe/Paris"} | {"interval": 60.0, "anchor_date":
    # ..., "timezone": ...} | {"rrule": "...", "timezone": ...}
    sa.Column("schedule", JSONType, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    # After downtime: SKIP the missed times, run the LATEST one, or run ALL of them.
    sa.Column("catchup", sa.String(16), nullable=False),
    # Parameters this schedule's runs get on top of the deployment's.
    sa.Column("parameters", JSONType, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
    sa.Index("ix_deployment_schedule_deployment_id", "deployment_id"),
)

# Flow runs waiting to be claimed: a narrow table, one row per Scheduled run of a
# deployment, deleted by the claim. Workers and `serve` read only this.
flow_run_queue = sa.Table(
    "flow_run_queue",
    metadata,
    sa.Column(
        "flow_run_id",
        sa.Uuid,
        sa.ForeignKey("flow_run.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("deployment_id", sa.Uuid, nullable=False),
    sa.Column("work_pool_id", sa.Uuid),
    sa.Column("work_queue_id", sa.Uuid),
    sa.Column("scheduled_time", Timestamp, nullable=False),
    sa.Index("ix_flow_run_queue_work_pool_id_scheduled_time", "work_pool_id", "scheduled_time"),
    sa.Index("ix_flow_run_queue_deployment_id_scheduled_time", "deployment_id", "scheduled_time"),
)

# -- Concurrency limits (revision 0002) ---------------------------------------------------

# A global concurrency limit, or a tag's task-run limit (named "tag:<tag>").
concurrency_limit = sa.Table(
    "concurrency_limit",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("limit", sa.Integer, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    # Slots occupied now; with slot decay (rate limits) as of `decayed_at`.
    sa.Column("active_slots", sa.Float, nullable=False),
    sa.Column("slot_decay_per_second", sa.Float, nullable=False),
    sa.Column("decayed_at", Timestamp, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
)

# Slots held by a live holder; they return to their limits when released or when the
# lease expires (its holder died without releasing).
concurrency_lease = sa.Table(
    "concurrency_lease",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("limit_ids", JSONType, nullable=False),
    sa.Column("slots", sa.Integer, nullable=False),
    sa.Column("holder", JSONType),
    sa.Column("expires", Timestamp, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Index("ix_concurrency_lease_expires", "expires"),
)


# -- Artifacts, variables, secrets, run inputs (revision 0003) ------------------------------

artifact = sa.Table(
    "artifact",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    # Versions of one artifact share a key; the latest is the newest row of that key.
    sa.Column("key", sa.String(255)),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("data", JSONType),
    sa.Column("flow_run_id", sa.Uuid),
    sa.Column("task_run_id", sa.Uuid),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
    sa.Index("ix_artifact_key_created", "key", "created"),
    sa.Index("ix_artifact_flow_run_id", "flow_run_id"),
)

variable = sa.Table(
    "variable",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("value", JSONType),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
)

# Values encrypted with a key that lives outside the database; `key_id` names the key
# (a fingerprint), so that rotation can re-encrypt what an old key wrote.
secret = sa.Table(
    "secret",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("ciphertext", sa.Text, nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
)

# Typed input sent to a flow run: a paused run's resume input, or `send_input` messages.
flow_run_input = sa.Table(
    "flow_run_input",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("flow_run_id", sa.Uuid, nullable=False),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("value", JSONType),
    sa.Column("sender", sa.String(255)),
    sa.Column("created", Timestamp, nullable=False),
    sa.UniqueConstraint("flow_run_id", "key", name="uq_flow_run_input_flow_run_id_key"),
)


# -- Events, webhooks and automations (revision 0004) ---------------------------------------

# Something that happened to a resource. `resource` holds the resource's labels, its id
# under "headwater.resource.id" (also in `resource_id`, indexed); `related` is a list of
# such label sets, each with a "headwater.resource.role".
event = sa.Table(
    "event",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("occurred", Timestamp, nullable=False),
    sa.Column("event", sa.String(1024), nullable=False),
    sa.Column("resource_id", sa.String(1024), nullable=False),
    sa.Column("resource", JSONType, nullable=False),
    sa.Column("related", JSONType, nullable=False),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("follows", sa.Uuid),
    sa.Column("received", Timestamp, nullable=False),
    sa.Index("ix_event_occurred", "occurred"),
    sa.Index("ix_event_event_occurred", "event", "occurred"),
    sa.Index("ix_event_resource_id_occurred", "resource_id", "occurred"),
    sa.Index("ix_event_received", "received"),
)

# Events the automations service has not evaluated yet. Whoever writes an event adds it
# here in the same transaction; the service deletes it in the transaction that applies it
# to the triggers, so each event counts exactly once, across restarts.
event_inbox = sa.Table(
    "event_inbox",
    metadata,
    sa.Column("event_id", sa.Uuid, primary_key=True),
    sa.Column("occurred", Timestamp, nullable=False),
    sa.Index("ix_event_inbox_occurred", "occurred"),
)

# `POST /hooks/<slug>` turns a request into an event through `template` (Jinja, sandboxed).
webhook = sa.Table(
    "webhook",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    # Random and unguessable; rotating a webhook gives it a new slug.
    sa.Column("slug", sa.String(64), nullable=False, unique=True),
    sa.Column("template", sa.Text, nullable=False),
    # The HMAC key of signed requests, encrypted like secrets (NULL: unsigned).
    sa.Column("signing_secret", sa.Text),
    sa.Column("signing_key_id", sa.String(64)),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
)

automation = sa.Table(
    "automation",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("trigger", JSONType, nullable=False),
    sa.Column("actions", JSONType, nullable=False),
    sa.Column("actions_on_trigger", JSONType, nullable=False),
    sa.Column("actions_on_resolve", JSONType, nullable=False),
    sa.Column("tags", JSONType, nullable=False),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
)

# A trigger's open window for one `for_each` key: when it opened and closes, what it
# counted, and `data` for what compound, sequence and metric triggers remember.
automation_bucket = sa.Table(
    "automation_bucket",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("automation_id", sa.Uuid, nullable=False),
    sa.Column("trigger_id", sa.String(64), nullable=False),
    sa.Column("bucket_key", sa.String(1024), nullable=False),
    sa.Column("start", Timestamp, nullable=False),
    sa.Column("end", Timestamp, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
    sa.UniqueConstraint(
        "automation_id", "trigger_id", "bucket_key", name="uq_automation_bucket_key"
    ),
    sa.Index("ix_automation_bucket_end", "end"),
)

# Each time an automation's trigger fired (state TRIGGERED) or cleared (RESOLVED).
automation_firing = sa.Table(
    "automation_firing",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("automation_id", sa.Uuid, nullable=False),
    sa.Column("trigger_id", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("bucket_key", sa.String(1024), nullable=False),
    sa.Column("triggering_event_id", sa.Uuid),
    # What the actions' templates see: the triggering event, the bucket's events, ...
    sa.Column("context", JSONType, nullable=False),
    sa.Column("occurred", Timestamp, nullable=False),
    sa.Index("ix_automation_firing_automation_id_occurred", "automation_id", "occurred"),
    sa.Index("ix_automation_firing_occurred", "occurred"),
)

# One action to take for a firing (an outbox): PENDING until the executor takes it, then
# RUNNING, COMPLETED or FAILED with its result or error.
automation_action = sa.Table(
    "automation_action",
    metadata,
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("firing_id", sa.Uuid, nullable=False),
    sa.Column("automation_id", sa.Uuid, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("action", JSONType, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt", Timestamp, nullable=False),
    sa.Column("result", JSONType),
    sa.Column("error", sa.Text),
    sa.Column("created", Timestamp, nullable=False),
    sa.Column("updated", Timestamp, nullable=False),
    sa.Index("ix_automation_action_state_next_attempt", "state", "next_attempt"),
    sa.Index("ix_automation_action_firing_id", "firing_id"),
    sa.Index("ix_automation_action_automation_id_created", "automation_id", "created"),
)

RECORDED["event"] = (event, columns.EVENT)
