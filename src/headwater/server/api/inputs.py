"""Pause, resume, and the inputs of flow runs (human-in-the-loop, `send_input`/`receive_input`).

Waiting requests (`wait`) are held open until the run changes or an input
arrives (the notifier wakes them; a timer catches writes of other processes),
and at most the server's `claim_max_wait`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from headwater.core.states import StateType
from headwater.exceptions import Conflict
from headwater.schemas.inputs import (
    MAX_WAIT,
    FlowRunInputCreate,
    FlowRunInputFilter,
    FlowRunInputResponse,
    PauseInfo,
    PauseRequest,
    PauseResponse,
    ResumeRequest,
    ResumeResponse,
)
from headwater.server.api._responses import errors
from headwater.server.config import ServerConfig
from headwater.server.dependencies import ConfigDep, DatabaseDep
from headwater.server.notifications import Notifier, NotifierDep
from headwater.server.repositories import inputs

router = APIRouter(prefix="/flow_runs", tags=["flow run inputs"])

#: Seconds between two reads of a waiting request that nothing woke (a write of another
#: process on SQLite cannot notify this one).
POLL_INTERVAL = 1.0
KeyPath = Annotated[str, Path(min_length=1, max_length=255)]
T = TypeVar("T")


async def _wait(
    request: Request,
    notifier: Notifier,
    config: ServerConfig,
    flow_run_id: uuid.UUID,
    wait: float,
    read: Callable[[], T],
    ready: Callable[[T], bool],
) -> T:
    """`read()` until `ready(answer)`, the wait is over, or the client is gone."""
    deadline = time.monotonic() + min(wait, config.claim_max_wait)
    async with notifier.subscribe(flow_run_id) as subscription:
        while True:
            answer = await run_in_threadpool(read)
            remaining = deadline - time.monotonic()
            if ready(answer) or remaining <= 0 or await request.is_disconnected():
                return answer
            try:
                await subscription.wait(min(remaining, POLL_INTERVAL))
            except asyncio.CancelledError:
                return answer  # shutting down: answer what we have


@router.post("/{flow_run_id}/pause", responses=errors(404, 409, 422))
def pause_flow_run(
    db: DatabaseDep, notifier: NotifierDep, flow_run_id: uuid.UUID, body: PauseRequest
) -> PauseResponse:
    """Pause (or suspend) a Running flow run: what `pause_flow_run()` in the run asks.

    A key that paused this run before answers `paused: false` with the input it
    was resumed with, and changes nothing: a flow run again after a suspension
    passes its earlier pauses.
    """
    with db.write() as conn:
        answer = inputs.pause(conn, flow_run_id=flow_run_id, body=body)
    if answer.paused:
        notifier.publish([flow_run_id])
    return answer


@router.get("/{flow_run_id}/pause", responses=errors(404))
async def read_pause(
    request: Request,
    db: DatabaseDep,
    notifier: NotifierDep,
    config: ConfigDep,
    flow_run_id: uuid.UUID,
    wait: Annotated[
        float,
        Query(ge=0, le=MAX_WAIT, description="Hold the request while the run stays PAUSED."),
    ] = 0.0,
) -> PauseInfo:
    """The run's state and latest pause: the input schema it waits for, its deadline, and
    the input it was resumed with."""

    def read() -> PauseInfo:
        with db.read() as conn:
            return inputs.pause_info(conn, flow_run_id=flow_run_id)

    return await _wait(
        request,
        notifier,
        config,
        flow_run_id,
        wait,
        read,
        lambda info: info.state_type is not StateType.PAUSED,
    )


@router.get("/{flow_run_id}/input_schema", responses=errors(404, 409))
def read_input_schema(db: DatabaseDep, flow_run_id: uuid.UUID) -> dict[str, Any] | None:
    """The JSON schema of the input a paused run waits for (null: it waits for none); a form
    for it can be built from the schema. 409 if the run is not paused."""
    with db.read() as conn:
        info = inputs.pause_info(conn, flow_run_id=flow_run_id)
    if info.state_type is not StateType.PAUSED:
        raise Conflict(
            f"Flow run {str(flow_run_id)!r} is {info.state_type.value}, not PAUSED: it waits "
            "for no input."
        )
    return info.input_schema


@router.post("/{flow_run_id}/resume", responses=errors(404, 409, 422))
def resume_flow_run(
    db: DatabaseDep,
    notifier: NotifierDep,
    flow_run_id: uuid.UUID,
    body: ResumeRequest | None = None,
) -> ResumeResponse:
    """Resume a paused flow run (back to Running) or a suspended one (scheduled again on its
    deployment), with `run_input` valid against its input schema (422 naming the field).
    409 if the run is not paused, or its pause timed out (it is Failed then)."""
    with db.write() as conn:
        resumed = inputs.resume(
            conn, flow_run_id=flow_run_id, run_input=body.run_input if body else None
        )
    notifier.publish([flow_run_id])
    if resumed.refusal:
        raise Conflict(resumed.refusal)
    return resumed.response


@router.post("/{flow_run_id}/input", status_code=201, responses=errors(404, 409, 422))
def create_flow_run_input(
    db: DatabaseDep, notifier: NotifierDep, flow_run_id: uuid.UUID, body: FlowRunInputCreate
) -> FlowRunInputResponse:
    """Store a value for the run under a key unique in the run (`send_input`)."""
    with db.write() as conn:
        created = inputs.create(
            conn, flow_run_id=flow_run_id, key=body.key, value=body.value, sender=body.sender
        )
    notifier.publish([flow_run_id])  # wakes its `receive_input`
    return created


@router.post("/{flow_run_id}/input/filter", responses=errors(404))
async def filter_flow_run_inputs(
    request: Request,
    db: DatabaseDep,
    notifier: NotifierDep,
    config: ConfigDep,
    flow_run_id: uuid.UUID,
    body: FlowRunInputFilter,
) -> list[FlowRunInputResponse]:
    """The run's inputs with keys starting with `prefix`, oldest first, except
    `exclude_keys`; with `wait`, held until there is one."""

    def read() -> list[FlowRunInputResponse]:
        with db.read() as conn:
            inputs.require_run(conn, flow_run_id)
            return inputs.find(
                conn,
                flow_run_id=flow_run_id,
                prefix=body.prefix,
                exclude_keys=body.exclude_keys,
                limit=body.limit,
            )

    return await _wait(request, notifier, config, flow_run_id, body.wait, read, bool)


@router.get("/{flow_run_id}/input/{key}", responses=errors(404))
def read_flow_run_input(
    db: DatabaseDep, flow_run_id: uuid.UUID, key: KeyPath
) -> FlowRunInputResponse:
    """The run's input stored under `key`."""
    with db.read() as conn:
        return inputs.read(conn, flow_run_id=flow_run_id, key=key)


@router.delete("/{flow_run_id}/input/{key}", status_code=204, responses=errors(404))
def delete_flow_run_input(db: DatabaseDep, flow_run_id: uuid.UUID, key: KeyPath) -> Response:
    """Delete the run's input stored under `key`."""
    with db.write() as conn:
        inputs.delete(conn, flow_run_id=flow_run_id, key=key)
    return Response(status_code=204)
