"""`GET /api/stream`: state changes and log lines as server-sent events, live.

The stream polls the database (`server/streams.py`) when a notification says
the followed run changed (`server/notifications.py`: in process, or from
another replica through PostgreSQL NOTIFY), and every `poll_interval` in
case a notification was lost. See docs/server.md, "Live updates and replicas".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from headwater.core.states import TERMINAL_TYPES
from headwater.exceptions import ObjectNotFound
from headwater.server.api._responses import errors
from headwater.server.database import Database
from headwater.server.dependencies import DatabaseDep
from headwater.server.notifications import Notifier, NotifierDep
from headwater.server.repositories import flow_runs
from headwater.server.streams import (
    KINDS,
    LOGS,
    STATES,
    Follower,
    Poll,
    StreamOptions,
    parse_event_id,
)

logger = logging.getLogger(__name__)

router = APIRouter(tags=["stream"])

#: How long a disconnected EventSource waits before reconnecting (milliseconds).
RETRY_MILLISECONDS = 1000
HEARTBEAT = ": keep-alive\n\n"
#: Errors of a database that is away for a moment: a stream waits them out.
_UNAVAILABLE = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
)


def _invalid(location: tuple[str, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": location, "msg": message, "type": "value_error"}])


def _kinds(text: str | None, flow_run_id: uuid.UUID | None) -> frozenset[str]:
    if text is None:
        return frozenset({STATES, LOGS}) if flow_run_id is not None else frozenset({STATES})
    kinds = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not kinds or not kinds <= KINDS:
        raise _invalid(
            ("query", "kinds"),
            f"kinds must be a comma-separated list of {', '.join(sorted(KINDS))}, not {text!r}",
        )
    if flow_run_id is None and LOGS in kinds:
        raise _invalid(("query", "kinds"), "Streaming logs needs a flow_run_id")
    return kinds


def get_stream_options(request: Request) -> StreamOptions:
    options: StreamOptions = getattr(request.app.state, "stream_options", StreamOptions())
    return options


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A stream of server-sent events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **errors(404),
    },
    summary="Follow runs live (server-sent events)",
)
async def stream(
    request: Request,
    db: DatabaseDep,
    notifier: NotifierDep,
    flow_run_id: Annotated[
        uuid.UUID | None,
        Query(description="Follow this flow run; without it, the states of every flow run."),
    ] = None,
    kinds: Annotated[
        str | None,
        Query(
            description="What to send, comma-separated: states, logs (default: both for a "
            "flow run; states for all runs).",
            max_length=64,
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(description="Resume after the event with this id.", max_length=256),
    ] = None,
    after: Annotated[
        str | None,
        Query(
            description="Start after this event id, for clients that cannot set headers "
            "(a browser's first EventSource request); Last-Event-ID wins when both are sent.",
            max_length=256,
        ),
    ] = None,
) -> StreamingResponse:
    """Follow a flow run (its states, its task runs' states, its logs) or all flow runs' states.

    A stream of one flow run starts with its history and ends after it reaches a
    final state; a stream of all runs starts now and does not end.

    Events (`event:` field; `data:` is JSON):

    - `flow_run.state`: a state the flow run entered (a `StateResponse`, `task_run_id` null).
    - `task_run.state`: a state one of its task runs entered (a `StateResponse`).
    - `log`: a log line of the run or its task runs (a `LogResponse`).
    - `end`: the followed run is final and its last lines were sent; the stream closes.
      Data: `{"flow_run_id", "state_type", "state_name"}`.

    Every event has an `id:`; send it back as the `Last-Event-ID` header (an
    EventSource does) to resume right after that event, or as `?after=` on a first
    request. Lines starting with `:` are heartbeats.
    """
    wanted = _kinds(kinds, flow_run_id)
    given = last_event_id or after
    try:
        resume = parse_event_id(given) if given else None
    except ValueError:
        where, name = (("header", "last-event-id"), "Last-Event-ID")
        if not last_event_id:
            where, name = ("query", "after"), "after"
        raise _invalid(
            where,
            f"{name} {given!r} is not an event id of this stream; "
            "reconnect without it to start over",
        ) from None
    if flow_run_id is not None and not await run_in_threadpool(_exists, db, flow_run_id):
        raise ObjectNotFound(f"No flow run found with id {str(flow_run_id)!r}.")
    follower = Follower(flow_run_id, wanted, resume=resume, now=time.time())
    options = get_stream_options(request)
    return EventStreamResponse(
        _events(request, db, notifier, follower, options),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _exists(db: Database, flow_run_id: uuid.UUID) -> bool:
    with db.read() as conn:
        return flow_runs.exists(conn, flow_run_id=flow_run_id)


def _poll(db: Database, follower: Follower, late: bool) -> Poll:
    with db.read() as conn:
        return follower.poll(conn, late=late, now=time.time())


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response that closes its generator however the response ends.

    (Starlette leaves the generator suspended when the client is gone; closing it
    at once ends the stream's subscription.)
    """

    media_type = "text/event-stream"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            iterator: Any = self.body_iterator
            if hasattr(iterator, "aclose"):
                await iterator.aclose()


async def _events(
    request: Request,
    db: Database,
    notifier: Notifier,
    follower: Follower,
    options: StreamOptions,
) -> AsyncGenerator[str]:
    clock = asyncio.get_running_loop().time
    async with notifier.subscribe(follower.flow_run_id) as subscription:
        # Subscribed before the first byte: a client that saw it misses no wake-up.
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        next_tick = last_write = last_poll = clock()  # the first poll looks for late rows
        final_since: float | None = None  # when the followed run was first seen final
        gap = options.min_gap if follower.flow_run_id else options.all_runs_min_gap
        unavailable = False
        while True:
            last_poll = clock()
            ending = final_since is not None and last_poll >= final_since + options.end_grace
            late = ending or last_poll >= next_tick
            if late:
                next_tick = last_poll + options.poll_interval
            try:
                result: Poll | None = await run_in_threadpool(_poll, db, follower, late)
                unavailable = False
            except _UNAVAILABLE as exc:
                # The database is away: keep the client, try again at the next tick.
                if not unavailable:
                    logger.warning("A stream cannot read the database, retrying: %s", exc)
                unavailable, result = True, None
            if result is not None:
                for event in result.events:
                    yield event.encode()
                if result.events:
                    last_write = clock()
                if result.more:
                    continue
                if follower.flow_run_id is not None:
                    if result.state is not None and result.state[0] not in TERMINAL_TYPES:
                        final_since = None
                    elif ending:
                        # Final for `end_grace` now, and this last poll (late rows
                        # included) sent what came meanwhile: done.
                        yield _end_event(follower, result)
                        return
                    elif final_since is None:
                        final_since = clock()
            if await request.is_disconnected():
                return
            deadline = min(next_tick, last_write + options.heartbeat_interval)
            if final_since is not None:
                deadline = min(deadline, final_since + options.end_grace)
            if await subscription.wait(max(0.0, deadline - clock())) is not None:
                # Woken: let a burst of notifications settle into one poll.
                await asyncio.sleep(max(0.0, last_poll + gap - clock()))
            if clock() - last_write >= options.heartbeat_interval:
                yield HEARTBEAT
                last_write = clock()


def _end_event(follower: Follower, result: Poll) -> str:
    state_type, state_name = result.state if result.state is not None else (None, None)
    data = {
        "flow_run_id": str(follower.flow_run_id),
        "state_type": None if state_type is None else state_type.value,
        "state_name": state_name,
    }
    text = json.dumps(data, separators=(",", ":"))
    return f"id: {follower.event_id}\nevent: end\ndata: {text}\n\n"
