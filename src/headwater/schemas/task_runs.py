"""Task runs on the wire."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field

from headwater.core.states import StateType
from headwater.schemas.common import Paging


class TaskRunResponse(BaseModel):
    id: uuid.UUID
    flow_run_id: uuid.UUID | None
    task_key: str
    dynamic_key: str
    name: str
    state_type: StateType
    state_name: str
    state_message: str | None
    state_timestamp: dt.datetime
    tags: list[str]
    run_count: int
    task_inputs: dict[str, Any] | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    duration: float | None
    created: dt.datetime
    updated: dt.datetime


class TaskRunFilter(BaseModel):
    """Filters of `GET /api/task_runs`; all must match."""

    flow_run_id: uuid.UUID | None = None
    state_type: list[StateType] | None = Field(
        default=None, description="Any of these state types (repeat the parameter)."
    )
    since: dt.datetime | None = Field(default=None, description="Created at or after this.")
    until: dt.datetime | None = Field(default=None, description="Created at or before this.")


class TaskRunQuery(TaskRunFilter, Paging):
    """Query parameters of `GET /api/task_runs`: filters and paging, oldest first."""

    newest_first: bool = False
