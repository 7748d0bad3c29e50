"""Deployments: create or update, read, list, change, pause, delete; schedules; runs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from headwater.schemas.common import Page
from headwater.schemas.deployments import (
    DeploymentCreate,
    DeploymentFlowRunCreate,
    DeploymentQuery,
    DeploymentResponse,
    DeploymentUpdate,
)
from headwater.schemas.flow_runs import FlowRunResponse
from headwater.schemas.schedules import (
    DeploymentScheduleCreate,
    DeploymentScheduleResponse,
    DeploymentScheduleUpdate,
)
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.notifications import NotifierDep
from headwater.server.repositories import deployments, flow_runs

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.post("", status_code=201, responses=errors(404, 409, 422))
def create_deployment(
    db: DatabaseDep, body: DeploymentCreate, response: Response
) -> DeploymentResponse:
    """Create a deployment (201), or update the flow's deployment of that name (200).

    Updating replaces its schedules, and the future runs the old ones made.
    """
    with db.write() as conn:
        found, created = deployments.upsert(conn, body)
    if not created:
        response.status_code = 200
    return found


@router.get("")
def list_deployments(
    db: DatabaseDep, query: Annotated[DeploymentQuery, Query()]
) -> Page[DeploymentResponse]:
    """Deployments matching every filter given, by flow name then name, a page at a time."""
    with db.read() as conn:
        items, total = deployments.list_deployments(conn, query)
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/name/{flow_name}/{deployment_name}", responses=errors(404))
def read_deployment_by_name(
    db: DatabaseDep, flow_name: str, deployment_name: str
) -> DeploymentResponse:
    """The deployment named `flow_name/deployment_name`."""
    with db.read() as conn:
        return deployments.read_by_name(conn, flow_name=flow_name, name=deployment_name)


@router.get("/{deployment_id}", responses=errors(404))
def read_deployment(db: DatabaseDep, deployment_id: uuid.UUID) -> DeploymentResponse:
    """The deployment with this id."""
    with db.read() as conn:
        return deployments.read(conn, deployment_id=deployment_id)


@router.patch("/{deployment_id}", responses=errors(404, 409, 422))
def update_deployment(
    db: DatabaseDep, deployment_id: uuid.UUID, body: DeploymentUpdate
) -> DeploymentResponse:
    """Change the fields given. New parameters, a new pool or pausing replace the future
    scheduled runs (the scheduler makes them again); `concurrency_limit: 0` clears the limit."""
    with db.write() as conn:
        return deployments.update(conn, deployment_id=deployment_id, body=body)


@router.post("/{deployment_id}/pause", responses=errors(404))
def pause_deployment(db: DatabaseDep, deployment_id: uuid.UUID) -> DeploymentResponse:
    """Pause the deployment: its schedules make no runs and its queued runs wait."""
    with db.write() as conn:
        return deployments.update(
            conn, deployment_id=deployment_id, body=DeploymentUpdate(paused=True)
        )


@router.post("/{deployment_id}/resume", responses=errors(404))
def resume_deployment(db: DatabaseDep, deployment_id: uuid.UUID) -> DeploymentResponse:
    """Resume a paused deployment."""
    with db.write() as conn:
        return deployments.update(
            conn, deployment_id=deployment_id, body=DeploymentUpdate(paused=False)
        )


@router.delete("/{deployment_id}", status_code=204, responses=errors(404))
def delete_deployment(db: DatabaseDep, deployment_id: uuid.UUID) -> Response:
    """Delete the deployment, its schedules and its runs not yet started (others stay)."""
    with db.write() as conn:
        deployments.delete(conn, deployment_id=deployment_id)
    return Response(status_code=204)


@router.get("/{deployment_id}/schedules", responses=errors(404))
def list_schedules(db: DatabaseDep, deployment_id: uuid.UUID) -> list[DeploymentScheduleResponse]:
    """The deployment's schedules, oldest first."""
    with db.read() as conn:
        return deployments.list_schedules(conn, deployment_id=deployment_id)


@router.post("/{deployment_id}/schedules", status_code=201, responses=errors(404, 422))
def add_schedule(
    db: DatabaseDep, deployment_id: uuid.UUID, body: DeploymentScheduleCreate
) -> DeploymentScheduleResponse:
    """Add a schedule; the scheduler makes its runs on its next round."""
    with db.write() as conn:
        return deployments.add_schedule(conn, deployment_id=deployment_id, body=body)


@router.patch("/{deployment_id}/schedules/{schedule_id}", responses=errors(404, 422))
def update_schedule(
    db: DatabaseDep,
    deployment_id: uuid.UUID,
    schedule_id: uuid.UUID,
    body: DeploymentScheduleUpdate,
) -> DeploymentScheduleResponse:
    """Change a schedule: the future runs it made are replaced."""
    with db.write() as conn:
        return deployments.update_schedule(
            conn, deployment_id=deployment_id, schedule_id=schedule_id, body=body
        )


@router.delete("/{deployment_id}/schedules/{schedule_id}", status_code=204, responses=errors(404))
def delete_schedule(db: DatabaseDep, deployment_id: uuid.UUID, schedule_id: uuid.UUID) -> Response:
    """Delete a schedule and the future runs it made."""
    with db.write() as conn:
        deployments.delete_schedule(conn, deployment_id=deployment_id, schedule_id=schedule_id)
    return Response(status_code=204)


@router.post("/{deployment_id}/create_flow_run", status_code=201, responses=errors(404, 422))
def create_flow_run(
    db: DatabaseDep,
    notifier: NotifierDep,
    deployment_id: uuid.UUID,
    body: DeploymentFlowRunCreate,
    response: Response,
) -> FlowRunResponse:
    """Create a run of the deployment, Scheduled for `scheduled_time` (default now) (201).

    Parameters are the deployment's defaults updated with `parameters`. With
    an `idempotency_key` already used for this flow, the existing run is
    returned (200). A worker of the deployment's pool (or its `serve` process)
    claims it when it is due.
    """
    from headwater.engine.names import generate_run_name

    with db.write() as conn:
        run_id, created = deployments.create_flow_run(
            conn,
            deployment_id=deployment_id,
            body=body,
            name=body.name or generate_run_name(),
        )
        run = flow_runs.read(conn, flow_run_id=run_id)
    if created:
        notifier.publish([run_id])
    else:
        response.status_code = 200
    return run
