"""The UI's pages with 100,000 flow runs: server time of the flow-run list and the dashboard.

    python bench/ui_pages.py [--runs 100000] [--repeat 15] [--database-url URL] [--no-sqlite]

For each database: a fresh store seeded with N flow runs (20 flows, 10 deployments, tags,
states mostly Completed with some Failed, Crashed, Running and Scheduled; run times spread
over the last 30 days, Scheduled ones over the next day), written straight into the tables
in batches; then `headwater server start --no-services` on it, and GET of each page case
`--repeat` times after a warm-up, reading the `Server-Timing: app;dur=<ms>` header the UI
adds to every page. Prints the median and p95 per case, and the target (<= 300 ms).

SQLite goes in a temporary directory. PostgreSQL runs when --database-url or
HEADWATER_TEST_DATABASE_URL is given: in a new schema `hw_bench_<hex>` of that database,
dropped afterwards (as the test suite's stores are).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa
from servers import free_port, start_process, stop_process

from headwater.core.ids import flow_id
from headwater.server.database import Database
from headwater.store.tables import deployment, flow, flow_run

TARGET_MS = 300.0
FLOWS = 20
DEPLOYMENTS = 10
TAGS = ("nightly", "hourly", "finance", "marketing", "ml", "etl", "adhoc", "critical")
#: (state type, state name, share of runs)
STATES = (
    ("COMPLETED", "Completed", 0.80),
    ("FAILED", "Failed", 0.07),
    ("CRASHED", "Crashed", 0.02),
    ("CANCELLED", "Cancelled", 0.03),
    ("RUNNING", "Running", 0.02),
    ("SCHEDULED", "Scheduled", 0.06),
)
BATCH = 5000


def seed(url: str, runs: int) -> None:
    """Write `runs` flow runs (and their flows and deployments) into the store at `url`."""
    db = Database(url)
    db.ensure_schema()
    rng = random.Random(7)
    now = time.time()
    flows = [(uuid.UUID(flow_id(f"flow-{i:02d}")), f"flow-{i:02d}") for i in range(FLOWS)]
    deployments = [uuid.uuid4() for _ in range(DEPLOYMENTS)]
    with db.write() as conn:
        conn.execute(
            sa.insert(flow), [{"id": f, "name": name, "created": now} for f, name in flows]
        )
        conn.execute(
            sa.insert(deployment),
            [
                {
                    "id": d,
                    "flow_id": flows[i][0],
                    "name": f"deployment-{i}",
                    "parameters": {},
                    "parameter_schema": {},
                    "enforce_parameter_schema": False,
                    "tags": [],
                    "job_variables": {},
                    "collision_strategy": "ENQUEUE",
                    "paused": False,
                    "created": now,
                    "updated": now,
                }
                for i, d in enumerate(deployments)
            ],
        )
    types = [s[:2] for s in STATES]
    weights = [s[2] for s in STATES]
    for first in range(0, runs, BATCH):
        rows = []
        for _ in range(min(BATCH, runs - first)):
            index = rng.randrange(FLOWS)
            state_type, state_name = rng.choices(types, weights)[0]
            at = now - rng.random() * 30 * 86400
            scheduled = state_type == "SCHEDULED"
            if scheduled:
                at = now + rng.random() * 86400
            ended = state_type not in ("RUNNING", "SCHEDULED")
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "flow_id": flows[index][0],
                    "name": f"run-{first + len(rows)}",
                    "state_type": state_type,
                    "state_name": state_name,
                    "state_message": None,
                    "state_timestamp": at,
                    "parameters": {"day": int(at // 86400)},
                    "tags": rng.sample(TAGS, rng.randrange(3)),
                    "run_count": 0 if scheduled else 1,
                    "root_flow_run_id": None,
                    "deployment_id": deployments[index] if index < DEPLOYMENTS else None,
                    "expected_start_time": at,
                    "start_time": None if scheduled else at,
                    "end_time": at + rng.random() * 600 if ended else None,
                    "created": at - 60,
                    "updated": at,
                }
            )
        with db.write() as conn:
            conn.execute(sa.insert(flow_run), rows)
    if db.engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load: statistics and the visibility
        # map (index-only scans). SQLite gets nothing: no Headwater store runs ANALYZE.
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE flow_run"
            )
    db.dispose()


def cases(api_url: str) -> dict[str, str]:
    """Page paths to time: the flow-run list with each kind of filter, and the dashboard."""
    with urllib.request.urlopen(f"{api_url}/deployments?limit=1", timeout=30) as response:
        deployment_id = json.load(response)["items"][0]["id"]
    return {
        "flow runs": "/flow-runs",
        "flow runs, page 2": "/flow-runs?offset=50",
        "flow runs, state Failed": "/flow-runs?state_type=FAILED",
        "flow runs, state Completed": "/flow-runs?state_type=COMPLETED",
        "flow runs, flow": "/flow-runs?flow_name=flow-03",
        "flow runs, deployment": f"/flow-runs?deployment_id={deployment_id}",
        "flow runs, tag": "/flow-runs?tag=critical",
        "flow runs, last 24 h": "/flow-runs?since="
        + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400)),
        "flow runs, state+flow+tag": "/flow-runs?state_type=FAILED&state_type=CRASHED"
        "&flow_name=flow-03&tag=nightly",
        "dashboard (24 h)": "/",
        "dashboard (7 d)": "/?window=7d",
    }


def server_time(url: str) -> tuple[float, float]:
    """GET `url`: (the page's Server-Timing app duration, the wall time), in ms."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
        header = response.headers.get("server-timing", "")
    wall = (time.perf_counter() - started) * 1000
    if response.status != 200 or "dur=" not in header:
        raise SystemExit(f"GET {url}: {response.status}, Server-Timing {header!r}")
    return float(header.split("dur=", 1)[1].split(",")[0]), wall


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def measure(label: str, url: str, args: argparse.Namespace, scratch: Path) -> None:
    started = time.perf_counter()
    seed(url, args.runs)
    print(f"{label}: {args.runs:,} flow runs written in {time.perf_counter() - started:.1f} s")
    home = Path(tempfile.mkdtemp(prefix="home-", dir=scratch))
    env = {**os.environ, "HEADWATER_HOME": str(home), "HEADWATER_DATABASE_URL": url}
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    exe = Path(sys.executable).parent / "headwater"
    # No services: the late-run marker and the scheduler would write while we read.
    argv = [str(exe), "server", "start", "--port", str(port), "--no-services"]
    server = start_process(argv, env, scratch / "server.log", api_url, "Headwater server")
    try:
        base = api_url.removesuffix("/api")
        print(f"{'case':32} {'median ms':>10} {'p95 ms':>8} {'wall ms':>8}  target")
        for name, path in cases(api_url).items():
            server_time(base + path)  # warm-up: caches, prepared statements
            samples = [server_time(base + path) for _ in range(args.repeat)]
            app = [s[0] for s in samples]
            median = statistics.median(app)
            verdict = "ok" if median <= TARGET_MS else "OVER"
            print(
                f"{name:32} {median:10.1f} {p95(app):8.1f} "
                f"{statistics.median(s[1] for s in samples):8.1f}  <= {TARGET_MS:g} {verdict}"
            )
    finally:
        stop_process(server)
    print(f"({label}: median and p95 of {args.repeat} after a warm-up)\n")


def postgres_schema(base: str) -> tuple[str, str]:
    """A new schema in the database of `base`: (its name, a URL that uses it)."""
    import psycopg

    schema = f"hw_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    return schema, f"{base}{separator}options=-csearch_path%3D{schema}"


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(_libpq(base), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEADWATER_TEST_DATABASE_URL", ""),
        help="a PostgreSQL database to bench in a fresh schema (default: "
        "HEADWATER_TEST_DATABASE_URL; none: SQLite only)",
    )
    parser.add_argument("--no-sqlite", action="store_true", help="only PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hw-ui-bench-") as directory:
        scratch = Path(directory)
        if not args.no_sqlite:
            measure("SQLite", f"sqlite:///{scratch / 'headwater.db'}", args, scratch)
        if args.database_url:
            schema, url = postgres_schema(args.database_url)
            try:
                measure("PostgreSQL", url, args, scratch)
            finally:
                drop_schema(args.database_url, schema)
        elif args.no_sqlite:
            sys.exit("--no-sqlite needs --database-url (or HEADWATER_TEST_DATABASE_URL)")


if __name__ == "__main__":
    main()
