"""Work pools, their queues and workers on the wire."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from headwater.schemas._types import INT32_MAX, Count, Name, Text

#: Longest heartbeat interval a worker may announce (a day).
MAX_HEARTBEAT_INTERVAL = 86_400.0
#: Column length of `work_pool.type`.
TYPE_LENGTH = 64


def _no_slash(value: str) -> str:
    if "/" in value:
        raise ValueError(f"{value[:80]!r} contains '/'; names of pools and queues are part of URLs")
    return value


#: The name of a work pool or a queue: a `Name` without "/" (it appears in URL paths).
PathName = Annotated[Name, AfterValidator(_no_slash)]
#: A work pool type: the name of an infrastructure plugin ("process").
PoolType = Annotated[str, Field(min_length=1, max_length=TYPE_LENGTH, pattern=r"^[^\x00]*$")]
#: A queue's priority: 1 is served first.
Priority = Annotated[int, Field(ge=1, le=INT32_MAX)]


def _checked_template(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        from headwater.worker.infrastructure import validate_job_template

        validate_job_template(value)
    return value


#: A job template, checked (`worker.infrastructure.validate_job_template`).
JobTemplate = Annotated[
    dict[str, Any],
    AfterValidator(_checked_template),
    Field(description='{"job_configuration": {...}, "variables": <JSON schema>}'),
]


class WorkPoolStatus(enum.StrEnum):
    """READY: a worker is online; NOT_READY: none is; PAUSED: the pool is paused."""

    READY = "READY"
    NOT_READY = "NOT_READY"
    PAUSED = "PAUSED"


class WorkerStatus(enum.StrEnum):
    """ONLINE until a worker misses its heartbeats (see `docs/work-pools.md`)."""

    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


class WorkPoolCreate(BaseModel):
    """Body of `POST /api/work_pools`. The pool gets a queue named "default"."""

    model_config = ConfigDict(extra="forbid")

    name: PathName
    type: PoolType = Field(default="process", description="An infrastructure type.")
    description: Text | None = None
    base_job_template: JobTemplate | None = Field(
        default=None, description="Default: the template of the type's infrastructure."
    )
    concurrency_limit: Count | None = Field(
        default=None, description="Runs of the pool that may be Pending or Running at once."
    )
    paused: bool = False

    @model_validator(mode="after")
    def _known_type(self) -> WorkPoolCreate:
        if self.base_job_template is None:
            from headwater.worker.infrastructure import require_known_type

            require_known_type(self.type)
        return self


class WorkPoolUpdate(BaseModel):
    """Body of `PATCH /api/work_pools/{name}`: the fields given change (null clears)."""

    model_config = ConfigDict(extra="forbid")

    description: Text | None = None
    base_job_template: JobTemplate | None = None
    concurrency_limit: Count | None = None
    paused: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> WorkPoolUpdate:
        for field in ("base_job_template", "paused"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null; leave it out to keep it")
        return self


class WorkPoolResponse(BaseModel):
    id: uuid.UUID
    name: str
    type: str
    description: str | None
    base_job_template: dict[str, Any]
    concurrency_limit: int | None
    paused: bool
    status: WorkPoolStatus
    default_queue_id: uuid.UUID | None
    created: dt.datetime
    updated: dt.datetime


class WorkPoolTypeResponse(BaseModel):
    """An infrastructure type this server knows, and its default job template."""

    type: str
    base_job_template: dict[str, Any]


class WorkQueueCreate(BaseModel):
    """Body of `POST /api/work_pools/{pool}/queues`."""

    model_config = ConfigDict(extra="forbid")

    name: PathName
    description: Text | None = None
    priority: Priority | None = Field(
        default=None, description="1 is served first; default: after the pool's other queues."
    )
    concurrency_limit: Count | None = None
    paused: bool = False


class WorkQueueUpdate(BaseModel):
    """Body of `PATCH /api/work_pools/{pool}/queues/{name}`: the fields given change."""

    model_config = ConfigDict(extra="forbid")

    description: Text | None = None
    priority: Priority | None = None
    concurrency_limit: Count | None = None
    paused: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> WorkQueueUpdate:
        for field in ("priority", "paused"):
            if field in self.model_fields_set and getattr(self, field) is None:
                raise ValueError(f"{field} cannot be null; leave it out to keep it")
        return self


class WorkQueueResponse(BaseModel):
    id: uuid.UUID
    work_pool_id: uuid.UUID
    work_pool_name: str
    name: str
    description: str | None
    priority: int
    concurrency_limit: int | None
    paused: bool
    created: dt.datetime
    updated: dt.datetime


class WorkerHeartbeat(BaseModel):
    """Body of the heartbeat routes: who the worker is, and how often it will call."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="Unique within the pool (e.g. host and process id).")
    heartbeat_interval: float = Field(
        default=30.0,
        gt=0,
        le=MAX_HEARTBEAT_INTERVAL,
        allow_inf_nan=False,
        description="Seconds between two heartbeats; after 3 missed ones (and at least "
        "10 s) the worker is OFFLINE and its runs are recovered.",
    )


class WorkerResponse(BaseModel):
    id: uuid.UUID
    name: str
    work_pool_id: uuid.UUID | None
    work_pool_name: str | None
    heartbeat_interval: float
    last_heartbeat: dt.datetime
    status: WorkerStatus
    created: dt.datetime
