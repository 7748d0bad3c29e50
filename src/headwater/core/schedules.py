"""When schedules run: cron, interval and rrule specs turned into times, under one DST policy.

A schedule spec is the dict stored in `deployment_schedule.schedule`:

- `{"cron": "0 2 * * *", "timezone": "Europe/Paris", "day_or": True}`: 5 fields, or 6 with
  seconds as the sixth field (croniter's order, as in Prefect), or an alias like `@daily`;
- `{"interval": 3600.0, "anchor_date": <epoch or ISO>, "timezone": "UTC"}`: runs at the
  anchor plus whole multiples of the interval (default anchor 2020-01-01 00:00 local time);
- `{"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9", "timezone": "UTC"}`: an RFC 5545 rule, with an
  optional DTSTART (default 2020-01-01 00:00 local time), EXDATE and RDATE lines.

The timezone (an IANA name; default UTC) says whose clock the schedule reads.

Daylight-saving policy (the same for cron, whole-day intervals and rrules):

- Times are local wall-clock times in the schedule's timezone: "0 2 * * *" in Europe/Paris is
  02:00 in Paris in winter and in summer.
- A local time that does not exist, because the clocks jump forward over it, runs once at the
  first instant after the jump (02:30 on the spring-forward night in Paris runs at 03:00 CEST).
  Several skipped times, and a regular time at that instant, make one run, not several.
- A local time that happens twice, because the clocks go back, runs once, at its first
  occurrence (01:30 on the fall-back night in New York runs at 01:30 EDT, not again at EST).
- Intervals that are whole days keep the local wall-clock time across a change (a daily
  interval anchored at 09:00 stays at 09:00); other intervals are exact elapsed seconds.

Nothing here does I/O; croniter and dateutil are imported when a schedule is first read, so
importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from croniter import croniter

#: Where intervals and rrules without a start count from: midnight, 2020-01-01, local time.
DEFAULT_START = dt.datetime(2020, 1, 1)
#: The longest interval accepted (100 years): longer ones are surely a unit mistake.
MAX_INTERVAL = 100 * 365 * 86_400.0
#: The shortest interval accepted: runs are made ahead, at most 100 per schedule.
MIN_INTERVAL = 1.0
#: The longest rrule text accepted.
MAX_RRULE_LENGTH = 6_500
DAY = 86_400.0

_CRON_ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_CRON_FORMAT = (
    "use 5 fields (minute hour day-of-month month day-of-week), e.g. '0 2 * * *', "
    "6 with seconds as the sixth field, or an alias such as '@daily'"
)
# Clock changes move local time by at most 2 hours (Antarctica/Troll); walking 3 hours of
# wall-clock time past a point is enough to see every time that maps to before it.
_CLOCK_CHANGE_MARGIN = dt.timedelta(hours=3)
_MIN_WALL = dt.datetime(1, 1, 2)
_MAX_WALL = dt.datetime(9999, 12, 30)


@dataclasses.dataclass(frozen=True, slots=True)
class CronSpec:
    cron: str
    zone: ZoneInfo
    day_or: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class IntervalSpec:
    interval: float
    #: epoch seconds of a time the runs are aligned to
    anchor: float
    zone: ZoneInfo


@dataclasses.dataclass(frozen=True, slots=True)
class RRuleSpec:
    #: the rule without its DTSTART line, UTC values turned into local wall-clock times
    text: str
    #: DTSTART as local wall-clock time
    start: dt.datetime
    zone: ZoneInfo
    #: (FREQ, INTERVAL) when the rule may start later than DTSTART without changing its
    #: times (one RRULE, no COUNT, a fixed-length period): see `_rrule_start`
    stride: tuple[str, int] | None = None


Spec = CronSpec | IntervalSpec | RRuleSpec


# -- Validation --------------------------------------------------------------------------


def zone(name: str | None) -> ZoneInfo:
    """The timezone named `name` (IANA, e.g. "Europe/Paris"); None is UTC."""
    if name is None:
        return ZoneInfo("UTC")
    if not isinstance(name, str) or not name.strip() or "\x00" in name:
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name such as 'Europe/Paris' or 'UTC'"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown timezone {name!r}; use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


def validate_timezone(name: str | None) -> str | None:
    """`name` if it is a known IANA timezone (or None); raises ValueError naming it if not."""
    zone(name)
    return name


def validate_cron(expr: str, *, day_or: bool = True, timezone: str | None = None) -> str:
    """`expr` stripped, if it is a cron expression that matches some time; else ValueError."""
    parse_schedule({"cron": expr, "day_or": day_or, "timezone": timezone})
    return expr.strip()


def validate_interval(seconds: float) -> float:
    """`seconds` as a float if it is a usable interval; else ValueError naming it."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f"interval must be a number of seconds, got {seconds!r}")
    value = float(seconds)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"interval must be a positive number of seconds, got {seconds!r}; e.g. 3600 for hourly"
        )
    if value < MIN_INTERVAL:
        raise ValueError(f"interval must be at least 1 second, got {seconds!r}")
    if value > MAX_INTERVAL:
        raise ValueError(
            f"interval {seconds!r} seconds is more than 100 years; give the interval in seconds"
        )
    return value


def validate_rrule(text: str, *, timezone: str | None = None) -> str:
    """`text` stripped, if it is an RFC 5545 recurrence rule; else ValueError naming it."""
    parse_schedule({"rrule": text, "timezone": timezone})
    return text.strip()


def normalize_schedule(schedule: Mapping[str, Any]) -> dict[str, Any]:
    """The spec with every key present and validated; raises ValueError naming what is wrong.

    Example:
        >>> normalize_schedule({"cron": "0 2 * * *"})
        {'cron': '0 2 * * *', 'timezone': None, 'day_or': True}
    """
    parse_schedule(schedule)
    timezone = schedule.get("timezone")
    if "cron" in schedule:
        return {
            "cron": schedule["cron"].strip(),
            "timezone": timezone,
            "day_or": schedule.get("day_or", True),
        }
    if "interval" in schedule:
        anchor = schedule.get("anchor_date")
        return {
            "interval": float(schedule["interval"]),
            "anchor_date": None if anchor is None else anchor_seconds(anchor, timezone),
            "timezone": timezone,
        }
    return {"rrule": schedule["rrule"].strip(), "timezone": timezone}


def parse_schedule(schedule: Mapping[str, Any] | Spec, *, check: bool = True) -> Spec:
    """The spec read and checked, ready for `next_times`; raises ValueError naming the fault.

    `check=False` skips proving that a cron expression matches some date (a stored spec
    was proved when it was created).
    """
    if isinstance(schedule, CronSpec | IntervalSpec | RRuleSpec):
        return schedule
    if not isinstance(schedule, Mapping):
        raise ValueError(
            f"a schedule is a dict with 'cron', 'interval' or 'rrule', not {schedule!r}"
        )
    kinds = [key for key in ("cron", "interval", "rrule") if key in schedule]
    if len(kinds) != 1:
        raise ValueError(
            f"a schedule has exactly one of 'cron', 'interval' or 'rrule', got {sorted(schedule)!r}"
        )
    tz = zone(schedule.get("timezone"))
    if kinds == ["cron"]:
        return _parse_cron(schedule["cron"], tz, schedule.get("day_or", True), check)
    if kinds == ["interval"]:
        interval = validate_interval(schedule["interval"])
        return IntervalSpec(interval, _anchor(schedule.get("anchor_date"), tz), tz)
    return _parse_rrule(schedule["rrule"], tz, schedule.get("timezone") is not None)


def _parse_cron(expr: Any, tz: ZoneInfo, day_or: Any, check: bool) -> CronSpec:
    if not isinstance(expr, str):
        raise ValueError(f"cron must be text such as '0 2 * * *', got {expr!r}")
    if not isinstance(day_or, bool):
        raise ValueError(f"day_or must be true or false, got {day_or!r}")
    text = " ".join(expr.split())
    fields = text.split(" ") if text else []
    if not (len(fields) in (5, 6) or (len(fields) == 1 and text.lower() in _CRON_ALIASES)):
        raise ValueError(f"{expr!r} is not a cron expression: {_CRON_FORMAT}")
    spec = CronSpec(text, tz, day_or)
    if not check:
        return spec
    from croniter import CroniterError

    try:
        iterator = _croniter(spec)
        iterator.set_current(dt.datetime(2020, 1, 1), force=True)
        iterator.get_next(dt.datetime)
    except CroniterError as exc:
        reason = "it matches no date" if "find" in str(exc) else str(exc)
        raise ValueError(
            f"{expr!r} is not a valid cron expression ({reason}); {_CRON_FORMAT}"
        ) from None
    except (ValueError, KeyError, IndexError, TypeError, OverflowError) as exc:
        raise ValueError(
            f"{expr!r} is not a valid cron expression ({exc}); {_CRON_FORMAT}"
        ) from None
    return spec


def anchor_seconds(value: Any, timezone: str | None = None) -> float:
    """Epoch seconds of an interval's anchor: a number, ISO text or a datetime.

    Text or datetimes without an offset are local time in `timezone` (default UTC);
    None is the default anchor, 2020-01-01 00:00 local time. Raises ValueError.
    """
    return _anchor(value, zone(timezone))


def _anchor(value: Any, tz: ZoneInfo) -> float:
    """Epoch seconds of an anchor: a number, an ISO string or a datetime (naive: local time)."""
    if value is None:
        return _instant(DEFAULT_START, tz)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"anchor_date must be a finite time, got {value!r}")
        return float(value)
    moment = value
    if isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"anchor_date {value!r} is not a date-time; use ISO 8601 such as "
                "'2026-01-01T09:00:00' or epoch seconds"
            ) from None
    if not isinstance(moment, dt.datetime):
        raise ValueError(f"anchor_date must be a date-time or epoch seconds, got {value!r}")
    if moment.tzinfo is None:
        return _instant(moment, tz)
    return moment.timestamp()


# -- Local wall-clock time -> instant ----------------------------------------------------


def _instant(wall: dt.datetime, tz: ZoneInfo) -> float:
    """Epoch seconds of local time `wall` in `tz` under the DST policy (module docstring)."""
    if tz.key == "UTC":
        return wall.replace(tzinfo=dt.UTC).timestamp()
    first = wall.replace(tzinfo=tz, fold=0)
    seconds = first.timestamp()
    if dt.datetime.fromtimestamp(seconds, tz).replace(tzinfo=None) == wall:
        return seconds  # exists: fold=0 is the first of two occurrences
    # Skipped by a jump forward: fold=1 reads it with the offset after the jump (an instant
    # before the jump), fold=0 with the offset before (after it). The jump is in between.
    low = math.floor(wall.replace(tzinfo=tz, fold=1).timestamp())
    high = math.ceil(seconds)
    after = wall.replace(tzinfo=tz, fold=1).utcoffset()
    while high - low > 1:
        middle = (low + high) // 2
        if dt.datetime.fromtimestamp(middle, tz).utcoffset() == after:
            high = middle
        else:
            low = middle
    return float(high)


def _wall(seconds: float, tz: ZoneInfo) -> dt.datetime:
    """Local wall-clock time (naive) of the instant `seconds` in `tz`."""
    return dt.datetime.fromtimestamp(seconds, tz).replace(tzinfo=None, fold=0)


def _is_second_occurrence(seconds: float, tz: ZoneInfo) -> bool:
    return dt.datetime.fromtimestamp(seconds, tz).fold == 1


# -- Times -------------------------------------------------------------------------------


def next_times(
    schedule: Mapping[str, Any] | Spec,
    after: float,
    *,
    count: int,
    until: float | None = None,
) -> list[float]:
    """The first `count` times strictly after `after` (and not after `until`), in order.

    Example:
        >>> next_times({"cron": "0 0 29 2 *"}, 1772323200.0, count=1)  # after 2026-03-01
        [1835395200.0]
    """
    times: list[float] = []
    if count <= 0:
        return times
    for moment in _forward(parse_schedule(schedule), after):
        if until is not None and moment > until:
            break
        times.append(moment)
        if len(times) >= count:
            break
    return times


def upcoming(schedule: Mapping[str, Any], after: float, *, count: int) -> list[float]:
    """For display: the next `count` times after `after` of a deployment schedule (a row with
    `schedule` and `active`); none when it is inactive or its spec cannot be read."""
    if not schedule.get("active", True):
        return []
    try:
        return next_times(schedule["schedule"], after, count=count)
    except Exception:  # display only: a spec this version cannot read shows no times
        return []


def describe(spec: Mapping[str, Any]) -> str:
    """A spec in one line: "cron '0 2 * * *' (Europe/Paris)", "every 1d from 2026-01-01 09:30
    (Europe/Paris)", "every 15m", "rrule 'FREQ=WEEKLY;BYDAY=MO'"."""
    timezone = spec.get("timezone")
    if "cron" in spec:
        text = f"cron {spec['cron']!r}"
    elif "interval" in spec:
        text = f"every {_every(float(spec['interval']))}"
        anchor = spec.get("anchor_date")
        if anchor is not None:  # shown on the schedule's clock, as it was given
            text += f" from {_wall_text(anchor, timezone)}{'' if timezone else ' UTC'}"
    else:
        text = f"rrule {spec.get('rrule')!r}"
    return f"{text} ({timezone})" if timezone else text


def _every(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _wall_text(anchor: Any, timezone: str | None) -> str:
    if isinstance(anchor, int | float):
        moment = float(anchor)
    else:
        moment = dt.datetime.fromisoformat(str(anchor)).timestamp()
    try:
        where = zone(timezone)
    except ValueError:
        where = ZoneInfo("UTC")
    return dt.datetime.fromtimestamp(moment, where).strftime("%Y-%m-%d %H:%M")


def iter_times(schedule: Mapping[str, Any] | Spec, after: float) -> Iterator[float]:
    """Every time strictly after `after`, in order (lazily: stop when you have enough)."""
    return _forward(parse_schedule(schedule), after)


def previous_times(
    schedule: Mapping[str, Any] | Spec,
    before: float,
    *,
    count: int,
    since: float | None = None,
) -> list[float]:
    """The last `count` times strictly before `before` (and strictly after `since`).

    Most recent first.
    """
    times: list[float] = []
    if count <= 0:
        return times
    spec = parse_schedule(schedule)
    if isinstance(spec, RRuleSpec):
        # dateutil walks forward only: keep the last `count` on the way.
        start = since if since is not None else _instant(spec.start, spec.zone) - 1.0
        last: deque[float] = deque(maxlen=count)
        for moment in _forward(spec, start):
            if moment >= before:
                break
            last.append(moment)
        return list(reversed(last))
    for moment in _backward(spec, before):
        if since is not None and moment <= since:
            break
        times.append(moment)
        if len(times) >= count:
            break
    return times


def _forward(spec: Spec, after: float) -> Iterator[float]:
    """Times strictly after `after`, increasing, each once."""
    if isinstance(spec, IntervalSpec):
        return _interval_times(spec, after, 1)
    if isinstance(spec, CronSpec):
        # Cron times are whole seconds: from the whole second at or before `after` (its wall
        # time would be rounded to microseconds, perhaps up to a time that must be kept).
        walls = _cron_walls(spec, _wall(math.floor(after), spec.zone), forward=True)
    else:
        walls = _rrule_walls(spec, _wall(after, spec.zone) - _CLOCK_CHANGE_MARGIN)
    return _instants(walls, spec.zone, lambda moment: moment > after)


def _backward(spec: CronSpec | IntervalSpec, before: float) -> Iterator[float]:
    """Times strictly before `before`, decreasing, each once."""
    if isinstance(spec, IntervalSpec):
        return _interval_times(spec, before, -1)
    start = _wall(math.ceil(before), spec.zone)
    if _is_second_occurrence(before, spec.zone):
        # Local times a little later than `before`'s were first passed an hour or so ago.
        start += _CLOCK_CHANGE_MARGIN
    walls = _cron_walls(spec, start, forward=False)
    return _instants(walls, spec.zone, lambda moment: moment < before)


def _instants(walls: Iterator[dt.datetime], tz: ZoneInfo, keep: Any) -> Iterator[float]:
    """Wall-clock times as instants, those `keep` accepts, without repeats."""
    previous: float | None = None
    for wall in walls:
        moment = _instant(wall, tz)
        if moment != previous and keep(moment):
            yield moment
        previous = moment


def _interval_times(spec: IntervalSpec, start: float, direction: int) -> Iterator[float]:
    """Anchor + k * interval, from just past `start` in `direction` (1 forward, -1 back)."""
    if spec.interval % DAY == 0 and spec.zone.key != "UTC":
        yield from _day_interval_times(spec, start, direction)
        return
    k = math.floor((start - spec.anchor) / spec.interval) + (1 if direction > 0 else 0)
    # Float division can land one step off: step until strictly past `start`.
    while direction > 0 and spec.anchor + (k - 1) * spec.interval > start:
        k -= 1
    while direction < 0 and spec.anchor + (k + 1) * spec.interval < start:
        k += 1
    while True:
        moment = spec.anchor + k * spec.interval
        if (moment > start) if direction > 0 else (moment < start):
            yield moment
        k += direction


def _day_interval_times(spec: IntervalSpec, start: float, direction: int) -> Iterator[float]:
    anchor = _wall(spec.anchor, spec.zone)
    days = int(spec.interval // DAY)
    # Start a step before the estimate: the wall clock drifts from elapsed time by the offset.
    k = math.floor((start - spec.anchor) / spec.interval) - direction
    previous: float | None = None
    while True:
        try:
            wall = anchor + dt.timedelta(days=k * days)
        except OverflowError:
            return
        if not _MIN_WALL <= wall <= _MAX_WALL:
            return
        moment = _instant(wall, spec.zone)
        if moment != previous and ((moment > start) if direction > 0 else (moment < start)):
            yield moment
        previous = moment
        k += direction


# -- Cron --------------------------------------------------------------------------------

_local = threading.local()


def _croniter(spec: CronSpec) -> croniter:
    """A croniter for `spec`, kept per thread: parsing the expression costs more than a step."""
    cache: dict[tuple[str, bool], croniter] | None = getattr(_local, "croniters", None)
    if cache is None:
        cache = _local.croniters = {}
    key = (spec.cron, spec.day_or)
    iterator = cache.get(key)
    if iterator is None:
        from croniter import croniter

        iterator = croniter(spec.cron, DEFAULT_START, day_or=spec.day_or)
        if len(cache) > 1000:
            cache.clear()
        cache[key] = iterator
    return iterator


def _cron_walls(spec: CronSpec, start: dt.datetime, *, forward: bool) -> Iterator[dt.datetime]:
    """Wall-clock times matching the cron expression, from `start` (exclusive)."""
    from croniter import CroniterError

    iterator = _croniter(spec)
    current = start
    while True:
        # The iterator is shared within the thread: set where to go on from at every step.
        iterator.set_current(current, force=True)
        try:
            current = iterator.get_next(dt.datetime) if forward else iterator.get_prev(dt.datetime)
        except (CroniterError, OverflowError, ValueError):
            return
        if not _MIN_WALL <= current <= _MAX_WALL:
            return
        yield current


# -- RRule -------------------------------------------------------------------------------

_DTSTART = re.compile(r"^DTSTART(?P<params>(?:;[^:]*)?):(?P<value>.*)$", re.IGNORECASE)
_UTC_VALUE = re.compile(r"(\d{8}T\d{6})Z", re.IGNORECASE)
_STRIDES = {"WEEKLY": 7 * DAY, "DAILY": DAY, "HOURLY": 3600.0, "MINUTELY": 60.0, "SECONDLY": 1.0}


def _parse_rrule(text: Any, tz: ZoneInfo, zone_given: bool) -> RRuleSpec:
    if not isinstance(text, str) or not text.strip():
        raise ValueError(
            f"rrule must be an RFC 5545 rule such as 'FREQ=WEEKLY;BYDAY=MO', got {text!r}"
        )
    if len(text) > MAX_RRULE_LENGTH:
        raise ValueError(f"rrule is {len(text)} characters; at most {MAX_RRULE_LENGTH} are read")
    lines = [line.strip() for line in text.replace("\r", "").replace("\n ", "").split("\n")]
    start = DEFAULT_START
    rest: list[str] = []
    for line in filter(None, lines):
        match = _DTSTART.match(line)
        if match is None:
            rest.append(line)
            continue
        start, start_zone = _dtstart(match["params"], match["value"], text)
        if start_zone is not None and not zone_given:
            tz = start_zone
        elif start_zone is not None and start_zone.key != tz.key:
            start = _wall(start.replace(tzinfo=start_zone).timestamp(), tz)
    # UTC values (UNTIL=...Z, EXDATE:...Z) become local wall-clock times, as DTSTART is.
    body = "\n".join(_UTC_VALUE.sub(lambda m: _utc_to_wall(m.group(1), tz), line) for line in rest)
    if not body:
        raise ValueError(f"rrule {text!r} has no rule; add one such as 'FREQ=DAILY'")
    rules = [line for line in rest if not line.upper().startswith(("EXDATE", "RDATE"))]
    if not rules or any("FREQ=" not in line.upper() for line in rules):
        raise ValueError(
            f"rrule {text[:200]!r} needs FREQ in each rule; e.g. 'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9'"
        )
    stride = None
    if len(rules) == 1:
        fields = dict(
            part.split("=", 1)
            for part in rules[0].upper().removeprefix("RRULE:").split(";")
            if "=" in part
        )
        if fields.get("FREQ") in _STRIDES and "COUNT" not in fields:
            try:
                stride = (fields["FREQ"], int(fields.get("INTERVAL", "1")))
            except ValueError:
                stride = None
    for line in rules:
        _check_some_day_matches(line, text)
        interval = re.search(r"INTERVAL=([^;]*)", line, re.IGNORECASE)
        if interval and not (interval.group(1).strip().isdigit() and int(interval.group(1)) >= 1):
            raise ValueError(
                f"rrule {text[:200]!r} has INTERVAL={interval.group(1)}; it must be a whole "
                "number of at least 1"
            )
    spec = RRuleSpec(body, start, tz, stride)
    try:
        _rrule(spec, start)
    except Exception as exc:  # dateutil raises many kinds for bad text
        raise ValueError(
            f"{text[:200]!r} is not a valid rrule ({exc}); use RFC 5545, e.g. "
            "'FREQ=WEEKLY;BYDAY=MO;BYHOUR=9' with an optional 'DTSTART:20260105T090000' line"
        ) from None
    return spec


_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _check_some_day_matches(rule: str, text: str) -> None:
    """Refuse a rule whose BYMONTHDAY is in none of its BYMONTH months (Feb 30).

    dateutil looks for such a rule's first time until the year 9999, seconds at a time.
    """
    fields = dict(
        part.split("=", 1) for part in rule.upper().removeprefix("RRULE:").split(";") if "=" in part
    )
    try:
        months = [int(m) for m in fields["BYMONTH"].split(",")]
        days = [int(d) for d in fields["BYMONTHDAY"].split(",")]
    except (KeyError, ValueError):
        return
    if (
        all(1 <= m <= 12 for m in months)
        and all(day > _DAYS_IN_MONTH[month - 1] for day in days for month in months if day > 0)
        and all(day > 0 for day in days)
    ):
        raise ValueError(
            f"rrule {text[:200]!r} matches no date: no month of BYMONTH has its BYMONTHDAY"
        )


def _dtstart(params: str, value: str, text: str) -> tuple[dt.datetime, ZoneInfo | None]:
    start_zone = None
    for param in params.split(";"):
        name, _, argument = param.partition("=")
        if name.upper() == "TZID":
            start_zone = zone(argument.strip('"'))
    raw = value.strip()
    if raw.upper().endswith("Z"):
        raw = raw[:-1]
        start_zone = ZoneInfo("UTC")
    for layout in ("%Y%m%dT%H%M%S", "%Y%m%d"):
        try:
            return dt.datetime.strptime(raw, layout), start_zone
        except ValueError:
            continue
    raise ValueError(
        f"DTSTART {value!r} in rrule {text[:200]!r} is not a date-time; write it as "
        "'DTSTART:20260105T090000' (local time), with a Z for UTC or ';TZID=Europe/Paris'"
    )


def _utc_to_wall(value: str, tz: ZoneInfo) -> str:
    moment = dt.datetime.strptime(value, "%Y%m%dT%H%M%S").replace(tzinfo=dt.UTC)
    return _wall(moment.timestamp(), tz).strftime("%Y%m%dT%H%M%S")


def _rrule(spec: RRuleSpec, start: dt.datetime) -> Any:
    from dateutil.rrule import rrulestr

    return rrulestr(spec.text, dtstart=start, forceset=True, ignoretz=True)


def _rrule_start(spec: RRuleSpec, target: dt.datetime) -> dt.datetime:
    """A DTSTART as late as possible before `target` giving the same times from there on.

    A rule without COUNT whose period has a fixed length (weeks down to seconds) repeats
    every INTERVAL periods, so moving DTSTART by whole strides changes nothing after it;
    without this a minutely rule from 2020 would be walked minute by minute each time.
    """
    if spec.stride is None or target <= spec.start:
        return spec.start
    freq, interval = spec.stride
    stride = _STRIDES[freq] * max(interval, 1)
    steps = math.floor((target - spec.start).total_seconds() / stride) - 1
    if steps <= 0:
        return spec.start
    return spec.start + dt.timedelta(seconds=steps * stride)


def _rrule_walls(spec: RRuleSpec, start: dt.datetime) -> Iterator[dt.datetime]:
    """Wall-clock times of the rule from `start` on (inclusive)."""
    start = max(start, _MIN_WALL)
    rule = _rrule(spec, _rrule_start(spec, start))
    try:
        yield from rule.xafter(start, inc=True)
    except (OverflowError, ValueError):
        return
