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
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from headwater.schemas._types import Timestamp


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

    cron: str = Field(description="A cron expression: 5 fields, or 6 with seconds.")
    timezone: str | None = Field(default=None, description="IANA name; default UTC.")
    day_or: bool = Field(
        default=True,
        description="With both day-of-month and day-of-week given: either matches (true) "
        "or both must (false).",
    )


class IntervalSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval: float = Field(gt=0, description="Seconds between two runs.")
    anchor_date: Timestamp | None = Field(
        default=None, description="A time the runs are aligned to; default 2020-01-01 00:00."
    )
    timezone: str | None = Field(default=None, description="IANA name; default UTC.")


class RRuleSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rrule: str = Field(description="An RFC 5545 recurrence rule, optionally with DTSTART.")
    timezone: str | None = Field(default=None, description="IANA name; default UTC.")


ScheduleSpec = CronSchedule | IntervalSchedule | RRuleSchedule


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
