"""Events ingest: events/s into a real Headwater server (SQLite, PostgreSQL), and emit_event.

For each database, starts `headwater server start` (bench/servers.py) on a fresh
store, then `--clients` threads each POST batches of `--batch` events to
`/api/events` for `--seconds`, and reports events stored per second (counted
by the server's answers, then checked with `POST /api/events/filter`'s total).
Also times `emit_event` in process on an embedded SQLite store: the call itself
(the hot path) and the time until the recorder has written everything.

    .venv/bin/python bench/events_ingest.py [--database sqlite|postgresql|both]
        [--clients 4] [--batch 500] [--seconds 10] [--emit 100000]

PostgreSQL: `--postgres-url` (default env BENCH_POSTGRES_URL, else a database
`headwater_events_bench` on 127.0.0.1:5432, DROPPED and re-created per run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from servers import HeadwaterServer, cpu_seconds

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/headwater_events_bench"


def _batch(size: int, client: int) -> bytes:
    now = time.time()
    events = [
        {
            "id": str(uuid.uuid4()),
            "occurred": now,
            "event": "bench.order.placed",
            "resource": {"headwater.resource.id": f"bench.order.{client}.{i}", "shop": "eu"},
            "related": [
                {
                    "headwater.resource.id": f"bench.customer.{i % 97}",
                    "headwater.resource.role": "customer",
                }
            ],
            "payload": {"amount": i, "currency": "EUR"},
        }
        for i in range(size)
    ]
    return json.dumps(events).encode()


def _post(url: str, body: bytes) -> dict[str, int]:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer: dict[str, int] = json.load(response)
    return answer


def ingest(api_url: str, clients: int, batch: int, seconds: float) -> tuple[int, float, int]:
    """(events stored, elapsed seconds, errors) of `clients` threads posting for `seconds`."""
    stored = [0] * clients
    errors = [0] * clients
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        while time.monotonic() < deadline:
            body = _batch(batch, index)  # built outside the timing would flatter the server
            try:
                stored[index] += _post(f"{api_url}/events", body)["new"]
            except Exception:
                errors[index] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(stored), time.monotonic() - started, sum(errors)


def bench_server(database: str, args: argparse.Namespace, scratch: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    with HeadwaterServer(database, scratch, env, postgres_url=args.postgres_url) as server:
        _post(f"{server.api_url}/events", _batch(10, 99))  # warm up
        cpu_before = cpu_seconds(server.cpu_pids())
        stored, elapsed, errors = ingest(server.api_url, args.clients, args.batch, args.seconds)
        cpu = cpu_seconds(server.cpu_pids()) - cpu_before
        total = _post(
            f"{server.api_url}/events/filter",
            json.dumps({"event": ["bench.order.*"], "limit": 1}).encode(),
        )["total"]
    return {
        "database": database,
        "events": stored,
        "seconds": round(elapsed, 2),
        "events_per_second": round(stored / elapsed),
        "server_cpu_seconds": round(cpu, 2),
        "stored_total": total,
        "errors": errors,
    }


EMIT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from headwater.events import emit_event
    from headwater.engine.recorder import get_recorder
    n = int(sys.argv[1])
    emit_event("warm.up", resource={"headwater.resource.id": "w"})
    get_recorder().commit().result()
    start = time.perf_counter()
    for i in range(n):
        emit_event("bench.tick", resource={"headwater.resource.id": f"bench.{i % 100}"},
                   payload={"i": i})
    emitted = time.perf_counter() - start
    get_recorder().commit().result()
    written = time.perf_counter() - start
    print(json.dumps({"n": n, "emit_us": emitted / n * 1e6, "written_per_s": n / written}))
    """
)


def bench_emit(n: int, scratch: Path) -> dict[str, float]:
    home = tempfile.mkdtemp(prefix="emit-", dir=scratch)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env["HEADWATER_HOME"] = home
    out = subprocess.run(
        [sys.executable, "-c", EMIT_SCRIPT, str(n)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument(
        "--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batch", type=int, default=500, help="events per request (max 1000)")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--emit", type=int, default=100_000, help="emit_event calls (0: skip)")
    args = ap.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    with tempfile.TemporaryDirectory(prefix="headwater-events-bench-") as tmp:
        scratch = Path(tmp)
        for database in databases:
            result = bench_server(database, args, scratch)
            print(
                f"server ({database}): {result['events_per_second']:,} events/s "
                f"({result['events']:,} in {result['seconds']} s, {args.clients} clients x "
                f"{args.batch}/request, server CPU {result['server_cpu_seconds']} s, "
                f"errors {result['errors']}, stored {result['stored_total']:,})",
                flush=True,
            )
        if args.emit:
            emit = bench_emit(args.emit, scratch)
            print(
                f"emit_event (embedded SQLite): {emit['emit_us']:.1f} us per call, "
                f"{emit['written_per_s']:,.0f} events/s written ({emit['n']:,} events)"
            )


if __name__ == "__main__":
    main()
