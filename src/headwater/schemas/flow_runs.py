"""Flow runs on the wire: create, read, filter."""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from headwater.core.states import StateType
from headwater.schemas._types import NAME_LENGTH, Id, Name, Tag, Timestamp
from headwater.schemas.common import Paging
from headwater.schemas.states import StateCreate

#: Default limit of a flow run's `parameters`, as JSON text.
PARAMETERS_MAX_BYTES = 512 * 1024


def json_size(value: Any) -> int:
    """Bytes of `value` as compact JSON text (what the limits count)."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


class FlowRunCreate(BaseModel):
    """Body of `POST /api/flow_runs`: a run of a flow, named by `flow_id` or `flow_name`.

    Naming the flow by `flow_name` creates the flow if it does not exist (its id
    is the same as the SDK gives it). Giving `id` makes the request idempotent:
    sending it again returns the existing run.
    """

    model_config = ConfigDict(extra="forbid")

    id: Id | None = Field(default=None, description="Defaults to a new UUIDv7.")
    flow_id: Id | None = None
    flow_name: Name | None = None
    name: Name | None = Field(default=None, description="Defaults to a generated name.")
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description=f"JSON object; at most {PARAMETERS_MAX_BYTES // 1024} KB by default.",
    )
    tags: list[Tag] = Field(default_factory=list)
    state: StateCreate = Field(
        default_factory=lambda: StateCreate(type=StateType.PENDING),
        description="The run's first state (default Pending).",
    )
    parent_flow_run_id: Id | None = None
    parent_task_run_id: Id | None = None
    deployment_id: Id | None = None
    expected_start_time: Timestamp | None = None

    @model_validator(mode="after")
    def _one_flow(self) -> FlowRunCreate:
        if (self.flow_id is None) == (self.flow_name is None):
            raise ValueError("give exactly one of flow_id and flow_name")
        return self


class FlowRunResponse(BaseModel):
    id: uuid.UUID
    name: str
    flow_id: uuid.UUID
    flow_name: str
    state_type: StateType
    state_name: str
    state_message: str | None
    state_timestamp: dt.datetime
    parameters: dict[str, Any]
    tags: list[str]
    run_count: int
    parent_flow_run_id: uuid.UUID | None
    root_flow_run_id: uuid.UUID | None
    parent_task_run_id: uuid.UUID | None
    deployment_id: uuid.UUID | None
    expected_start_time: dt.datetime | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    duration: float | None = Field(description="Seconds from start to end, once both are set.")
    created: dt.datetime
    updated: dt.datetime


class FlowRunSort(enum.StrEnum):
    """Orders of a flow-run listing. Run time: started, else expected to start, else created."""

    RUN_TIME_DESC = "RUN_TIME_DESC"
    RUN_TIME_ASC = "RUN_TIME_ASC"
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"


class FlowRunFilter(BaseModel):
    """Filters of `GET /api/flow_runs` and `GET /api/flow_runs/counts`; all must match."""

    flow_name: str | None = Field(default=None, max_length=NAME_LENGTH)
    flow_id: uuid.UUID | None = None
    state_type: list[StateType] | None = Field(
        default=None, description="Any of these state types (repeat the parameter)."
    )
    tag: list[str] | None = Field(
        default=None, description="All of these tags (repeat the parameter)."
    )
    since: dt.datetime | None = Field(default=None, description="Run time at or after this.")
    until: dt.datetime | None = Field(default=None, description="Run time at or before this.")
    parent_flow_run_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    state_name: list[str] | None = Field(
        default=None,
        description='Any of these state names, e.g. "Late" (repeat the parameter).',
    )


class FlowRunQuery(FlowRunFilter, Paging):
    """Query parameters of `GET /api/flow_runs`: filters, order and paging."""

    sort: FlowRunSort = FlowRunSort.RUN_TIME_DESC


class StateCounts(BaseModel):
    """How many runs match, per state type; `total` is their sum."""

    counts: dict[StateType, int]
    total: int


#: The most buckets `GET /api/flow_runs/history` answers with.
MAX_HISTORY_BUCKETS = 500


class FlowRunHistoryQuery(FlowRunFilter):
    """Query parameters of `GET /api/flow_runs/history`: filters, window and bucket count.

    The window is `since` to `until` (run time, as in the listing); by default the
    24 hours until now.
    """

    buckets: int = Field(
        default=24, ge=1, le=MAX_HISTORY_BUCKETS, description="Equal time buckets."
    )


class FlowRunHistoryBucket(BaseModel):
    """The runs whose run time falls in [start, end), per state type (absent: none)."""

    start: dt.datetime
    end: dt.datetime
    counts: dict[StateType, int]


class FlowRunHistory(BaseModel):
    """How many flow runs ran in each time bucket of a window, per state type."""

    since: dt.datetime
    until: dt.datetime
    bucket_seconds: float
    buckets: list[FlowRunHistoryBucket]
