"""Deployments on the wire: create (upsert), read, update, run, claim and begin."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from headwater.core.states import StateType
from headwater.schemas._types import INT32_MAX, Id, Name, Tag, Timestamp
from headwater.schemas.common import Paging
from headwater.schemas.flow_runs import FlowRunResponse
from headwater.schemas.schedules import DeploymentScheduleCreate, DeploymentScheduleResponse


class CollisionStrategy(enum.StrEnum):
    """What a run does when its deployment's concurrency limit is reached."""

    #: wait in the queue until a running one finishes
    ENQUEUE = "ENQUEUE"
    #: be cancelled at once
    CANCEL_NEW = "CANCEL_NEW"


class DeploymentStatus(enum.StrEnum):
    #: a worker of its pool (or its `serve` process) asked for work recently
    READY = "READY"
    NOT_READY = "NOT_READY"


class DeploymentCreate(BaseModel):
    """Body of `POST /api/deployments`: creates the deployment, or updates the one of that
    flow with that name (its schedules are replaced, and the future runs they made)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    flow_name: Name
    version: str | None = Field(default=None, max_length=255)
    description: str | None = None
    entrypoint: str | None = Field(
        default=None,
        description="Where the flow is: 'path/to/file.py:function' or 'package.module:function'.",
    )
    path: str | None = Field(
        default=None, description="Working directory the entrypoint is relative to."
    )
    parameters: dict[str, Any] = Field(default_factory=dict, description="Default parameters.")
    parameter_schema: dict[str, Any] = Field(
        default_factory=dict, description="JSON schema of the flow's parameters."
    )
    enforce_parameter_schema: bool = True
    tags: list[Tag] = Field(default_factory=list)
    work_pool_name: Name | None = Field(
        default=None, description="None: the runs are served by `flow.serve()`."
    )
    work_queue_name: Name | None = Field(default=None, description="Default: 'default'.")
    job_variables: dict[str, Any] = Field(default_factory=dict)
    concurrency_limit: int | None = Field(default=None, ge=1, le=INT32_MAX)
    collision_strategy: CollisionStrategy = CollisionStrategy.ENQUEUE
    paused: bool = False
    schedules: list[DeploymentScheduleCreate] = Field(default_factory=list)


class DeploymentUpdate(BaseModel):
    """Body of `PATCH /api/deployments/{id}`: the fields to change."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(default=None, max_length=255)
    description: str | None = None
    entrypoint: str | None = None
    path: str | None = None
    parameters: dict[str, Any] | None = None
    parameter_schema: dict[str, Any] | None = None
    enforce_parameter_schema: bool | None = None
    tags: list[Tag] | None = None
    work_pool_name: Name | None = None
    work_queue_name: Name | None = None
    job_variables: dict[str, Any] | None = None
    concurrency_limit: int | None = Field(default=None, ge=0, le=INT32_MAX)
    collision_strategy: CollisionStrategy | None = None
    paused: bool | None = None


class DeploymentResponse(BaseModel):
    id: uuid.UUID
    name: str
    flow_id: uuid.UUID
    flow_name: str
    version: str | None
    description: str | None
    entrypoint: str | None
    path: str | None
    parameters: dict[str, Any]
    parameter_schema: dict[str, Any]
    enforce_parameter_schema: bool
    tags: list[str]
    work_pool_name: str | None
    work_queue_name: str | None
    job_variables: dict[str, Any]
    concurrency_limit: int | None
    collision_strategy: CollisionStrategy
    paused: bool
    status: DeploymentStatus
    last_polled: dt.datetime | None
    schedules: list[DeploymentScheduleResponse]
    created: dt.datetime
    updated: dt.datetime


class DeploymentQuery(Paging):
    flow_name: Name | None = None
    work_pool_name: Name | None = None
    paused: bool | None = None
    tag: list[Tag] = Field(default_factory=list, description="Deployments with every tag.")


class DeploymentFlowRunCreate(BaseModel):
    """Body of `POST /api/deployments/{id}/create_flow_run`."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Over the deployment's defaults."
    )
    scheduled_time: Timestamp | None = Field(default=None, description="Default: now.")
    name: Name | None = None
    tags: list[Tag] = Field(default_factory=list)
    idempotency_key: str | None = Field(
        default=None,
        max_length=255,
        description="A second request with the same key returns the first run.",
    )
    job_variables: dict[str, Any] | None = None
    parent_flow_run_id: Id | None = None
    parent_task_run_id: Id | None = None


class ClaimRequest(BaseModel):
    """Body of a claim: due runs of a work pool (or of given deployments, for `serve`)."""

    model_config = ConfigDict(extra="forbid")

    worker_id: Id
    work_queue_names: list[Name] = Field(
        default_factory=list, description="Only these queues of the pool (default: all)."
    )
    deployment_ids: list[Id] = Field(
        default_factory=list, description="For /deployments/get_scheduled_flow_runs."
    )
    limit: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Runs to claim at most (0: only wait for cancellations among `running`).",
    )
    wait: float = Field(
        default=0.0,
        ge=0.0,
        le=60.0,
        description="Seconds to hold the request open until a run is due (long poll).",
    )
    running: list[Id] = Field(
        default_factory=list,
        description="Runs this worker executes now: any of them being cancelled ends the wait.",
    )


class ClaimedRun(BaseModel):
    """A run this worker now owns: start it with `claim_token` within seconds."""

    flow_run: FlowRunResponse
    claim_token: str
    deployment_id: uuid.UUID
    deployment_name: str
    deployment_version: str | None = None
    entrypoint: str | None
    path: str | None
    job_configuration: dict[str, Any]


class ClaimResponse(BaseModel):
    flow_runs: list[ClaimedRun]
    #: runs among `running` that are being cancelled: stop them
    cancelling: list[uuid.UUID]


class BeginRequest(BaseModel):
    """Body of `POST /api/flow_runs/{id}/begin`: the claimed run's process starts it."""

    model_config = ConfigDict(extra="forbid")

    claim_token: str = Field(min_length=1, max_length=32)
    retries: int = Field(default=0, ge=0, le=INT32_MAX)
    retry_delay_seconds: float = Field(default=0.0, ge=0.0)
    process: str | None = Field(default=None, max_length=255)


class CancelResponse(BaseModel):
    flow_run_id: uuid.UUID
    state_type: StateType
    state_name: str


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str | None = Field(default=None, max_length=2000)


class ExitReport(BaseModel):
    """Body of `POST /api/flow_runs/{id}/exited`: how the run's process ended."""

    model_config = ConfigDict(extra="forbid")

    exit_code: int | None = Field(
        default=None, ge=-(2**31), le=INT32_MAX, description="Negative: killed by that signal."
    )
    claim_token: str | None = Field(
        default=None,
        max_length=32,
        description="The claim the process ran under: a report of an older claim is ignored.",
    )
