"""Column order of the tables the recorder writes, without importing SQLAlchemy.

The run engine builds rows as tuples in exactly this order, and both writers
(stdlib `sqlite3` and SQLAlchemy) bind them by position. `tables.py` defines
the same columns with their types; a storage test keeps the two in step.
"""

from __future__ import annotations

FLOW = ("id", "name", "created")

FLOW_RUN = (
    "id",
    "flow_id",
    "name",
    "state_type",
    "state_name",
    "state_message",
    "state_timestamp",
    "parameters",
    "tags",
    "run_count",
    "parent_flow_run_id",
    "root_flow_run_id",
    "parent_task_run_id",
    "deployment_id",
    "expected_start_time",
    "start_time",
    "end_time",
    "created",
    "updated",
    "process",
)

TASK_RUN = (
    "id",
    "flow_run_id",
    "task_key",
    "dynamic_key",
    "name",
    "state_type",
    "state_name",
    "state_message",
    "state_timestamp",
    "tags",
    "run_count",
    "task_inputs",
    "start_time",
    "end_time",
    "created",
    "updated",
)

STATE = ("id", "flow_run_id", "task_run_id", "type", "name", "message", "timestamp")

LOG = ("id", "flow_run_id", "task_run_id", "level", "name", "message", "timestamp")

EVENT = (
    "id",
    "occurred",
    "event",
    "resource_id",
    "resource",
    "related",
    "payload",
    "follows",
    "received",
)

#: Columns a later upsert of a run must not change (set once, at creation).
RUN_IMMUTABLE = frozenset({"id", "created"})
