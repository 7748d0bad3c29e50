"""Events: send them, filter and count them, read one, and follow them live.

- `POST /api/events`: a list of events (at most 1,000), insert-or-ignore by id.
- `POST /api/events/filter`: a page of the events matching a filter, newest first.
- `POST /api/events/count-by/{day|time|event|resource}`: counts per group.
- `GET /api/events/stream`: server-sent events, the filter in the query string.
- `GET /api/events/{id}`: one event.

See docs/events.md.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import uuid
from collections.abc import AsyncGenerator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from headwater.schemas.event_filters import (
    Countable,
    CountQuery,
    EventCount,
    EventFilter,
    EventPage,
    EventQuery,
    EventsCreated,
)
from headwater.schemas.events import Event
from headwater.server.api._responses import errors
from headwater.server.api.stream import (
    HEARTBEAT,
    RETRY_MILLISECONDS,
    EventStreamResponse,
)
from headwater.server.automations import service as automations_service
from headwater.server.database import Database
from headwater.server.dependencies import DatabaseDep
from headwater.server.repositories import events as repository

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/events", tags=["events"])

#: The most events one `POST /api/events` may carry.
MAX_EVENTS_PER_REQUEST = 1000


def _invalid(location: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": location, "msg": message, "type": "value_error"}])


@router.post("", responses=errors(413, 422))
def create_events(
    db: DatabaseDep,
    events: Annotated[
        list[Event],
        Body(
            max_length=MAX_EVENTS_PER_REQUEST,
            description=f"Events to store (at most {MAX_EVENTS_PER_REQUEST}).",
        ),
    ],
) -> EventsCreated:
    """Store events; an id already stored is skipped, so a retried request adds nothing.

    The server sets each event's `received` time. Automations see them at once.
    """
    received = time.time()
    rows = [event.to_row(received) for event in events]
    with db.write() as conn:
        new = repository.insert_events(conn, rows)
    if new:
        automations_service.nudge()
    return EventsCreated(received=len(events), new=new)


@router.post("/filter", responses=errors(422))
def filter_events(db: DatabaseDep, query: Annotated[EventQuery | None, Body()] = None) -> EventPage:
    """A page of the events matching every field of the filter, newest first by default."""
    query = query or EventQuery()
    with db.read() as conn:
        events, total = repository.query_events(conn, query)
    following = query.offset + len(events)
    return EventPage(
        events=events,
        total=total,
        offset=query.offset,
        limit=query.limit,
        next_offset=following if following < total else None,
    )


@router.post("/count-by/{countable}", responses=errors(422))
def count_events(
    db: DatabaseDep,
    countable: Annotated[Countable, Path(description="Group by: day, time, event or resource.")],
    query: Annotated[CountQuery | None, Body()] = None,
) -> list[EventCount]:
    """How many events match, per event name, resource, day, or time bucket.

    `time` buckets are `interval` x `unit` long; with `filter.since` every bucket
    up to `filter.until` (default now) is listed, empty ones too.
    """
    query = query or CountQuery()
    with db.read() as conn:
        try:
            return repository.count_events(conn, countable, query, time.time())
        except ValueError as exc:
            raise _invalid(("body", "interval"), str(exc)) from None


#: How often a stream reads new events, and how far back each read reaches again:
#: an event whose transaction committed after a later one (received a little
#: earlier) is still found; ids already sent are skipped.
STREAM_POLL_SECONDS = 0.5
STREAM_OVERLAP_SECONDS = 5.0
STREAM_HEARTBEAT_SECONDS = 15.0
_STREAM_PAGE = 500


@router.get(
    "/stream",
    response_class=EventStreamResponse,
    responses={
        200: {
            "description": "A stream of server-sent events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **errors(422),
    },
    summary="Follow events live (server-sent events)",
)
async def stream_events(
    request: Request,
    db: DatabaseDep,
    event: Annotated[
        list[str] | None, Query(description="Event names: exact, or a prefix ending in '*'.")
    ] = None,
    resource_id: Annotated[
        list[str] | None, Query(description="Resource ids: exact, or a prefix ending in '*'.")
    ] = None,
    related_id: Annotated[
        list[str] | None, Query(description="Ids of related resources (exact).")
    ] = None,
    since: Annotated[
        str | None,
        Query(description="Also send events received since this time (default: now)."),
    ] = None,
) -> EventStreamResponse:
    """Events as they arrive, each as `event: event` with the event's JSON as `data`.

    Starts with the events received since `since` (default: only new ones) and
    follows new ones until the client disconnects. Lines starting with `:` are
    heartbeats.
    """
    values: dict[str, Any] = {
        "event": event or [],
        "resource_id": resource_id or [],
        "related_id": related_id or [],
    }
    try:
        flt = EventFilter.model_validate(values)
        start = EventFilter.model_validate({"since": since}).since if since else None
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        ) from None
    options = getattr(request.app.state, "event_stream_options", {})
    return EventStreamResponse(
        _follow(request, db, flt, time.time() if start is None else start, options),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _follow(
    request: Request, db: Database, flt: EventFilter, start: float, options: dict[str, float]
) -> AsyncGenerator[str]:
    poll = options.get("poll", STREAM_POLL_SECONDS)
    overlap = options.get("overlap", STREAM_OVERLAP_SECONDS)
    heartbeat = options.get("heartbeat", STREAM_HEARTBEAT_SECONDS)
    yield f"retry: {RETRY_MILLISECONDS}\n\n"
    # Ids sent with their received time, forgotten once well past the overlap window.
    seen: collections.OrderedDict[uuid.UUID, float] = collections.OrderedDict()
    cursor: tuple[float, uuid.UUID | None] = (start, None)
    last_write = time.monotonic()
    while True:
        fresh, late = await run_in_threadpool(_read, db, flt, cursor, overlap, start)
        for item in (*late, *fresh):
            if item.id in seen:
                continue
            received = item.received.timestamp() if item.received is not None else cursor[0]
            seen[item.id] = received
            yield f"id: {item.id}\nevent: event\ndata: {item.model_dump_json()}\n\n"
            last_write = time.monotonic()
        if fresh:
            last = fresh[-1]
            cursor = (last.received.timestamp() if last.received else cursor[0], last.id)
        while seen and next(iter(seen.values())) < cursor[0] - 2 * overlap:
            seen.popitem(last=False)
        if len(fresh) >= _STREAM_PAGE:
            continue
        if await request.is_disconnected():
            return
        if time.monotonic() - last_write >= heartbeat:
            yield HEARTBEAT
            last_write = time.monotonic()
        await asyncio.sleep(poll)


def _read(
    db: Database,
    flt: EventFilter,
    cursor: tuple[float, uuid.UUID | None],
    overlap: float,
    start: float,
) -> tuple[list[Event], list[Event]]:
    """(events after the cursor, events received shortly before it that may be new)."""
    received, after_id = cursor
    with db.read() as conn:
        fresh = repository.received_after(
            conn, flt, received=received, after_id=after_id, limit=_STREAM_PAGE
        )
        late: list[Event] = []
        if after_id is not None:
            # A transaction that committed after a later one holds events received a
            # little earlier than the cursor: read the overlap window again.
            late = repository.received_after(
                conn,
                flt,
                received=max(start, received - overlap),
                before=received,
                limit=_STREAM_PAGE,
            )
    return fresh, late


@router.get("/{event_id}", responses=errors(404, 422))
def read_event(
    db: DatabaseDep, event_id: Annotated[uuid.UUID, Path(description="The event's id.")]
) -> Event:
    """The event with this id."""
    with db.read() as conn:
        return repository.read_event(conn, event_id=event_id)
