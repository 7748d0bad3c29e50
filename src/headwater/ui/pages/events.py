"""UI pages: the event feed (`/events`) and one event (`/events/{id}`).

The feed's filters live in the query string (`event`, `resource_id`, `related_id`, each
repeatable or comma-separated; `since` and `until` as ISO 8601 or a span back from now
such as `15m`, `24h`, `7d`; `offset`, `limit`), so a filtered feed is a link to share.
The page follows `GET /api/events/stream` with the same filter and re-renders the feed
when new events arrive.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import urllib.parse
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import QueryParams

from headwater.ui.api import Api, ApiError
from headwater.ui.render import page

router = APIRouter()

#: Events per page unless `limit` says otherwise, and the most a page may ask for.
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: The histogram's window when the filter has no `since`.
DEFAULT_CHART_SECONDS = 24 * 3600.0
#: The most bars the histogram draws.
MAX_BARS = 60

_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_SPAN_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}

#: Resource id prefixes of Headwater's objects and the page each one has.
_PAGES_BY_ID = {
    "headwater.flow-run.": "/flow-runs/{}",
    "headwater.task-run.": "/task-runs/{}",
    "headwater.deployment.": "/deployments/{}",
    "headwater.flow.": "/flows/{}",
    "headwater.automation.": "/automations/{}",
}
#: Bucket sizes the histogram chooses from: (seconds, unit, interval).
_BUCKETS = (
    (1, "second", 1),
    (5, "second", 5),
    (15, "second", 15),
    (30, "second", 30),
    (60, "minute", 1),
    (300, "minute", 5),
    (900, "minute", 15),
    (1800, "minute", 30),
    (3600, "hour", 1),
    (3 * 3600, "hour", 3),
    (6 * 3600, "hour", 6),
    (12 * 3600, "hour", 12),
    (86400, "day", 1),
    (604800, "week", 1),
)


def parse_moment(text: str | None, now: float) -> float | None:
    """Epoch seconds from ISO 8601 text, epoch seconds, or a span back from now (`24h`).

    >>> parse_moment("1h", now=7200.0)
    3600.0
    """
    if text is None or not text.strip():
        return None
    span = _SPAN.match(text)
    if span:
        return now - float(span.group(1)) * _SPAN_SECONDS[span.group(2).lower()]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: write ISO 8601 (2026-01-31T08:00Z) or a span back "
            "from now (15m, 24h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _values(params: QueryParams, key: str) -> list[str]:
    """A repeatable parameter's values; each may also hold several, comma-separated."""
    found: list[str] = []
    for value in params.getlist(key):
        found.extend(part.strip() for part in value.split(",") if part.strip())
    return found


def _integer(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(text or default)))
    except ValueError:
        return default


@dataclass(frozen=True)
class FeedFilter:
    """The feed's filter as the query string gives it."""

    event: list[str]
    resource_id: list[str]
    related_id: list[str]
    since: str
    until: str
    offset: int
    limit: int

    @classmethod
    def from_query(cls, params: QueryParams) -> FeedFilter:
        return cls(
            event=_values(params, "event"),
            resource_id=_values(params, "resource_id"),
            related_id=_values(params, "related_id"),
            since=params.get("since", "").strip(),
            until=params.get("until", "").strip(),
            offset=_integer(params.get("offset"), 0, 0, 1_000_000),
            limit=_integer(params.get("limit"), PAGE_SIZE, 1, MAX_PAGE_SIZE),
        )

    def window(self, now: float) -> tuple[float | None, float | None]:
        """(since, until) as epoch seconds; ValueError for text that is not a time."""
        return parse_moment(self.since, now), parse_moment(self.until, now)

    def body(self, now: float) -> dict[str, Any]:
        """The `EventFilter` of `POST /api/events/filter` and `count-by`."""
        since, until = self.window(now)
        return {
            "event": self.event,
            "resource_id": self.resource_id,
            "related_id": self.related_id,
            "since": since,
            "until": until,
        }

    def stream_url(self, now: float) -> str | None:
        """`/api/events/stream` with this filter, from `now` (when the page was read, so
        that nothing received before the browser connects is missed); None when new
        events cannot show (a later page, or a window that has ended)."""
        if self.offset or self.until:
            return None
        query = [
            *(("event", value) for value in self.event),
            *(("resource_id", value) for value in self.resource_id),
            *(("related_id", value) for value in self.related_id),
            ("since", f"{now:.3f}"),
        ]
        return "/api/events/stream?" + urllib.parse.urlencode(query)

    @property
    def active(self) -> bool:
        return bool(self.event or self.resource_id or self.related_id or self.since or self.until)


def resource_link(resource_id: str, labels: dict[str, Any] | None = None) -> str | None:
    """The UI page of a Headwater object named by a resource id, if it has one."""
    labels = labels or {}
    for prefix, template in _PAGES_BY_ID.items():
        if resource_id.startswith(prefix):
            try:
                return template.format(uuid.UUID(resource_id[len(prefix) :]))
            except ValueError:
                return None
    name = labels.get("headwater.resource.name")
    if resource_id.startswith("headwater.work-pool.") and name:
        return "/work-pools/" + urllib.parse.quote(str(name), safe="")
    if resource_id.startswith("headwater.tag."):
        tag = resource_id[len("headwater.tag.") :]
        return "/flow-runs?" + urllib.parse.urlencode({"tag": tag}) if tag else None
    return None


def _short(resource_id: str) -> str:
    """`headwater.flow.<uuid>` -> "flow 0192f0c4"; other ids as they are."""
    kind, _, rest = resource_id.removeprefix("headwater.").partition(".")
    try:
        return (
            f"{kind} {uuid.UUID(rest).hex[:8]}"
            if resource_id.startswith("headwater.")
            else resource_id
        )
    except ValueError:
        return resource_id


def resource_view(labels: dict[str, Any]) -> dict[str, Any]:
    """A resource as the templates show it: id, name (or a short id), role, link and the
    other labels."""
    resource_id = str(labels.get("headwater.resource.id", ""))
    shown = ("headwater.resource.id", "headwater.resource.name", "headwater.resource.role")
    return {
        "id": resource_id,
        "name": labels.get("headwater.resource.name"),
        "label": labels.get("headwater.resource.name") or _short(resource_id),
        "role": labels.get("headwater.resource.role"),
        "href": resource_link(resource_id, labels),
        "labels": [(key, value) for key, value in labels.items() if key not in shown],
    }


def event_view(event: dict[str, Any]) -> dict[str, Any]:
    """An event from the API with its resource and related resources ready to show."""
    return {
        **event,
        "resource_view": resource_view(event.get("resource") or {}),
        "related_views": [resource_view(item) for item in event.get("related") or []],
    }


def choose_bucket(seconds: float) -> tuple[float, str, int]:
    """The smallest bucket size (seconds, unit, interval) that keeps the bars few."""
    for size, unit, interval in _BUCKETS:
        if seconds / size <= MAX_BARS:
            return float(size), unit, interval
    weeks = math.ceil(seconds / 604800 / MAX_BARS)
    return float(weeks * 604800), "week", weeks


async def histogram(api: Api, feed: FeedFilter, now: float) -> dict[str, Any]:
    """Bars of the event counts over the filter's window (the last day without `since`)."""
    since, until = feed.window(now)
    end = until if until is not None else now
    start = since if since is not None else end - DEFAULT_CHART_SECONDS
    start = min(start, end - 1)
    size, unit, interval = choose_bucket(end - start)
    body = {
        "filter": {**feed.body(now), "since": start, "until": end},
        "unit": unit,
        "interval": interval,
    }
    counts: list[dict[str, Any]] = await api.post("/events/count-by/time", body)
    highest = max((item["count"] for item in counts), default=0)
    width = 100.0 / max(len(counts), 1)
    bars = []
    for index, item in enumerate(counts):
        height = 0.0 if not highest else 56.0 * item["count"] / highest
        bars.append(
            {
                "x": index * width,
                "width": max(width - 0.3, 0.1),
                "height": max(height, 1.5 if item["count"] else 0.0),
                "count": item["count"],
                "start": item["start_time"],
                "end": item["end_time"],
            }
        )
    return {
        "bars": bars,
        "highest": highest,
        "start": dt.datetime.fromtimestamp(start, dt.UTC),
        "end": dt.datetime.fromtimestamp(end, dt.UTC),
        "bucket": f"{interval} {unit}{'s' if interval != 1 else ''}",
        "bucket_seconds": size,
        "default_window": since is None,
    }


@router.get("/events", response_class=HTMLResponse)
async def events_page(request: Request) -> HTMLResponse:
    """The feed, newest first, with its filters, a histogram and live updates."""
    api = Api(request)
    feed = FeedFilter.from_query(request.query_params)
    now = dt.datetime.now(dt.UTC).timestamp()
    error = None
    events: list[dict[str, Any]] = []
    total, next_offset, chart = 0, None, None
    try:
        result = await api.post(
            "/events/filter", {**feed.body(now), "offset": feed.offset, "limit": feed.limit}
        )
        events = [event_view(item) for item in result["events"]]
        total, next_offset = result["total"], result["next_offset"]
        chart = await histogram(api, feed, now)
    except (ValueError, ApiError) as exc:
        # A bad filter is the user's typo: show it above the form they can fix it in.
        error = exc.message if isinstance(exc, ApiError) else str(exc)
    return page(
        request,
        "events/list.html",
        feed=feed,
        events=events,
        total=total,
        next_offset=next_offset,
        chart=chart,
        error=error,
        stream_url=None if error else feed.stream_url(now),
    )


@router.get("/events/{event_id}", response_class=HTMLResponse)
async def event_page(request: Request, event_id: str) -> HTMLResponse:
    """One event in full: its labels, related resources and payload."""
    try:
        event_id = str(uuid.UUID(event_id))
    except ValueError:
        raise ApiError(404, f"No event with id {event_id!r}.") from None
    event = await Api(request).get(f"/events/{event_id}")
    return page(request, "events/detail.html", event=event_view(event))
