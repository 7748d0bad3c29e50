"""Schedules on the wire: cron, interval and rrule specs, and a deployment's schedules.

A schedule spec is stored as given (`deployment_schedule.schedule`, JSON):
`{"cron": "0 2 * * *", "timezone": "Europe/Paris", "day_or": true}`,
`{"interval": 3600.0, "anchor_date": "...", "timezone": "UTC"}` or
`{"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": "UTC"}`.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from headwater.core import schedules
from headwater.schemas._types import Timestamp

# Validation reads the spec as the scheduler will (core/schedules.py), so a spec the API
# accepts is one the scheduler can run, and a bad one is a 422 naming the value and the fix.


def _timezone(value: str | None) -> str | None:
    return schedules.validate_timezone(value)


class Catchup(enum.StrEnum):
    """What the scheduler does with the times it missed while it was not running."""

    #: forget them: the next run is the next time from now
    SKIP = "SKIP"
    #: run the most recent missed time once, then go on from now
    LATEST = "LATEST"
    #: run every missed time (bounded by the scheduler's catch-up window)
    ALL = "ALL"


class CronSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        max_length=255,
        description="A cron expression: 5 fields (minute hour day-of-month month "
        "day-of-week), 6 with seconds as the sixth, or an alias such as '@daily'. Read as "
        "local time in the timezone.",
    )
    timezone: str | None = Field(
        default=None, max_length=255, description="IANA name; default UTC."
    )
    day_or: bool = Field(
        default=True,
        description="With both day-of-month and day-of-week given: either matches (true) "
        "or both must (false).",
    )

    _check_timezone = field_validator("timezone")(_timezone)

    @model_validator(mode="after")
    def _check_cron(self) -> CronSchedule:
        self.cron = schedules.validate_cron(self.cron, day_or=self.day_or, timezone=self.timezone)
        return self


class IntervalSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: float = Field(
        ge=schedules.MIN_INTERVAL,
        le=schedules.MAX_INTERVAL,
        allow_inf_nan=False,
        description="Seconds between two runs. Whole days keep the local time of day across "
        "daylight-saving changes; other intervals are exact elapsed seconds.",
    )
    anchor_date: Timestamp | None = Field(
        default=None,
        description="A time the runs are aligned to (ISO 8601 without an offset: local time "
        "in the timezone); default 2020-01-01 00:00 in the timezone.",
    )
    timezone: str | None = Field(
        default=None, max_length=255, description="IANA name; default UTC."
    )

    _check_timezone = field_validator("timezone")(_timezone)

    @model_validator(mode="before")
    @classmethod
    def _local_anchor(cls, data: Any) -> Any:
        # An anchor without an offset is local time in the schedule's timezone (as in the
        # SDK), not UTC as other timestamps of the API are.
        if isinstance(data, dict) and isinstance(data.get("anchor_date"), str):
            try:
                anchor = schedules.anchor_seconds(data["anchor_date"], data.get("timezone"))
            except (ValueError, TypeError, OverflowError):
                return data  # the fields' own validation names the fault
            return {**data, "anchor_date": anchor}
        return data


class RRuleSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rrule: str = Field(
        max_length=schedules.MAX_RRULE_LENGTH,
        description="An RFC 5545 recurrence rule, optionally with DTSTART (default "
        "2020-01-01 00:00 local time), EXDATE and RDATE lines.",
    )
    timezone: str | None = Field(
        default=None, max_length=255, description="IANA name; default UTC."
    )

    _check_timezone = field_validator("timezone")(_timezone)

    @model_validator(mode="after")
    def _check_rrule(self) -> RRuleSchedule:
        self.rrule = schedules.validate_rrule(self.rrule, timezone=self.timezone)
        return self


def _kind(value: Any) -> str | None:
    """Which spec a value is, by its key: errors then name only that kind's fields."""
    if isinstance(value, dict):
        keys = [key for key in ("cron", "interval", "rrule") if key in value]
    else:
        keys = [key for key in ("cron", "interval", "rrule") if hasattr(value, key)]
    return keys[0] if len(keys) == 1 else None


#: A schedule spec: exactly one of "cron", "interval" or "rrule" says which.
ScheduleSpec = Annotated[
    Annotated[CronSchedule, Tag("cron")]
    | Annotated[IntervalSchedule, Tag("interval")]
    | Annotated[RRuleSchedule, Tag("rrule")],
    Discriminator(
        _kind,
        custom_error_type="schedule_kind",
        custom_error_message="a schedule has exactly one of 'cron', 'interval' or 'rrule', "
        'e.g. {"cron": "0 2 * * *"}',
    ),
]


class DeploymentScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: ScheduleSpec
    active: bool = True
    catchup: Catchup = Catchup.SKIP
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of this schedule's runs, over the defaults."
    )


class DeploymentScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schedule: ScheduleSpec | None = None
    active: bool | None = None
    catchup: Catchup | None = None
    parameters: dict[str, Any] | None = None


class DeploymentScheduleResponse(BaseModel):
    id: uuid.UUID
    deployment_id: uuid.UUID
    schedule: ScheduleSpec
    active: bool
    catchup: Catchup
    parameters: dict[str, Any]
    created: dt.datetime
    updated: dt.datetime
