"""Flow runs: create, read, filter, count, delete, set state, state history."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError

from headwater.core.ids import uuid7_hex
from headwater.core.rules import RunPosition, decide
from headwater.exceptions import Conflict, PayloadTooLarge
from headwater.schemas._types import epoch, hex_id
from headwater.schemas.common import Page, utc
from headwater.schemas.flow_runs import (
    FlowRunCreate,
    FlowRunFilter,
    FlowRunHistory,
    FlowRunHistoryBucket,
    FlowRunHistoryQuery,
    FlowRunQuery,
    FlowRunResponse,
    StateCounts,
    json_size,
)
from headwater.schemas.states import SetStateRequest, SetStateResponse, StateResponse
from headwater.server.api._responses import errors
from headwater.server.dependencies import ConfigDep, DatabaseDep
from headwater.server.notifications import NotifierDep
from headwater.server.repositories import flow_runs, states
from headwater.store import queries

router = APIRouter(prefix="/flow_runs", tags=["flow runs"])


@router.post("", status_code=201, responses=errors(404, 413))
def create_flow_run(
    db: DatabaseDep,
    config: ConfigDep,
    notifier: NotifierDep,
    body: FlowRunCreate,
    response: Response,
) -> FlowRunResponse:
    """Create a flow run (201); with the `id` of an existing run, return that run (200)."""
    if body.parameters and json_size(body.parameters) > config.parameters_max_bytes:
        raise PayloadTooLarge(
            f"parameters is larger than the limit of {config.parameters_max_bytes} bytes of "
            "JSON; pass large data by reference (a path or URL) instead."
        )
    from headwater.engine.names import generate_run_name

    with db.write() as conn:
        run, created = flow_runs.create(conn, body=body, name=body.name or generate_run_name())
    if created:
        notifier.publish([run.id])
    else:
        response.status_code = 200
    return run


@router.get("")
def list_flow_runs(
    db: DatabaseDep, query: Annotated[FlowRunQuery, Query()]
) -> Page[FlowRunResponse]:
    """Flow runs matching every filter given, a page at a time (latest run time first)."""
    with db.read() as conn:
        items, total = flow_runs.list_flow_runs(
            conn, filters=query, sort=query.sort, offset=query.offset, limit=query.limit
        )
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/counts")
def count_flow_runs(db: DatabaseDep, query: Annotated[FlowRunFilter, Query()]) -> StateCounts:
    """How many flow runs match the filters, per state type."""
    with db.read() as conn:
        counts = flow_runs.count_by_state(conn, filters=query)
    return StateCounts(counts=counts, total=sum(counts.values()))


@router.get("/history", responses=errors(422))
def flow_run_history(
    db: DatabaseDep, query: Annotated[FlowRunHistoryQuery, Query()]
) -> FlowRunHistory:
    """How many flow runs matching the filters ran in each time bucket, per state type.

    The window `since`..`until` (by run time: started, else expected to start, else
    created) is cut into `buckets` equal parts; by default the last 24 hours in 24.
    """
    until = epoch(query.until) if query.until is not None else time.time()
    since = epoch(query.since) if query.since is not None else until - 86_400.0
    if since >= until:
        message = f"since must be before until ({utc(until).isoformat()})"
        raise RequestValidationError(
            [{"loc": ("query", "since"), "msg": message, "type": "value_error"}]
        )
    with db.read() as conn:
        counts = flow_runs.history(
            conn, filters=query, since=since, until=until, buckets=query.buckets
        )
    width = (until - since) / query.buckets
    buckets = [
        FlowRunHistoryBucket(
            start=utc(since + i * width), end=utc(since + (i + 1) * width), counts=bucket
        )
        for i, bucket in enumerate(counts)
    ]
    return FlowRunHistory(since=utc(since), until=utc(until), bucket_seconds=width, buckets=buckets)


@router.get("/by_prefix/{prefix}", responses=errors(404, 409))
def read_flow_run_by_prefix(
    db: DatabaseDep,
    prefix: Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[0-9a-fA-F-]+$")],
) -> FlowRunResponse:
    """The flow run whose id starts with `prefix` (hex digits, dashes optional).

    Like a git short hash: 404 if no run matches, 409 naming the candidates if
    several do. The CLI resolves the short ids it prints through this.
    """
    with db.read() as conn:
        found = queries.read_flow_run(conn, prefix)
        return flow_runs.read(conn, flow_run_id=found.id)


@router.get("/{flow_run_id}", responses=errors(404))
def read_flow_run(db: DatabaseDep, flow_run_id: uuid.UUID) -> FlowRunResponse:
    """The flow run with this id."""
    with db.read() as conn:
        return flow_runs.read(conn, flow_run_id=flow_run_id)


@router.delete("/{flow_run_id}", status_code=204, responses=errors(404))
def delete_flow_run(db: DatabaseDep, flow_run_id: uuid.UUID) -> Response:
    """Delete the flow run with its task runs, state history and logs."""
    with db.write() as conn:
        flow_runs.delete(conn, flow_run_id=flow_run_id)
    return Response(status_code=204)


@router.get("/{flow_run_id}/states", responses=errors(404))
def read_flow_run_states(db: DatabaseDep, flow_run_id: uuid.UUID) -> list[StateResponse]:
    """The states the flow run went through, oldest first (not its task runs')."""
    with db.read() as conn:
        flow_runs.current_state(conn, flow_run_id=flow_run_id)  # 404 if there is none
        return states.history(conn, flow_run_id=flow_run_id)


@router.post("/{flow_run_id}/set_state", responses=errors(404, 409))
def set_flow_run_state(
    db: DatabaseDep, notifier: NotifierDep, flow_run_id: uuid.UUID, body: SetStateRequest
) -> SetStateResponse:
    """Move the flow run to a new state, if the orchestration rules accept it (else 409).

    A final state (Completed, Failed, Cancelled, Crashed) is kept unless
    `force` is true. With `expected_state_type`, the change happens only if
    the run is in a state of that type. A request repeated with the same
    state `id` changes nothing and answers as the first did.
    """
    state_id = uuid.UUID(hex_id(body.id)) if body.id else uuid.UUID(uuid7_hex())
    with db.write() as conn:
        current = flow_runs.current_state(conn, flow_run_id=flow_run_id)
        if body.id is not None:
            known = states.read(conn, state_id=state_id)
            if known is not None:
                if known.flow_run_id != flow_run_id or known.task_run_id is not None:
                    raise Conflict(f"State id {str(state_id)!r} belongs to another run.")
                return SetStateResponse(
                    accepted=True, duplicate=True, reason="Already recorded.", state=known
                )
        current_type = current.state_type
        if body.expected_state_type is not None and current_type != body.expected_state_type:
            raise Conflict(
                f"The run is {current_type.value}, not {body.expected_state_type.value} "
                "as expected (expected_state_type); read it again and decide."
            )
        timestamp = body.timestamp if body.timestamp is not None else time.time()
        # The orchestration rules (core/rules.py): a state proposed through the API
        # belongs to the run's current attempt; only `force` leaves a final state.
        decision = decide(
            current,
            RunPosition(body.type, current.run_count, timestamp),
            force=body.force,
        )
        if not decision.accepted:
            raise Conflict(decision.reason)
        name = body.name or body.type.value.title()
        changed = flow_runs.change_state(
            conn,
            flow_run_id=flow_run_id,
            current=current,
            state_id=state_id,
            state_type=body.type,
            name=name,
            message=body.message,
            timestamp=timestamp,
        )
        if not changed:
            raise Conflict("The run's state changed meanwhile; read it again and retry.")
    notifier.publish([flow_run_id])
    state = StateResponse(
        id=state_id,
        flow_run_id=flow_run_id,
        task_run_id=None,
        type=body.type,
        name=name,
        message=body.message,
        timestamp=utc(timestamp),
    )
    return SetStateResponse(accepted=True, duplicate=False, reason=decision.reason, state=state)
