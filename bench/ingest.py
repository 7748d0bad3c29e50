"""The server's PostgreSQL write path alone: recorder batches shaped like `async-concurrent`.

    python bench/ingest.py [--subflows-per-batch 200] [--batches 10] [--repeat 3]

Writes batches of completed subflows (1 flow run, 11 task runs, 3 states per run: what one
subflow of `workloads/async_concurrent.py` records) into a fresh PostgreSQL database, each
batch in one transaction as the ingest route does, once through the set-based statements
`sa_writer.write_rows` uses on PostgreSQL and once through SQLAlchemy's per-row executemany
(`sa_writer.statements`, the statements it uses on SQLite, compiled for PostgreSQL: the
write path before the set-based one). Prints, per task run, the wall time, the CPU of this
Python process and the CPU of the PostgreSQL backend serving it. The database given by
--postgres-url (default env BENCH_POSTGRES_URL or .../headwater_ingest_bench) is DROPPED and
re-created.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import sqlalchemy as sa
from servers import cpu_seconds, recreate_database

from headwater.core.ids import flow_id, uuid7_hex
from headwater.core.records import Batch
from headwater.core.states import StateType
from headwater.server.database import Database
from headwater.store import sa_writer, tables

TASKS = 11  # 10 tasks and the task run of the subflow call in its parent


def subflow(batch: Batch, flow: str) -> None:
    """Add the records of one completed subflow to `batch`."""
    now, done = time.time(), StateType.COMPLETED
    run = (uuid7_hex(), flow, f"run-{uuid7_hex()[-8:]}", done, "Completed", None, now,
           {"k": 3}, [], 1, uuid7_hex(), uuid7_hex(), uuid7_hex(), None, now, now, now, now,
           now, "host:1:1.0")
    batch.flow_runs[run[0]] = run
    batch.states.extend((uuid7_hex(), run[0], None, done, "Completed", None, now)
                        for _ in range(3))
    for i in range(TASKS):
        task = (uuid7_hex(), run[0], "__main__.step", str(i), f"step-{i}", done, "Completed",
                None, now, [], 1, {"i": []}, now, now, now, now)
        batch.task_runs[task[0]] = task
        batch.states.extend((uuid7_hex(), run[0], task[0], done, "Completed", None, now)
                            for _ in range(3))


def per_row_executemany(conn: sa.Connection, batch: Batch) -> None:
    """The write path before: one SQLAlchemy executemany per table (psycopg pipelines it)."""
    prepared = sa_writer.statements("postgresql")
    for table, rows in (("flow", batch.flows.values()), ("flow_run", batch.flow_runs.values()),
                        ("task_run", batch.task_runs.values()), ("state", batch.states)):
        cols = tables.RECORDED[table][1]
        if rows:
            conn.execute(prepared[table], [dict(zip(cols, r, strict=True)) for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/headwater_bench"
    ).rsplit("/", 1)[0] + "/headwater_ingest_bench")
    ap.add_argument("--subflows-per-batch", type=int, default=200)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    recreate_database(args.postgres_url)
    db = Database(args.postgres_url)
    db.ensure_schema()
    paths = {"set-based (now)": sa_writer.write_rows, "per-row executemany (before)":
             per_row_executemany}
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in paths}
    try:
        for _ in range(args.repeat):
            for name, write in paths.items():
                batches = []
                for _ in range(args.batches):
                    batch = Batch()
                    flow = flow_id("bench-child")
                    batch.flows[flow] = (flow, "bench-child", time.time())
                    for _ in range(args.subflows_per_batch):
                        subflow(batch, flow)
                    batches.append(batch)
                with db.write() as conn:
                    conn.exec_driver_sql("TRUNCATE flow, flow_run, task_run, state, log")
                    backend = [int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())]
                db_cpu, cpu, wall = cpu_seconds(backend), time.process_time(), time.perf_counter()
                for batch in batches:
                    with db.write() as conn:
                        write(conn, batch)
                task_runs = args.batches * args.subflows_per_batch * TASKS
                results[name].append(((time.perf_counter() - wall) / task_runs * 1e6,
                                      (time.process_time() - cpu) / task_runs * 1e6,
                                      (cpu_seconds(backend) - db_cpu) / task_runs * 1e6))
    finally:
        db.dispose()
        recreate_database(args.postgres_url, drop_only=True)
    rows = args.subflows_per_batch * (1 + 3 + TASKS * 4)
    print(f"{args.batches} batches of {args.subflows_per_batch} subflows ({rows} rows each), "
          f"median of {args.repeat}; per task run (one task run ~ 4.4 rows):")
    for name, samples in results.items():
        wall, python, postgres = (statistics.median(s[i] for s in samples) for i in range(3))
        print(f"  {name:30} wall {wall:6.1f} us   Python CPU {python:6.1f} us   "
              f"PostgreSQL backend CPU {postgres:6.1f} us")
    print(f"(script: {Path(__file__).name}; the backend must be on this machine for its CPU)")


if __name__ == "__main__":
    main()
