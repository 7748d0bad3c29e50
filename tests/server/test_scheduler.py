"""The scheduler service on both databases: runs ahead on time, never twice, catch-up after
downtime, inactive schedules and paused deployments, and replacing the future runs of a
schedule. Deployments and schedules are written into their tables directly; the clock is the
`now` each round is given."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from headwater.schemas.schedules import DeploymentScheduleCreate
from headwater.server.database import Database
from headwater.server.repositories.deployment_runs import DeploymentTarget, NewRun, insert_runs
from headwater.server.scheduler import SchedulerPolicy, delete_future_runs, schedule_runs
from headwater.store.tables import (
    deployment,
    deployment_schedule,
    flow,
    flow_run,
    flow_run_queue,
    state,
)

MINUTE = 60.0
#: 2026-06-01 12:00 UTC, the simulated clock's start.
T0 = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC).timestamp()
EVERY_MINUTE = {"cron": "* * * * *", "timezone": None, "day_or": True}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.ensure_schema()
    yield database
    database.dispose()


def make_deployment(
    db: Database,
    *,
    name: str = "nightly",
    parameters: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    paused: bool = False,
    at: float = T0,
) -> uuid.UUID:
    flow_id, deployment_id = uuid.uuid4(), uuid.uuid4()
    with db.write() as conn:
        conn.execute(sa.insert(flow).values(id=flow_id, name=f"flow-{name}", created=at))
        conn.execute(
            sa.insert(deployment).values(
                id=deployment_id,
                flow_id=flow_id,
                name=name,
                parameters=parameters or {},
                parameter_schema={},
                enforce_parameter_schema=False,
                tags=tags or [],
                job_variables={},
                collision_strategy="ENQUEUE",
                paused=paused,
                created=at,
                updated=at,
            )
        )
    return deployment_id


def add_schedule(
    db: Database,
    deployment_id: uuid.UUID,
    spec: dict[str, Any] = EVERY_MINUTE,
    *,
    active: bool = True,
    catchup: str = "SKIP",
    parameters: dict[str, Any] | None = None,
    at: float = T0,
) -> uuid.UUID:
    schedule_id = uuid.uuid4()
    with db.write() as conn:
        conn.execute(
            sa.insert(deployment_schedule).values(
                id=schedule_id,
                deployment_id=deployment_id,
                schedule=spec,
                active=active,
                catchup=catchup,
                parameters=parameters or {},
                created=at,
                updated=at,
            )
        )
    return schedule_id


def runs(db: Database, deployment_id: uuid.UUID | None = None) -> list[Any]:
    query = sa.select(flow_run).order_by(flow_run.c.expected_start_time, flow_run.c.schedule_id)
    if deployment_id is not None:
        query = query.where(flow_run.c.deployment_id == deployment_id)
    with db.read() as conn:
        return list(conn.execute(query))


def due(db: Database, deployment_id: uuid.UUID | None = None) -> list[float]:
    """Minutes after T0 of the runs, in order."""
    return [(row.expected_start_time - T0) / MINUTE for row in runs(db, deployment_id)]


def test_runs_are_created_ahead_with_the_deployment_and_schedule_settings(db: Database) -> None:
    deployment_id = make_deployment(db, parameters={"day": "today", "n": 1}, tags=["etl"])
    schedule_id = add_schedule(db, deployment_id, parameters={"n": 2})

    outcome = schedule_runs(db, T0)

    # Every time of the next 5 minutes, from now on.
    assert due(db) == [0, 1, 2, 3, 4, 5]
    made = runs(db)
    assert outcome.changed == 6
    assert outcome.flow_run_ids == {row.id.hex for row in made}
    assert all(len(run_id) == 32 for run_id in outcome.flow_run_ids)
    first = made[0]
    assert first.state_type == "SCHEDULED" and first.state_name == "Scheduled"
    assert first.parameters == {"day": "today", "n": 2}
    assert first.tags == ["etl"]
    assert first.schedule_id == schedule_id and first.deployment_id == deployment_id
    assert first.name and "-" in first.name
    assert (
        first.idempotency_key
        == f"scheduled {deployment_id} {schedule_id} 2026-06-01T12:00:00+00:00"
    )
    with db.read() as conn:
        queued = conn.execute(sa.select(flow_run_queue.c.flow_run_id)).scalars().all()
        states = conn.execute(sa.select(state.c.flow_run_id, state.c.type)).all()
    assert set(queued) == {row.id for row in made}
    assert sorted(states) == sorted((row.id, "SCHEDULED") for row in made)


def test_a_rare_schedule_gets_at_least_three_runs_ahead(db: Database) -> None:
    add_schedule(db, make_deployment(db), {"cron": "0 * * * *"})
    schedule_runs(db, T0 + 1)
    assert due(db) == [60, 120, 180]


def test_later_rounds_add_only_the_times_that_came_into_the_window(db: Database) -> None:
    add_schedule(db, make_deployment(db))
    schedule_runs(db, T0)
    assert schedule_runs(db, T0 + 30).changed == 0
    again = schedule_runs(db, T0 + MINUTE)
    assert again.changed == 1
    assert due(db) == [0, 1, 2, 3, 4, 5, 6]


def test_the_policy_bounds_the_runs_made_ahead(db: Database) -> None:
    add_schedule(db, make_deployment(db), {"interval": 1.0})
    schedule_runs(db, T0, SchedulerPolicy(min_runs=3, lookahead=3600, max_runs=50))
    assert len(runs(db)) == 50


def test_a_second_round_a_restart_and_a_second_database_create_no_duplicate(
    db: Database, database_url: str
) -> None:
    deployment_id = make_deployment(db)
    add_schedule(db, deployment_id)
    add_schedule(db, deployment_id, {"interval": 120.0})
    schedule_runs(db, T0)
    assert schedule_runs(db, T0).changed == 0
    restarted = Database(database_url)  # another process, or a replica
    try:
        assert schedule_runs(restarted, T0).changed == 0
        # Minute 6 of both: the every-2-minutes schedule keeps at least 3 runs ahead.
        assert schedule_runs(restarted, T0 + MINUTE).changed == 2
        assert schedule_runs(db, T0 + MINUTE).changed == 0
    finally:
        restarted.dispose()
    keys = [row.idempotency_key for row in runs(db)]
    assert len(keys) == len(set(keys)) == 11  # minutes 0..6, and 0, 2, 4, 6


def test_two_schedulers_at_the_same_time_create_each_run_once(
    db: Database, database_url: str
) -> None:
    deployment_ids = [make_deployment(db, name=f"d{i}") for i in range(20)]
    for deployment_id in deployment_ids:
        add_schedule(db, deployment_id)
    others = [Database(database_url) for _ in range(2)]
    start = threading.Barrier(2)
    created: list[int] = []
    errors: list[BaseException] = []

    def run(database: Database) -> None:
        try:
            start.wait()
            for round_ in range(3):
                created.append(schedule_runs(database, T0 + round_ * MINUTE).changed)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(other,)) for other in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for other in others:
        other.dispose()
    assert not errors
    assert sum(created) == 20 * 8  # minutes 0..7, each once
    for deployment_id in deployment_ids:
        assert due(db, deployment_id) == [0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("catchup", "missed"),
    [
        ("SKIP", []),
        ("LATEST", [59]),
        ("ALL", list(range(6, 60))),
    ],
)
def test_catch_up_after_downtime(db: Database, catchup: str, missed: list[int]) -> None:
    add_schedule(db, make_deployment(db), catchup=catchup)
    schedule_runs(db, T0)
    # The services were down for an hour: minutes 6 to 59 had no run made.
    schedule_runs(db, T0 + 60 * MINUTE)
    assert due(db) == [0, 1, 2, 3, 4, 5, *missed, 60, 61, 62, 63, 64, 65]
    # The next round does not catch up again.
    assert schedule_runs(db, T0 + 60 * MINUTE + 1).changed == 0


def test_catch_up_all_runs_at_most_the_most_recent_hundred(db: Database) -> None:
    add_schedule(db, make_deployment(db), catchup="ALL")
    schedule_runs(db, T0)
    schedule_runs(db, T0 + 1000 * MINUTE)
    minutes = due(db)
    assert minutes[:6] == [0, 1, 2, 3, 4, 5]
    assert minutes[6:106] == list(range(900, 1000))
    assert minutes[106:] == [1000, 1001, 1002, 1003, 1004, 1005]


def test_a_new_schedule_has_missed_nothing(db: Database) -> None:
    deployment_id = make_deployment(db)
    add_schedule(db, deployment_id, catchup="ALL", at=T0 - 3600)
    schedule_runs(db, T0)
    assert due(db) == [0, 1, 2, 3, 4, 5]


def test_times_before_the_schedule_last_changed_are_not_missed(db: Database) -> None:
    deployment_id = make_deployment(db)
    schedule_id = add_schedule(db, deployment_id, catchup="ALL")
    schedule_runs(db, T0)
    with db.write() as conn:  # deactivated at once, active again 30 minutes later
        conn.execute(
            sa.update(deployment_schedule)
            .where(deployment_schedule.c.id == schedule_id)
            .values(updated=T0 + 30 * MINUTE)
        )
    schedule_runs(db, T0 + 40 * MINUTE)
    assert due(db) == [0, 1, 2, 3, 4, 5, *range(31, 46)]


def test_inactive_schedules_and_paused_deployments_make_no_run(db: Database) -> None:
    add_schedule(db, make_deployment(db, name="inactive"), active=False)
    add_schedule(db, make_deployment(db, name="paused", paused=True))
    running = make_deployment(db, name="running")
    add_schedule(db, running)
    schedule_runs(db, T0)
    assert {row.deployment_id for row in runs(db)} == {running}


def test_a_schedule_that_cannot_be_read_does_not_stop_the_others(db: Database) -> None:
    add_schedule(db, make_deployment(db, name="broken"), {"cron": "not a cron"})
    good = make_deployment(db, name="good")
    add_schedule(db, good)
    schedule_runs(db, T0)
    assert {row.deployment_id for row in runs(db)} == {good}


def test_schedules_are_read_in_chunks(db: Database) -> None:
    for i in range(7):
        add_schedule(db, make_deployment(db, name=f"d{i}"))
    outcome = schedule_runs(db, T0, SchedulerPolicy(chunk_size=3))
    assert outcome.changed == 7 * 6


def test_delete_future_runs_removes_only_future_unclaimed_runs_of_the_schedule(
    db: Database,
) -> None:
    deployment_id = make_deployment(db)
    first = add_schedule(db, deployment_id)
    second = add_schedule(db, deployment_id, {"interval": 120.0})
    schedule_runs(db, T0)
    target = DeploymentTarget(deployment_id, runs(db)[0].flow_id, None, None, [])
    with db.write() as conn:
        # A run made by hand (no schedule), and one of the first schedule's runs claimed.
        insert_runs(conn, [NewRun(target, T0 + 4 * MINUTE, {}, "by-hand")])
        claimed = next(
            row.id
            for row in runs(db)
            if row.schedule_id == first and row.expected_start_time == T0 + 3 * MINUTE
        )
        conn.execute(sa.delete(flow_run_queue).where(flow_run_queue.c.flow_run_id == claimed))
        conn.execute(
            sa.update(flow_run).where(flow_run.c.id == claimed).values(state_type="PENDING")
        )

    with db.write() as conn:
        deleted = delete_future_runs(
            conn, deployment_id=deployment_id, schedule_id=first, now=T0 + 2 * MINUTE
        )

    assert len(deleted) == 3  # minutes 2, 4 and 5: 0 and 1 are past, 3 is claimed
    left = {(row.schedule_id, (row.expected_start_time - T0) / MINUTE) for row in runs(db)}
    assert left == {
        (first, 0),
        (first, 1),
        (first, 3),
        (second, 0),
        (second, 2),
        (second, 4),
        (None, 4),
    }
    with db.read() as conn:
        orphans = conn.execute(
            sa.select(sa.func.count()).select_from(state).where(state.c.flow_run_id.in_(deleted))
        ).scalar()
        queued = conn.execute(
            sa.select(sa.func.count())
            .select_from(flow_run_queue)
            .where(flow_run_queue.c.flow_run_id.in_(deleted))
        ).scalar()
    assert orphans == queued == 0

    with db.write() as conn:
        rest = delete_future_runs(conn, deployment_id=deployment_id, now=T0 + 2 * MINUTE)
    assert len(rest) == 2  # the second schedule's minutes 2 and 4


def test_editing_a_schedule_replaces_the_future_runs_it_made(db: Database) -> None:
    deployment_id = make_deployment(db)
    schedule_id = add_schedule(db, deployment_id, catchup="ALL")
    schedule_runs(db, T0)
    edited = T0 + 2 * MINUTE + 10
    with db.write() as conn:  # what the API does when the schedule is edited
        conn.execute(
            sa.update(deployment_schedule)
            .where(deployment_schedule.c.id == schedule_id)
            .values(schedule={"cron": "*/2 * * * *"}, parameters={"v": 2}, updated=edited)
        )
        delete_future_runs(conn, deployment_id=deployment_id, schedule_id=schedule_id, now=edited)
    schedule_runs(db, edited)
    made = runs(db)
    assert due(db) == [0, 1, 2, 4, 6, 8]
    assert [row.parameters for row in made] == [{}, {}, {}, {"v": 2}, {"v": 2}, {"v": 2}]


def test_pausing_a_deployment_deletes_its_future_runs_and_resuming_makes_them_again(
    db: Database,
) -> None:
    deployment_id = make_deployment(db)
    add_schedule(db, deployment_id, catchup="ALL")
    schedule_runs(db, T0)
    with db.write() as conn:
        conn.execute(
            sa.update(deployment)
            .where(deployment.c.id == deployment_id)
            .values(paused=True, updated=T0 + 30)
        )
        delete_future_runs(conn, deployment_id=deployment_id, now=T0 + 30)
    assert schedule_runs(db, T0 + 10 * MINUTE).changed == 0
    assert due(db) == [0]
    with db.write() as conn:
        conn.execute(
            sa.update(deployment)
            .where(deployment.c.id == deployment_id)
            .values(paused=False, updated=T0 + 20 * MINUTE)
        )
    schedule_runs(db, T0 + 20 * MINUTE)
    # The paused time is not caught up, even with ALL.
    assert due(db) == [0, 20, 21, 22, 23, 24, 25]


def test_a_bad_schedule_is_refused_naming_the_value() -> None:
    cases = {
        "'0 25 * * *' is not a valid cron expression": {"cron": "0 25 * * *"},
        "unknown timezone 'Europe/Springfield'": {
            "cron": "0 2 * * *",
            "timezone": "Europe/Springfield",
        },
        "'FREQ=SOMETIMES' is not a valid rrule": {"rrule": "FREQ=SOMETIMES"},
        "greater than or equal to 1": {"interval": -5},
        "exactly one of 'cron', 'interval' or 'rrule'": {"every": "day"},
    }
    for message, spec in cases.items():
        with pytest.raises(ValueError) as caught:
            DeploymentScheduleCreate.model_validate({"schedule": spec})
        assert message in str(caught.value)
        assert str(caught.value).count("validation error") == 1


def test_a_cron_schedule_through_the_fall_back_night_runs_each_local_time_once(
    db: Database,
) -> None:
    new_york = ZoneInfo("America/New_York")
    add_schedule(db, make_deployment(db), {"cron": "*/30 * * * *", "timezone": "America/New_York"})
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST. Rounds every 10 minutes through it.
    start = dt.datetime(2026, 11, 1, 0, 40, tzinfo=new_york).timestamp()
    for round_ in range(13):
        schedule_runs(db, start + round_ * 600)
    times = [
        dt.datetime.fromtimestamp(row.expected_start_time, new_york).isoformat() for row in runs(db)
    ]
    assert times[:5] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T02:00:00-05:00",  # no run at 01:00 or 01:30 EST
        "2026-11-01T02:30:00-05:00",
        "2026-11-01T03:00:00-05:00",
    ]


def test_a_cron_schedule_at_a_time_skipped_by_spring_forward_runs_once(db: Database) -> None:
    paris = ZoneInfo("Europe/Paris")
    add_schedule(db, make_deployment(db), {"cron": "30 2 * * *", "timezone": "Europe/Paris"})
    schedule_runs(db, dt.datetime(2026, 3, 28, 12, tzinfo=paris).timestamp())
    assert [
        dt.datetime.fromtimestamp(row.expected_start_time, paris).isoformat() for row in runs(db)
    ] == ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]


def test_a_feb_29_schedule_gets_its_run_within_the_furthest_look_ahead(db: Database) -> None:
    add_schedule(db, make_deployment(db), {"cron": "0 0 29 2 *"})
    assert schedule_runs(db, dt.datetime(2026, 3, 1, tzinfo=dt.UTC).timestamp()).changed == 0
    schedule_runs(db, dt.datetime(2028, 1, 15, tzinfo=dt.UTC).timestamp())
    assert [
        dt.datetime.fromtimestamp(row.expected_start_time, dt.UTC).date() for row in runs(db)
    ] == [
        dt.date(2028, 2, 29)  # 2032-02-29 is more than 100 days ahead
    ]
