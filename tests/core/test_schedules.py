"""Schedule times: cron, interval and rrule in a timezone, the daylight-saving policy, Feb 29,
validation messages, and the public `headwater.schedules` classes built on them."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from headwater.core.schedules import (
    iter_times,
    next_times,
    normalize_schedule,
    parse_schedule,
    previous_times,
)
from headwater.schedules import Cron, Interval, RRule, construct_schedules

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC


def at(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    *,
    tz: dt.tzinfo = UTC,
    fold: int = 0,
) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold).timestamp()


def local(times: list[float], tz: dt.tzinfo) -> list[str]:
    """Times as local ISO text with their offset: what a user reads on their clock."""
    return [dt.datetime.fromtimestamp(t, tz).isoformat() for t in times]


# -- Cron --------------------------------------------------------------------------------


def test_cron_times_are_local_wall_clock_times_in_its_timezone() -> None:
    spec = {"cron": "0 2 * * *", "timezone": "Europe/Paris"}
    winter = next_times(spec, at(2026, 1, 10), count=1)
    summer = next_times(spec, at(2026, 7, 9, 12), count=1)
    assert local(winter, PARIS) == ["2026-01-10T02:00:00+01:00"]
    assert local(summer, PARIS) == ["2026-07-10T02:00:00+02:00"]
    # Without a timezone the expression reads UTC.
    assert local(next_times({"cron": "0 2 * * *"}, at(2026, 7, 10), count=1), UTC) == [
        "2026-07-10T02:00:00+00:00"
    ]


def test_cron_time_skipped_by_spring_forward_runs_once_at_the_end_of_the_gap() -> None:
    # Paris, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that night.
    times = next_times(
        {"cron": "30 2 * * *", "timezone": "Europe/Paris"}, at(2026, 3, 28, 12), count=3
    )
    assert local(times, PARIS) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]


def test_several_skipped_cron_times_and_the_time_after_the_gap_make_one_run() -> None:
    spec = {"cron": "*/15 * * * *", "timezone": "Europe/Paris"}
    times = next_times(spec, at(2026, 3, 29, 1, 40, tz=PARIS), count=4)
    assert local(times, PARIS) == [
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00, 02:15, 02:30, 02:45 and 03:00: one run
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]


def test_cron_time_repeated_by_fall_back_runs_once_at_its_first_occurrence() -> None:
    # New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    times = next_times(
        {"cron": "30 1 * * *", "timezone": "America/New_York"},
        at(2026, 10, 31, 12, tz=NEW_YORK),
        count=2,
    )
    assert local(times, NEW_YORK) == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_frequent_cron_through_fall_back_does_not_repeat_the_repeated_hour() -> None:
    # Paris, 2026-10-25: 03:00 CEST falls back to 02:00 CET.
    times = next_times(
        {"cron": "*/30 * * * *", "timezone": "Europe/Paris"},
        at(2026, 10, 25, 1, 40, tz=PARIS),
        count=4,
    )
    assert local(times, PARIS) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T03:00:00+01:00",  # an hour after 02:30 CEST: no run at 02:00/02:30 CET
        "2026-10-25T03:30:00+01:00",
    ]
    # Asking from inside the repeated hour (second occurrence) gives the same future.
    inside = at(2026, 10, 25, 2, 10, tz=PARIS, fold=1)
    assert local(
        next_times({"cron": "*/30 * * * *", "timezone": "Europe/Paris"}, inside, count=1), PARIS
    ) == ["2026-10-25T03:00:00+01:00"]


@pytest.mark.parametrize(
    ("spec", "start"),
    [
        ({"cron": "*/20 * * * *", "timezone": "Europe/Paris"}, at(2026, 3, 28, 22)),
        ({"cron": "*/20 * * * *", "timezone": "Europe/Paris"}, at(2026, 10, 24, 22)),
        ({"cron": "30 1 * * *", "timezone": "America/New_York"}, at(2026, 10, 28)),
        ({"cron": "0,30 2 * * *", "timezone": "America/New_York"}, at(2026, 3, 5)),
        (
            {"interval": 86400, "anchor_date": "2026-01-01T02:30:00", "timezone": "Europe/Paris"},
            at(2026, 3, 20),
        ),
        ({"interval": 1800, "timezone": "Europe/Paris"}, at(2026, 10, 24, 22)),
        ({"rrule": "FREQ=HOURLY;BYMINUTE=0,30", "timezone": "Europe/Paris"}, at(2026, 10, 24, 22)),
    ],
)
def test_times_looking_back_are_the_times_looking_forward_reversed(
    spec: dict[str, object], start: float
) -> None:
    forward = next_times(spec, start, count=40)
    end = forward[-1] + 1
    assert previous_times(spec, end, count=40, since=start) == list(reversed(forward))
    assert forward == sorted(set(forward))


def test_feb_29_cron_runs_only_in_leap_years() -> None:
    times = next_times({"cron": "0 0 29 2 *"}, at(2026, 3, 1), count=3)
    assert local(times, UTC) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
        "2036-02-29T00:00:00+00:00",
    ]
    assert local(previous_times({"cron": "0 0 29 2 *"}, at(2026, 3, 1), count=1), UTC) == [
        "2024-02-29T00:00:00+00:00"
    ]


def test_six_field_cron_has_seconds_last_and_day_or_false_needs_both_days() -> None:
    assert local(next_times({"cron": "* * * * * 30"}, at(2026, 1, 1), count=2), UTC) == [
        "2026-01-01T00:00:30+00:00",
        "2026-01-01T00:01:30+00:00",
    ]
    friday_13th = {"cron": "0 0 13 * fri", "day_or": False}
    assert local(next_times(friday_13th, at(2026, 1, 1), count=1), UTC) == [
        "2026-02-13T00:00:00+00:00"
    ]
    either = {"cron": "0 0 13 * fri", "day_or": True}
    assert local(next_times(either, at(2026, 1, 1), count=1), UTC) == ["2026-01-02T00:00:00+00:00"]


def test_times_are_strictly_after_and_bounded_by_until() -> None:
    spec = {"cron": "* * * * *"}
    assert next_times(spec, at(2026, 1, 1), count=2) == [at(2026, 1, 1, 0, 1), at(2026, 1, 1, 0, 2)]
    assert next_times(spec, at(2026, 1, 1), count=100, until=at(2026, 1, 1, 0, 3)) == [
        at(2026, 1, 1, 0, 1),
        at(2026, 1, 1, 0, 2),
        at(2026, 1, 1, 0, 3),
    ]
    assert previous_times(spec, at(2026, 1, 1), count=100, since=at(2025, 12, 31, 23, 57)) == [
        at(2025, 12, 31, 23, 59),
        at(2025, 12, 31, 23, 58),
    ]
    assert next_times(spec, at(2026, 1, 1), count=0) == []


# -- Interval ----------------------------------------------------------------------------


def test_whole_day_interval_keeps_the_local_time_across_both_transitions() -> None:
    spec = {"interval": 86400, "anchor_date": "2026-03-01T09:00:00", "timezone": "Europe/Paris"}
    spring = next_times(spec, at(2026, 3, 27), count=4)
    assert local(spring, PARIS) == [
        "2026-03-27T09:00:00+01:00",
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
    ]
    assert spring[2] - spring[1] == 23 * 3600  # the short day is 23 hours long
    autumn = next_times(spec, at(2026, 10, 24), count=3)
    assert local(autumn, PARIS) == [
        "2026-10-24T09:00:00+02:00",
        "2026-10-25T09:00:00+01:00",
        "2026-10-26T09:00:00+01:00",
    ]
    assert autumn[1] - autumn[0] == 25 * 3600


def test_whole_day_interval_at_a_skipped_or_repeated_time_follows_the_cron_policy() -> None:
    spec = {"interval": 86400, "anchor_date": "2026-01-01T02:30:00", "timezone": "Europe/Paris"}
    assert local(next_times(spec, at(2026, 3, 28, 12), count=2), PARIS) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert local(next_times(spec, at(2026, 10, 24, 12), count=2), PARIS) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_shorter_intervals_are_exact_elapsed_seconds_through_both_transitions() -> None:
    spec = {"interval": 3600, "timezone": "America/New_York"}
    for start in (at(2026, 3, 7, 22, tz=NEW_YORK), at(2026, 10, 31, 22, tz=NEW_YORK)):
        times = next_times(spec, start, count=8)
        assert {b - a for a, b in itertools.pairwise(times)} == {3600.0}
    spring = next_times(spec, at(2026, 3, 8, 1, 30, tz=NEW_YORK), count=2)
    assert local(spring, NEW_YORK) == ["2026-03-08T03:00:00-04:00", "2026-03-08T04:00:00-04:00"]
    autumn = next_times(spec, at(2026, 11, 1, 0, 30, tz=NEW_YORK), count=3)
    assert local(autumn, NEW_YORK) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",  # the repeated hour is an hour later: it runs
        "2026-11-01T02:00:00-05:00",
    ]


def test_interval_is_aligned_to_its_anchor_default_midnight_2020_local() -> None:
    assert next_times(
        {"interval": 7 * 86400, "timezone": "Europe/Paris"}, at(2026, 5, 1), count=1
    ) == [at(2026, 5, 6, tz=PARIS)]  # Wednesdays, as 2020-01-01
    anchored = {"interval": 600, "anchor_date": at(2026, 1, 1, 0, 7)}
    assert next_times(anchored, at(2026, 5, 1, 12), count=2) == [
        at(2026, 5, 1, 12, 7),
        at(2026, 5, 1, 12, 17),
    ]
    # An anchor in the future still gives the times before it.
    assert previous_times(anchored, at(2025, 1, 1), count=1) == [at(2024, 12, 31, 23, 57)]


# -- RRule -------------------------------------------------------------------------------


def test_rrule_follows_the_same_daylight_saving_policy() -> None:
    spring = next_times(
        {"rrule": "FREQ=DAILY;BYHOUR=2;BYMINUTE=30", "timezone": "Europe/Paris"},
        at(2026, 3, 28, 12),
        count=2,
    )
    assert local(spring, PARIS) == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    autumn = next_times(
        {"rrule": "FREQ=DAILY;BYHOUR=1;BYMINUTE=30", "timezone": "America/New_York"},
        at(2026, 10, 31, 12),
        count=2,
    )
    assert local(autumn, NEW_YORK) == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_rrule_dtstart_with_tzid_until_in_utc_and_exdate() -> None:
    rule = (
        "DTSTART;TZID=America/New_York:20260105T090000\n"
        "RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20260202T140000Z\n"
        "EXDATE:20260119T090000"
    )
    times = next_times({"rrule": rule}, at(2026, 1, 1), count=10)
    assert local(times, NEW_YORK) == [
        "2026-01-05T09:00:00-05:00",
        "2026-01-12T09:00:00-05:00",
        "2026-01-26T09:00:00-05:00",
        "2026-02-02T09:00:00-05:00",  # UNTIL is 09:00 New York time, inclusive
    ]
    # The schedule's timezone wins over DTSTART's: the start is read in Paris.
    in_paris = next_times({"rrule": rule, "timezone": "Europe/Paris"}, at(2026, 1, 1), count=1)
    assert local(in_paris, PARIS) == ["2026-01-05T15:00:00+01:00"]


def test_rrule_without_dtstart_counts_from_2020_and_is_fast_far_from_it() -> None:
    from dateutil.rrule import rrulestr

    text = "FREQ=HOURLY;INTERVAL=7;BYMINUTE=15"
    reference = rrulestr(text, dtstart=dt.datetime(2020, 1, 1)).after(dt.datetime(2026, 6, 1))
    times = next_times({"rrule": text}, at(2026, 6, 1), count=2)
    assert times[0] == reference.replace(tzinfo=UTC).timestamp()
    assert times[1] - times[0] == 7 * 3600
    # A minutely rule six years after its start answers at once (not minute by minute).
    it = iter_times({"rrule": "FREQ=MINUTELY"}, at(2026, 6, 1))
    assert next(it) == at(2026, 6, 1, 0, 1)


def test_rrule_with_count_ends() -> None:
    spec = {"rrule": "DTSTART:20260101T000000\nRRULE:FREQ=DAILY;COUNT=3"}
    assert local(next_times(spec, at(2025, 1, 1), count=10), UTC) == [
        "2026-01-01T00:00:00+00:00",
        "2026-01-02T00:00:00+00:00",
        "2026-01-03T00:00:00+00:00",
    ]
    assert next_times(spec, at(2026, 2, 1), count=10) == []


# -- Validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"cron": "61 * * * *"}, "'61 * * * *' is not a valid cron expression"),
        ({"cron": "* * * *"}, "'* * * *' is not a cron expression: use 5 fields"),
        ({"cron": "0 0 30 2 *"}, "'0 0 30 2 *' is not a valid cron expression (it matches no"),
        ({"cron": "0 2 * * *", "timezone": "Europe/Pariss"}, "unknown timezone 'Europe/Pariss'"),
        ({"interval": 0}, "interval must be a positive number of seconds, got 0"),
        ({"interval": -60}, "interval must be a positive number of seconds, got -60"),
        ({"interval": float("nan")}, "interval must be a positive number of seconds, got nan"),
        ({"interval": 60, "anchor_date": "yesterday"}, "anchor_date 'yesterday' is not a date"),
        ({"rrule": "FREQ=FORTNIGHTLY"}, "'FREQ=FORTNIGHTLY' is not a valid rrule"),
        ({"interval": 0.001}, "interval must be at least 1 second, got 0.001"),
        ({"rrule": "BYDAY=MO"}, "rrule 'BYDAY=MO' needs FREQ"),
        ({"rrule": "FREQ=HOURLY;INTERVAL=0"}, "has INTERVAL=0; it must be a whole number"),
        ({"rrule": "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30"}, "matches no date"),
        ({"rrule": "DTSTART:tomorrow\nRRULE:FREQ=DAILY"}, "DTSTART 'tomorrow'"),
        ({"cron": "* * * * *", "interval": 60}, "exactly one of 'cron', 'interval' or 'rrule'"),
    ],
)
def test_bad_specs_raise_value_error_naming_the_value(
    spec: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_schedule(spec)
    assert message in str(caught.value)


def test_normalize_fills_defaults_and_turns_anchors_into_epoch_seconds() -> None:
    assert normalize_schedule({"cron": " 0  2 * * * "}) == {
        "cron": "0  2 * * *",
        "timezone": None,
        "day_or": True,
    }
    assert normalize_schedule(
        {"interval": 60, "anchor_date": "2026-01-01T09:00:00", "timezone": "Europe/Paris"}
    ) == {"interval": 60.0, "anchor_date": at(2026, 1, 1, 9, tz=PARIS), "timezone": "Europe/Paris"}


# -- The public classes ------------------------------------------------------------------


def test_schedule_classes_validate_when_made() -> None:
    with pytest.raises(ValueError, match="'every day' is not a cron expression"):
        Cron("every day")
    with pytest.raises(ValueError, match="unknown timezone 'Paris'"):
        Cron("0 2 * * *", timezone="Paris")
    with pytest.raises(ValueError, match="positive number of seconds"):
        Interval(dt.timedelta(seconds=-5))
    with pytest.raises(ValueError, match="needs FREQ"):
        RRule("BYHOUR=9")
    with pytest.raises(ValueError, match="catchup must be"):
        Cron("0 2 * * *", catchup="NEVER")  # type: ignore[arg-type]
    cron = Cron("0 2 * * *", timezone="Europe/Paris")
    with pytest.raises(AttributeError):
        cron.cron = "* * * * *"  # type: ignore[misc]
    assert Interval(dt.timedelta(hours=1)).interval == 3600.0


def test_construct_schedules_takes_single_values_lists_and_schedule_objects() -> None:
    made = construct_schedules(
        cron=["0 2 * * *", "0 14 * * *"],
        interval=dt.timedelta(days=1),
        anchor_date=dt.datetime(2026, 1, 1, 9),
        timezone="Europe/Paris",
    )
    assert [item["schedule"] for item in made] == [
        {"cron": "0 2 * * *", "timezone": "Europe/Paris", "day_or": True},
        {"cron": "0 14 * * *", "timezone": "Europe/Paris", "day_or": True},
        {
            "interval": 86400.0,
            "anchor_date": at(2026, 1, 1, 9, tz=PARIS),
            "timezone": "Europe/Paris",
        },
    ]
    assert {(item["active"], item["catchup"]) for item in made} == {(True, "SKIP")}
    objects = construct_schedules(
        schedules=[
            RRule("FREQ=WEEKLY;BYDAY=MO", parameters={"day": "monday"}, catchup="LATEST"),
            Cron("@hourly", active=False),
            {"interval": 60},
            {"schedule": {"cron": "0 0 * * *"}, "catchup": "ALL", "parameters": {"x": 1}},
        ]
    )
    assert objects == [
        {
            "schedule": {"rrule": "FREQ=WEEKLY;BYDAY=MO", "timezone": None},
            "active": True,
            "catchup": "LATEST",
            "parameters": {"day": "monday"},
        },
        {
            "schedule": {"cron": "@hourly", "timezone": None, "day_or": True},
            "active": False,
            "catchup": "SKIP",
            "parameters": {},
        },
        {
            "schedule": {"interval": 60.0, "anchor_date": None, "timezone": None},
            "active": True,
            "catchup": "SKIP",
            "parameters": {},
        },
        {
            "schedule": {"cron": "0 0 * * *", "timezone": None, "day_or": True},
            "active": True,
            "catchup": "ALL",
            "parameters": {"x": 1},
        },
    ]
    assert construct_schedules() == []


def test_construct_schedules_names_bad_arguments() -> None:
    with pytest.raises(ValueError, match="anchor_date applies to interval"):
        construct_schedules(cron="0 2 * * *", anchor_date=dt.datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="'nightly' is not a cron expression"):
        construct_schedules(cron=["0 2 * * *", "nightly"])
    with pytest.raises(ValueError, match="unknown schedule keys \\['when'\\]"):
        construct_schedules(schedules=[{"schedule": {"cron": "* * * * *"}, "when": 1}])
    with pytest.raises(ValueError, match="not 42"):
        construct_schedules(schedules=[42])  # type: ignore[list-item]


def test_importing_the_schedules_module_loads_neither_croniter_nor_dateutil() -> None:
    code = (
        "import sys, headwater.schedules\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('croniter', 'dateutil')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
