"""Schedules for deployments: `Cron`, `Interval` and `RRule`, as in Prefect 3.

    from headwater import flow
    from headwater.schedules import Cron, Interval

    @flow
    def nightly(day: str = "today") -> None: ...

    nightly.serve(name="nightly", schedules=[
        Cron("0 2 * * *", timezone="Europe/Paris"),
        Interval(3600, parameters={"day": "hourly"}),
    ])

Each is checked when it is made: a bad cron expression, an unknown timezone, a
bad rrule or an interval that is not positive raise ValueError saying what to
write instead. Times are local wall-clock times in the timezone (default UTC);
docs/schedules.md has the daylight-saving policy. Importing this module loads
neither croniter nor dateutil (making a `Cron` or `RRule` does).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from headwater.core import schedules as _core

__all__ = ["Cron", "Interval", "RRule", "construct_schedules"]

#: What the scheduler does with times it missed while it was not running.
Catchup = Literal["SKIP", "LATEST", "ALL"]
_CATCHUPS = ("SKIP", "LATEST", "ALL")


def _check_common(catchup: str, parameters: Mapping[str, Any] | None) -> None:
    if catchup not in _CATCHUPS:
        raise ValueError(f"catchup must be 'SKIP', 'LATEST' or 'ALL', got {catchup!r}")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise ValueError(f"parameters must be a dict, got {parameters!r}")


@dataclasses.dataclass(frozen=True)
class Cron:
    """Runs at the times a cron expression matches, in a timezone's local time.

    `cron` has 5 fields (minute hour day-of-month month day-of-week), 6 with
    seconds as the sixth, or is an alias such as "@daily". `day_or`: with both
    day-of-month and day-of-week given, either matches (True) or both must.

    Example:
        >>> Cron("0 9 * * mon-fri", timezone="America/New_York")
    """

    cron: str
    timezone: str | None = None
    day_or: bool = True
    _: dataclasses.KW_ONLY
    active: bool = True
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    catchup: Catchup = "SKIP"

    def __post_init__(self) -> None:
        _check_common(self.catchup, self.parameters)
        if not isinstance(self.day_or, bool):
            raise ValueError(f"day_or must be True or False, got {self.day_or!r}")
        cron = _core.validate_cron(self.cron, day_or=self.day_or, timezone=self.timezone)
        object.__setattr__(self, "cron", cron)

    def to_spec(self) -> dict[str, Any]:
        """The spec as the API stores it."""
        return {"cron": self.cron, "timezone": self.timezone, "day_or": self.day_or}


@dataclasses.dataclass(frozen=True)
class Interval:
    """Runs every `interval` (seconds or a timedelta), aligned to `anchor_date`.

    `anchor_date` (a datetime, ISO text or epoch seconds; naive ones are local
    time in `timezone`) defaults to 2020-01-01 00:00 in the timezone. Intervals
    of whole days keep the local time of day across daylight-saving changes;
    others are exact elapsed seconds.

    Example:
        >>> Interval(dt.timedelta(days=1), anchor_date=dt.datetime(2026, 1, 1, 9),
        ...          timezone="Europe/Paris")
    """

    interval: float | dt.timedelta
    anchor_date: dt.datetime | str | float | None = None
    timezone: str | None = None
    _: dataclasses.KW_ONLY
    active: bool = True
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    catchup: Catchup = "SKIP"

    def __post_init__(self) -> None:
        _check_common(self.catchup, self.parameters)
        seconds = self.interval
        if isinstance(seconds, dt.timedelta):
            seconds = seconds.total_seconds()
        object.__setattr__(self, "interval", _core.validate_interval(seconds))
        _core.validate_timezone(self.timezone)
        if self.anchor_date is not None:
            _core.anchor_seconds(self.anchor_date, self.timezone)

    def to_spec(self) -> dict[str, Any]:
        """The spec as the API stores it (the anchor as epoch seconds)."""
        anchor = self.anchor_date
        if anchor is not None:
            anchor = _core.anchor_seconds(anchor, self.timezone)
        return {"interval": self.interval, "anchor_date": anchor, "timezone": self.timezone}


@dataclasses.dataclass(frozen=True)
class RRule:
    """Runs at the times an RFC 5545 recurrence rule gives, in a timezone's local time.

    The rule may start with a `DTSTART:20260105T090000` line (local time; with
    `;TZID=...` or a trailing `Z` for another zone); without one it counts from
    2020-01-01 00:00. EXDATE and RDATE lines are read too.

    Example:
        >>> RRule("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9;BYMINUTE=0", timezone="Europe/Paris")
    """

    rrule: str
    timezone: str | None = None
    _: dataclasses.KW_ONLY
    active: bool = True
    parameters: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    catchup: Catchup = "SKIP"

    def __post_init__(self) -> None:
        _check_common(self.catchup, self.parameters)
        object.__setattr__(self, "rrule", _core.validate_rrule(self.rrule, timezone=self.timezone))

    def to_spec(self) -> dict[str, Any]:
        """The spec as the API stores it."""
        return {"rrule": self.rrule, "timezone": self.timezone}


Schedule = Cron | Interval | RRule


def construct_schedules(
    *,
    cron: str | Iterable[str] | None = None,
    interval: float | dt.timedelta | Iterable[float | dt.timedelta] | None = None,
    rrule: str | Iterable[str] | None = None,
    anchor_date: dt.datetime | str | float | None = None,
    timezone: str | None = None,
    schedules: Sequence[Schedule | Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """The schedules of `flow.serve(...)` / `flow.deploy(...)` arguments, as the API takes them.

    `cron`, `interval` and `rrule` may each be one value or a list; `anchor_date`
    applies to the intervals, `timezone` to all three. `schedules` items are
    `Cron`/`Interval`/`RRule` objects, specs such as `{"cron": "0 2 * * *"}`, or
    whole schedules (`{"schedule": {...}, "active": False, ...}`). Raises
    ValueError naming a bad value.

    Example:
        >>> construct_schedules(cron="0 2 * * *")
        [{'schedule': {'cron': '0 2 * * *', 'timezone': None, 'day_or': True},
          'active': True, 'catchup': 'SKIP', 'parameters': {}}]
    """
    if anchor_date is not None and interval is None:
        raise ValueError("anchor_date applies to interval schedules; give interval= too")
    made: list[Schedule] = []
    made.extend(Cron(expr, timezone=timezone) for expr in _values(cron, str))
    made.extend(
        Interval(seconds, anchor_date=anchor_date, timezone=timezone)
        for seconds in _values(interval, (int, float, dt.timedelta))
    )
    made.extend(RRule(text, timezone=timezone) for text in _values(rrule, str))
    result = [_create(schedule) for schedule in made]
    for item in schedules or ():
        result.append(_from_item(item))
    return result


def _values(value: Any, single: type | tuple[type, ...]) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, single) and not isinstance(value, bool):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        return list(value)
    return [value]  # the schedule class names what is wrong with it


def _create(schedule: Schedule) -> dict[str, Any]:
    return {
        "schedule": schedule.to_spec(),
        "active": schedule.active,
        "catchup": schedule.catchup,
        "parameters": dict(schedule.parameters),
    }


def _from_item(item: Schedule | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(item, Cron | Interval | RRule):
        return _create(item)
    if not isinstance(item, Mapping):
        raise ValueError(
            f"a schedule is Cron(...), Interval(...), RRule(...) or a dict, not {item!r}"
        )
    if "schedule" not in item:
        return {
            "schedule": _core.normalize_schedule(item),
            "active": True,
            "catchup": "SKIP",
            "parameters": {},
        }
    unknown = set(item) - {"schedule", "active", "catchup", "parameters"}
    if unknown:
        raise ValueError(
            f"unknown schedule keys {sorted(unknown)!r}; use schedule, active, catchup, parameters"
        )
    active = item.get("active", True)
    catchup = item.get("catchup", "SKIP")
    parameters = item.get("parameters") or {}
    if not isinstance(active, bool):
        raise ValueError(f"active must be True or False, got {active!r}")
    _check_common(catchup, parameters)
    return {
        "schedule": _core.normalize_schedule(item["schedule"]),
        "active": active,
        "catchup": catchup,
        "parameters": dict(parameters),
    }
