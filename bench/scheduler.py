"""The scheduler at scale: 10,000 deployments with a one-minute cron each, no run missed or doubled.

    python bench/scheduler.py [--databases sqlite,postgresql] [--deployments 10000]
                              [--minutes 10] [--round-interval 30]

For each database: a fresh store with N deployments, each with an active "* * * * *"
schedule; then services rounds of the scheduler (`schedule_runs`) on a simulated clock, one
every --round-interval seconds for --minutes minutes. Half way the scheduler "restarts": the
rounds go on with a second Database object, and a third one repeats a round at once, as a
second services process or replica would. At the end every deployment must have exactly one
run for each minute from the start to the end of the window plus the look-ahead (no missed
run, no duplicate). Prints the time of the first round (which fills the look-ahead), the
median and worst time of the later rounds, and runs created per second.

SQLite goes in a temporary directory; the PostgreSQL database given by --postgres-url
(default env BENCH_POSTGRES_URL or .../headwater_scheduler_bench) is DROPPED and re-created.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from servers import recreate_database

from headwater.server.database import Database
from headwater.server.scheduler import DEFAULT_POLICY, schedule_runs
from headwater.store.tables import deployment, deployment_schedule, flow, flow_run

#: The simulated clock starts at 2026-06-01 12:00:00 UTC.
START = 1_780_315_200.0
MINUTE = 60.0


def populate(db: Database, deployments: int) -> None:
    """N flows, each with one deployment with one every-minute schedule, made before START."""
    made = START - 3600
    for first in range(0, deployments, 2000):
        count = min(2000, deployments - first)
        flows = [uuid.uuid4() for _ in range(count)]
        ids = [uuid.uuid4() for _ in range(count)]
        with db.write() as conn:
            conn.execute(
                sa.insert(flow),
                [
                    {"id": f, "name": f"bench-{first + i}", "created": made}
                    for i, f in enumerate(flows)
                ],
            )
            conn.execute(
                sa.insert(deployment),
                [
                    {
                        "id": d,
                        "flow_id": f,
                        "name": "every-minute",
                        "parameters": {"n": first + i},
                        "parameter_schema": {},
                        "enforce_parameter_schema": False,
                        "tags": ["bench"],
                        "job_variables": {},
                        "collision_strategy": "ENQUEUE",
                        "paused": False,
                        "created": made,
                        "updated": made,
                    }
                    for i, (d, f) in enumerate(zip(ids, flows, strict=True))
                ],
            )
            conn.execute(
                sa.insert(deployment_schedule),
                [
                    {
                        "id": uuid.uuid4(),
                        "deployment_id": d,
                        "schedule": {"cron": "* * * * *", "timezone": None, "day_or": True},
                        "active": True,
                        "catchup": "SKIP",
                        "parameters": {},
                        "created": made,
                        "updated": made,
                    }
                    for d in ids
                ],
            )


def check(db: Database, deployments: int, last_minute: int) -> list[str]:
    """What is wrong with the runs made: deployments with a missing or a doubled minute."""
    query = sa.select(
        flow_run.c.deployment_id,
        sa.func.count(),
        sa.func.count(sa.distinct(flow_run.c.expected_start_time)),
        sa.func.min(flow_run.c.expected_start_time),
        sa.func.max(flow_run.c.expected_start_time),
    ).group_by(flow_run.c.deployment_id)
    expected = last_minute + 1
    problems = []
    with db.read() as conn:
        rows = conn.execute(query).all()
    if len(rows) != deployments:
        problems.append(f"{deployments - len(rows)} deployments have no run at all")
    for deployment_id, count, distinct, first, last in rows:
        # Cron times are whole minutes: `expected` distinct times from START to the last
        # minute are every minute once.
        if (count, distinct, first, last) != (
            expected,
            expected,
            START,
            START + last_minute * MINUTE,
        ):
            problems.append(
                f"deployment {deployment_id}: {count} runs at {distinct} times "
                f"from minute {(first - START) / MINUTE:g} to {(last - START) / MINUTE:g}"
            )
    return problems


def bench(url: str, label: str, args: argparse.Namespace) -> None:
    db = Database(url)
    db.ensure_schema()
    started = time.perf_counter()
    populate(db, args.deployments)
    print(
        f"{label}: {args.deployments} deployments written in {time.perf_counter() - started:.1f} s"
    )
    rounds = int(args.minutes * MINUTE / args.round_interval)
    timings: list[tuple[float, float, int]] = []
    restarted = False
    for index in range(rounds + 1):
        now = START + index * args.round_interval
        if not restarted and index >= rounds // 2:
            db.dispose()  # the scheduler restarts: a new Database, nothing kept in memory
            db = Database(url)
            restarted = True
            replica = Database(url)
            wall = time.perf_counter()
            again = schedule_runs(replica, now - args.round_interval).changed
            print(
                f"  restart at minute {(now - START) / MINUTE:g}: a second Database repeating "
                f"the last round created {again} runs in {time.perf_counter() - wall:.2f} s"
            )
            replica.dispose()
        wall = time.perf_counter()
        created = schedule_runs(db, now).changed
        timings.append((now, time.perf_counter() - wall, created))
    end = START + rounds * args.round_interval
    last_minute = int((end + DEFAULT_POLICY.lookahead - START) // MINUTE)
    problems = check(db, args.deployments, last_minute)
    with db.read() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(flow_run)).scalar_one()
    db.dispose()

    first_time, first_created = timings[0][1], timings[0][2]
    later = [seconds for _, seconds, _ in timings[1:]]
    later_runs = sum(created for _, _, created in timings[1:])
    print(
        f"  first round: {first_created} runs in {first_time:.2f} s "
        f"({first_created / first_time:,.0f} runs/s)"
    )
    print(
        f"  later rounds ({len(later)}, every {args.round_interval:g} s of simulated time): "
        f"median {statistics.median(later):.2f} s, worst {max(later):.2f} s, "
        f"{later_runs / sum(later):,.0f} runs/s, {later_runs / len(later):,.0f} runs per round"
    )
    verdict = "OK" if not problems else f"{len(problems)} PROBLEMS"
    print(
        f"  check: {total} runs; every deployment has exactly one run for each minute "
        f"0..{last_minute}: {verdict}"
    )
    for problem in problems[:10]:
        print(f"    {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--round-interval", type=float, default=30.0)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/headwater_bench"
        ).rsplit("/", 1)[0]
        + "/headwater_scheduler_bench",
    )
    args = parser.parse_args()
    print(
        f"scheduler policy: at least {DEFAULT_POLICY.min_runs} runs and "
        f"{DEFAULT_POLICY.lookahead:g} s ahead, "
        f"{DEFAULT_POLICY.chunk_size} schedules per transaction"
    )
    for name in args.databases.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as scratch:
                bench(f"sqlite:///{Path(scratch) / 'headwater.db'}", "SQLite", args)
        elif name == "postgresql":
            recreate_database(args.postgres_url)
            try:
                bench(args.postgres_url, "PostgreSQL", args)
            finally:
                recreate_database(args.postgres_url, drop_only=True)
        else:
            raise SystemExit(f"unknown database {name!r}; use sqlite or postgresql")


if __name__ == "__main__":
    main()
