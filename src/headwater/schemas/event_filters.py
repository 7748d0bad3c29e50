"""What `POST /api/events/filter`, `count-by` and the live stream accept.

    {"since": "2026-01-01T00:00:00Z", "event": ["headwater.flow-run.*"],
     "resource_id": ["headwater.flow-run.0b6f..."], "limit": 50}

Every field narrows the result (AND); the values inside one list are
alternatives (OR). Name patterns are exact, or end in `*` for a prefix.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from headwater.schemas._types import Timestamp
from headwater.schemas.common import MAX_LIMIT, MAX_OFFSET, utc
from headwater.schemas.events import NAME_MAX_LENGTH, Event

#: The most values of one filter list.
MAX_VALUES = 100

Pattern = Annotated[str, Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=r"^[^\x00]*$")]
Patterns = Annotated[list[Pattern], Field(max_length=MAX_VALUES)]


def _check_patterns(values: list[str], what: str) -> list[str]:
    for value in values:
        if "*" in value[:-1]:
            raise ValueError(
                f"{what} pattern {value!r} has a '*' before its end; only a trailing '*' "
                "(a prefix match) is supported"
            )
    return values


class EventFilter(BaseModel):
    """Which events: every field given must hold."""

    model_config = ConfigDict(extra="forbid")

    since: Timestamp | None = Field(default=None, description="Occurred at or after this time.")
    until: Timestamp | None = Field(default=None, description="Occurred at or before this time.")
    event: Patterns = Field(
        default_factory=list,
        description="Event names: exact, or a prefix ending in '*' (headwater.flow-run.*).",
    )
    resource_id: Patterns = Field(
        default_factory=list, description="Resource ids: exact, or a prefix ending in '*'."
    )
    related_id: Patterns = Field(
        default_factory=list,
        description="Ids of related resources (exact): the event has one of them.",
    )
    resource: dict[str, Pattern | Patterns] = Field(
        default_factory=dict,
        max_length=20,
        description="Resource labels: label -> value pattern(s); every label must match.",
    )

    @field_validator("event", "resource_id")
    @classmethod
    def _trailing_star(cls, values: list[str]) -> list[str]:
        return _check_patterns(values, "name")

    @field_validator("resource")
    @classmethod
    def _labels(cls, value: dict[str, Any]) -> dict[str, Any]:
        for label, patterns in value.items():
            _check_patterns([patterns] if isinstance(patterns, str) else patterns, label)
        return value

    @model_validator(mode="after")
    def _window(self) -> EventFilter:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("since is after until: nothing can match; swap them")
        return self


class EventQuery(EventFilter):
    """A filter with ordering and a page."""

    order: Literal["desc", "asc"] = Field(
        default="desc", description="By occurred time: newest first (desc) or oldest first."
    )
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT, description="Events to return at most.")
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, description="Events to skip.")


class EventPage(BaseModel):
    """One page of events, how many match in all, and the offset of the next page."""

    events: list[Event]
    total: int
    offset: int
    limit: int
    next_offset: int | None = Field(description="Send as `offset` for the next page; null: none.")


class Countable(StrEnum):
    """What `count-by` groups events by."""

    day = "day"
    time = "time"
    event = "event"
    resource = "resource"


class TimeUnit(StrEnum):
    second = "second"
    minute = "minute"
    hour = "hour"
    day = "day"
    week = "week"


UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
#: The most time buckets one count may return.
MAX_BUCKETS = 1000


class CountQuery(BaseModel):
    """The filter, and for `time` counts the bucket size (`interval` x `unit`)."""

    model_config = ConfigDict(extra="forbid")

    filter: EventFilter = Field(default_factory=EventFilter)
    unit: TimeUnit = TimeUnit.hour
    interval: float = Field(default=1, gt=0, le=10_000)
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT, description="Groups to return at most.")


class EventCount(BaseModel):
    """One group: its value (an event name, a resource id, or a bucket's start) and count."""

    value: str
    label: str
    count: int
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None


class EventsCreated(BaseModel):
    """What `POST /api/events` did: events received and how many were new."""

    received: int
    new: int


def bucket_bounds(start: float, size: float) -> tuple[dt.datetime, dt.datetime]:
    """The (start, end) datetimes of a time bucket."""
    return utc(start), utc(start + size)
