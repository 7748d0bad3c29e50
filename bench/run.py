"""Benchmark Headwater (embedded and against its server) and, optionally, Prefect, side by side.

    python bench/run.py [workloads...] [--headwater-server sqlite|postgresql|both]
                        [--prefect-python PATH [--start-prefect-server]] [--repeat N] [--n N]

Each workload is a script in bench/workloads/ run in a fresh subprocess; see bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers import (
    HeadwaterServer,
    Server,
    cpu_seconds,
    health,
    postgres_pids,
    process_tree,
    rss_mb,
    start_prefect_server,
    stop_process,
)

WORKLOADS = Path(__file__).resolve().parent / "workloads"
ALL = ["import", "hello", "sequential", "map", "async-concurrent"]
SCRIPTS = {"hello": "hello.py", "sequential": "sequential.py", "map": "map.py",
           "async-concurrent": "async_concurrent.py"}
#: Workloads with a size, and their sizes, per system (see `plan`).
SIZES = {"sequential": [1000], "map": [1000, 10000], "async-concurrent": [10, 1000]}
SERVER_SIZES = {
    "sqlite": {"sequential": [1000], "async-concurrent": [10, 25, 1000]},
    "postgresql": {"sequential": [1000], "async-concurrent": [10, 25, 1000, 10000]},
}
#: Prefect at the sizes it copes with: ~36 ms per mapped task; 25 concurrent subflows
#: already fail against its server on SQLite (shared/BENCHMARKS.md), shown here.
PREFECT_SIZES = {"sequential": [1000], "map": [1000], "async-concurrent": [10, 25]}
#: Runs one workload leaves on the server: (flow runs, task runs) at size n. Each
#: subflow call also records a task run of its own in the parent ("subflow:child").
TASKS_PER_FLOW = 10
EXPECTED_RUNS: dict[str, Callable[[int], tuple[int, int]]] = {
    "hello": lambda n: (1, 1),
    "sequential": lambda n: (1, n),
    "async-concurrent": lambda n: (n + 1, n * (TASKS_PER_FLOW + 1)),
}
MEMORY = "server memory"  # a pseudo-workload: the servers' RSS after the others
DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


@dataclass
class Metric:
    """One table row: which value of a workload's output, its unit, and the targets.

    `target` maps a system kind ("embedded", "server") to Headwater's target;
    `when` limits the target to one (database, n) where the issue sets it. An
    `optional` metric exists only for some systems (e.g. a server's CPU): its
    row is left out where a system has no value, or failed.
    """
    label: str
    key: str
    unit: str
    target: dict[str, float] = field(default_factory=dict)
    higher_better: bool = False
    worst: bool = False  # over repeats, report the worst sample (counts of errors)
    optional: bool = False
    when: tuple[str, int] | None = None


def both(value: float) -> dict[str, float]:
    return {"embedded": value, "server": value}


METRICS = {
    "import": [Metric("import", "wall", "s", {"embedded": 0.15})],
    "hello": [Metric("hello (whole process)", "wall", "s", {"embedded": 0.25, "server": 0.35}),
              Metric("hello runs not recorded", "unrecorded", "", {"server": 0}, worst=True,
                     optional=True)],
    "sequential": [Metric("sequential {n}", "ms_per_task", "ms/task",
                          {"embedded": 0.05, "server": 0.1}),
                   Metric("sequential {n} flow", "flow_s", "s"),
                   Metric("sequential {n} runs not recorded", "unrecorded", "", {"server": 0},
                          worst=True, optional=True)],
    "map": [Metric("map {n}", "ms_per_task", "ms/task", {"embedded": 0.2}),
            Metric("map {n} flow", "flow_s", "s")],
    "async-concurrent": [
        Metric("async {n}x10 total", "total_s", "s"),
        Metric("async {n}x10 flow runs/s", "runs_per_s", "/s", {"server": 400}, True,
               when=("postgresql", 10000)),
        Metric("async {n}x10 errors", "errors", "", both(0), worst=True),
        Metric("async {n}x10 runs not recorded", "unrecorded", "", {"server": 0}, worst=True,
               optional=True),
        Metric("async {n}x10 client CPU", "cpu_s", "s", optional=True),
        Metric("async {n}x10 server CPU", "server_cpu_s", "s", optional=True),
        Metric("async {n}x10 PostgreSQL CPU (all)", "db_cpu_s", "s", optional=True),
    ],
    MEMORY: [Metric("server RSS at start", "idle_rss_mb", "MB"),
             Metric("server RSS after the workloads", "rss_mb", "MB", {"server": 100})],
}


class BenchError(Exception):
    """A workload failed; the message goes into the table."""


@dataclass
class System:
    """One configuration under test: the package, its interpreter, environment and server."""
    key: str  # embedded | server-sqlite | server-postgresql | prefect
    label: str
    package: str
    python: str
    env: dict[str, str]
    scratch: Path
    has_server: bool = True
    database: str = ""  # for Headwater servers: sqlite | postgresql
    server: HeadwaterServer | None = None
    server_pid: int | None = None  # a server whose memory is reported (Headwater's, Prefect's)
    idle_rss_mb: float | None = None

    @property
    def kind(self) -> str:
        return "server" if self.key.startswith("server") else self.key

    def env_for_workload(self) -> dict[str, str]:
        """Environment for one workload; Headwater gets a fresh HEADWATER_HOME each time."""
        env = {**self.env, "BENCH_PKG": self.package}
        if self.package == "headwater":
            env["HEADWATER_HOME"] = tempfile.mkdtemp(prefix="home-", dir=self.scratch)
        return env


Result = tuple[dict[str, float] | str, str]  # (metrics or error text, note)


def run_once(system: System, argv: list[str], env: dict[str, str], timeout: float
             ) -> tuple[float, dict[str, Any]]:
    """Run one subprocess; return (wall seconds, its JSON line). Raise BenchError on failure."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen([system.python, *argv], env=env, cwd=system.scratch, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as exc:
        raise BenchError(f"cannot start {system.python}: {exc}") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except BaseException as exc:  # timeout or Ctrl-C: never leave the child running
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise BenchError(f"timeout after {timeout:.0f} s") from None
        raise
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise BenchError(f"exit {proc.returncode}: {last_line(err or out)}")
    if argv[0] == "-c":
        return wall, {}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise BenchError(f"no JSON output: {last_line(err or out)}")
    return wall, json.loads(lines[-1])


def last_line(text: str) -> str:
    """The last non-empty line of a process's output, trimmed."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no output)"


def timed_run(system: System, workload: str, n: int, argv: list[str], env: dict[str, str],
              args: argparse.Namespace) -> tuple[dict[str, float], str]:
    """One timed run; with a server, also its CPU, and a check of what a Headwater one recorded.

    PostgreSQL's CPU is that of all its processes on the machine: other users show too.
    """
    server = system.server
    pids = process_tree(system.server_pid) if system.server_pid else []
    db_pids = postgres_pids() if system.database == "postgresql" else []
    cpu0, db0 = cpu_seconds(pids), cpu_seconds(db_pids)
    try:
        before = server.counts() if server else None
    except OSError as exc:
        raise BenchError(f"cannot read the run counts from {server.api_url}: {exc}") from None
    wall, data = run_once(system, argv, env, args.timeout)
    sample = {"wall": wall, **numbers(data)}
    if pids:
        sample["server_cpu_s"] = cpu_seconds(pids) - cpu0
    if db_pids:
        sample["db_cpu_s"] = cpu_seconds(db_pids) - db0
    if server is None or before is None:
        return sample, str(data.get("first_error") or "")
    try:
        after = server.counts()
    except OSError as exc:
        raise BenchError(f"cannot read the run counts from {server.api_url}: {exc}") from None
    flow_runs, task_runs = EXPECTED_RUNS[workload](n)
    new_flow = after.flow_runs_completed - before.flow_runs_completed
    new_task = after.task_runs_completed - before.task_runs_completed
    sample["unrecorded"] = max(0, flow_runs - new_flow) + max(0, task_runs - new_task)
    note = str(data.get("first_error") or "")
    if (new_flow, new_task) != (flow_runs, task_runs):
        note = (f"the server recorded {new_flow} of {flow_runs} flow runs and {new_task} of "
                f"{task_runs} task runs as Completed (all states: "
                f"{after.flow_runs - before.flow_runs} and {after.task_runs - before.task_runs})"
                + (f"; {note}" if note else ""))
    return sample, note


def numbers(data: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}


def measure(system: System, workload: str, n: int, args: argparse.Namespace
            ) -> tuple[dict[str, float], str]:
    """Warm up once (untimed), then run `repeat` times; return median metrics and a note.

    Counts of errors and unrecorded runs report the worst run, not the median.
    """
    env = system.env_for_workload()
    argv = ([str(WORKLOADS / SCRIPTS[workload]), str(n)] if workload in SCRIPTS
            else ["-c", f"import {system.package}"])
    warmup = [str(WORKLOADS / "hello.py")] if workload in SCRIPTS else argv
    try:
        run_once(system, warmup, env, args.timeout)
    except BenchError as exc:
        raise BenchError(f"warm-up: {exc}") from None
    samples: list[dict[str, float]] = []
    note = ""
    for _ in range(args.repeat_heavy if workload in SIZES else args.repeat):
        sample, sample_note = timed_run(system, workload, n, argv, env, args)
        note = sample_note or note
        samples.append(sample)
    worst = {m.key for m in METRICS[workload] if m.worst}
    return {k: (max if k in worst else statistics.median)(s[k] for s in samples)
            for k in samples[0]}, note


def plan(system: System, args: argparse.Namespace) -> list[tuple[str, int]]:
    """The (workload, size) pairs `system` runs."""
    if system.kind == "server":
        sizes: dict[str, list[int]] = {"hello": [0], **SERVER_SIZES[system.database]}
    elif system.kind == "prefect":
        sizes = {"import": [0], "hello": [0], **PREFECT_SIZES}
        if not system.has_server:  # each process would start its own temporary server
            sizes = {"import": [0]}
    else:
        sizes = {"import": [0], "hello": [0], **SIZES}
    return [(w, n) for w in args.workloads if w in sizes
            for n in ([args.n] if args.n and w in SIZES else sizes[w])]


def run_system(system: System, todo: list[tuple[str, int]], args: argparse.Namespace
               ) -> dict[tuple[str, int], Result]:
    """Every (workload, size) of `todo` on `system`, then the memory of its server if any."""
    results: dict[tuple[str, int], Result] = {}
    for workload, n in todo:
        print(f"running {workload} {n or ''}".rstrip() + f" on {system.label}", file=sys.stderr,
              flush=True)
        try:
            results[workload, n] = measure(system, workload, n, args)
        except BenchError as exc:
            results[workload, n] = (f"error: {exc}", "")
    if system.server_pid is not None:
        memory = {"rss_mb": rss_mb(system.server_pid)}
        if system.idle_rss_mb is not None:
            memory["idle_rss_mb"] = system.idle_rss_mb
        results[MEMORY, 0] = (memory, "")
    return results


@contextmanager
def serving(system: System, args: argparse.Namespace) -> Iterator[None]:
    """Start the server `system` needs for its workloads (if any) and stop it afterwards."""
    if system.kind == "server":
        with HeadwaterServer(system.database, system.scratch, system.env,
                             postgres_url=args.headwater_postgres_url,
                             workers=args.headwater_server_workers) as server:
            system.server, system.server_pid = server, server.pid
            system.idle_rss_mb = server.idle_rss_mb
            system.env = {**system.env, "HEADWATER_API_URL": server.api_url}
            yield
        return
    proc: Server | None = None
    if system.kind == "prefect" and args.start_prefect_server:
        proc = start_prefect_server(system.python, args.prefect_api_url, args.prefect_home)
        if proc is not None:
            system.server_pid = proc.pid
            system.idle_rss_mb = rss_mb(proc.pid)
    elif system.kind == "prefect" and system.has_server and not health(args.prefect_api_url):
        print(f"warning: no healthy Prefect server at {args.prefect_api_url}", file=sys.stderr)
    try:
        yield
    finally:
        stop_process(proc)


# -- the table ------------------------------------------------------------------------

def fmt(value: float | str, unit: str) -> str:
    """Format a number with its unit, or pass an error text through."""
    return value if isinstance(value, str) else f"{value:.3g} {unit}".strip()


def ratio(m: Metric, h: float | str, p: float | str) -> str:
    """Prefect/Headwater for times (Headwater/Prefect for throughput): >1 means Headwater wins."""
    if isinstance(h, str) or isinstance(p, str) or m.key in ("errors", "unrecorded"):
        return ""
    num, den = (h, p) if m.higher_better else (p, h)
    return f"{num / den:.1f}x" if den > 0 else "inf"


def target(m: Metric, system: System, n: int, h: float | str) -> str:
    """The target for this row and whether Headwater meets it."""
    goal = m.target.get(system.kind)
    if goal is None or (m.when is not None and m.when != (system.database, n)):
        return ""
    sign = ">=" if m.higher_better else "<="
    text = f"{sign} {goal:g} {m.unit}" if m.unit else f"= {goal:g}"
    if isinstance(h, str):
        return text
    met = h >= goal if m.higher_better else h <= goal
    return f"{text} {'ok' if met else 'MISS'}"


def cell(result: Result | None, key: str, missing: str) -> float | str:
    if result is None:
        return missing
    value = result[0]
    return value if isinstance(value, str) else value.get(key, "missing")


def make_rows(systems: list[System], results: dict[str, dict[tuple[str, int], Result]],
              prefect: System | None) -> list[dict[str, Any]]:
    """Table rows: per workload and size, each Headwater system, with Prefect's figure."""
    headwater = [s for s in systems if s.package == "headwater"]
    sizes = sorted({key for s in headwater for key in results[s.key]},
                   key=lambda k: ([*ALL, MEMORY].index(k[0]), k[1]))
    rows: list[dict[str, Any]] = []
    for workload, n in sizes:
        for system in headwater:
            result = results[system.key].get((workload, n))
            if result is None:
                continue
            p_result = results[prefect.key].get((workload, n)) if prefect else None
            p_missing = prefect_missing(prefect, workload)
            for m in METRICS[workload]:
                h = cell(result, m.key, "missing")
                if m.optional and (h == "missing" or isinstance(result[0], str)):
                    continue
                p = cell(p_result, m.key, p_missing)
                if m.key == "unrecorded" or (p == "missing" and m.optional):
                    p = ""  # Prefect's records are not checked; it has no such figure
                notes = {}
                if m is METRICS[workload][0]:
                    notes = {k: v for k, v in (("headwater", result[1]),
                                                ("prefect", p_result[1] if p_result else ""))
                             if v}
                rows.append({"workload": m.label.format(n=n), "system": system.label,
                             "unit": m.unit, "headwater": h, "prefect": p,
                             "ratio": ratio(m, h, p), "target": target(m, system, n, h),
                             "notes": notes})
    return rows


def prefect_missing(prefect: System | None, workload: str) -> str:
    """What the Prefect column says where Prefect did not run."""
    if prefect is None:
        return "n/a"
    if workload == MEMORY:
        return "n/a (server not started here)"
    if workload != "import" and not prefect.has_server:
        return "n/a (no server)"
    return "skipped (slow)"


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print rows as an aligned text table, then any error texts in full."""
    head = ["workload", "system", "headwater", "prefect", "ratio (P/H)", "target"]
    body = [[str(r["workload"]), str(r["system"]), fmt(r["headwater"], r["unit"]),
             fmt(r["prefect"], r["unit"]), str(r["ratio"]), str(r["target"])] for r in rows]
    clip = [[c if len(c) <= 48 else c[:45] + "..." for c in line] for line in body]
    widths = [max(len(x) for x in col) for col in zip(head, *clip, strict=True)]
    for line in [head, ["-" * w for w in widths], *clip]:
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    seen: set[tuple[str, str]] = set()
    for r, line in zip(rows, body, strict=True):
        long = [(n, t) for n, t in [(r["system"], line[2]), ("prefect", line[3])] if len(t) > 48]
        long += [(r["system"] if n == "headwater" else n, f"first error: {t}")
                 for n, t in dict(r["notes"]).items()]
        for name, text in long:
            if (name, text) not in seen:
                seen.add((name, text))
                print(f"\n[{r['workload']} / {name}] {text}")


# -- setup ----------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("workloads", nargs="*", metavar="WORKLOAD",
                    help=f"any of {', '.join(ALL)} (default: all)")
    ap.add_argument("--headwater-server", choices=["none", "sqlite", "postgresql", "both"],
                    default="none", help="also run hello, sequential and async-concurrent "
                    "against `headwater server start` on this store (default: none)")
    ap.add_argument("--headwater-postgres-url", default=os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/headwater_bench"),
        help="database the PostgreSQL server uses; DROPPED and re-created for each run "
             "(default: env BENCH_POSTGRES_URL or .../headwater_bench on 127.0.0.1:5432)")
    ap.add_argument("--headwater-server-workers", type=int, default=1,
                    help="`headwater server start --workers N` (memory is summed over them)")
    ap.add_argument("--no-embedded", action="store_true",
                    help="skip embedded Headwater (only with --headwater-server)")
    ap.add_argument("--prefect-python", default=os.environ.get("BENCH_PREFECT_PYTHON"),
                    help="interpreter of a Prefect venv (default: env BENCH_PREFECT_PYTHON)")
    ap.add_argument("--prefect-api-url", default=os.environ.get("PREFECT_API_URL"),
                    help="running Prefect server API (default: env PREFECT_API_URL)")
    ap.add_argument("--start-prefect-server", action="store_true",
                    help="start (and stop after its workloads) a Prefect server for "
                         "--prefect-api-url")
    ap.add_argument("--prefect-home", default=os.environ.get(
        "PREFECT_HOME", str(Path.home() / "prefect-home")), help="PREFECT_HOME for the server")
    ap.add_argument("--repeat", type=int, default=5, help="runs of import/hello (median)")
    ap.add_argument("--repeat-heavy", type=int, default=1,
                    help="runs of sequential/map/async-concurrent (median)")
    ap.add_argument("--n", type=int, help="one size for sized workloads, on every system")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per subprocess")
    ap.add_argument("--json", type=Path, help="also save results here")
    args = ap.parse_args()
    unknown = set(args.workloads) - set(ALL)
    if unknown:
        ap.error(f"unknown workload(s) {sorted(unknown)}; choose from {ALL}")
    if args.no_embedded and args.headwater_server == "none":
        ap.error("--no-embedded leaves nothing to run without --headwater-server")
    args.workloads = args.workloads or ALL
    if args.start_prefect_server and not args.prefect_api_url:
        args.prefect_api_url = "http://127.0.0.1:4299/api"
    return args


def version(python: str, dist: str) -> str:
    """Installed version of distribution `dist` for interpreter `python`, or '?'."""
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    try:
        out = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip() or "?"


def make_systems(args: argparse.Namespace, scratch: Path) -> list[System]:
    """Embedded Headwater, Headwater servers, then Prefect if given (no outside HEADWATER_*
    but HEADWATER_TASK_RUN_EVENTS, to compare the server with and without task-run events)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HEADWATER_", "PREFECT_")) or k == "HEADWATER_TASK_RUN_EVENTS"
    }
    systems: list[System] = []

    def add(system: System) -> None:
        system.scratch.mkdir()
        systems.append(system)

    if not args.no_embedded:
        add(System("embedded", "headwater (embedded)", "headwater", sys.executable, base,
                   scratch / "hw"))
    databases = {"both": ["sqlite", "postgresql"], "none": []}.get(
        args.headwater_server, [args.headwater_server])
    for database in databases:
        add(System(f"server-{database}", f"headwater (server, {DATABASE_NAMES[database]})",
                   "headwater", sys.executable, base, scratch / database, database=database))
    if args.prefect_python:
        env = {**base, "PREFECT_HOME": args.prefect_home}
        if args.prefect_api_url:
            env["PREFECT_API_URL"] = args.prefect_api_url
        add(System("prefect", "prefect", "prefect", args.prefect_python, env, scratch / "pf",
                   has_server=bool(args.prefect_api_url)))
    return systems


def byte_compile_headwater() -> None:
    """Write Headwater's .pyc files, as pip does for an installed Prefect.

    An editable install in an environment with PYTHONDONTWRITEBYTECODE would
    otherwise recompile every module in every timed process.
    """
    code = "import headwater, os; print(os.path.dirname(headwater.__file__))"
    package = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if package.returncode == 0:
        subprocess.run([sys.executable, "-m", "compileall", "-q", package.stdout.strip()])


def main() -> None:
    """Run the selected workloads on every system and print (and optionally save) the table."""
    args = parse_args()
    byte_compile_headwater()
    scratch = Path(tempfile.mkdtemp(prefix="headwater-bench-"))
    results: dict[str, dict[tuple[str, int], Result]] = {}
    try:
        systems = make_systems(args, scratch)
        plans = {s.key: plan(s, args) for s in systems}
        # Prefect only runs what a Headwater row compares it with.
        shown = {item for s in systems if s.package == "headwater" for item in plans[s.key]}
        if "prefect" in plans:
            plans["prefect"] = [item for item in plans["prefect"] if item in shown]
        for system in systems:
            with serving(system, args) if system.kind != "embedded" else nullcontext():
                results[system.key] = run_system(system, plans[system.key], args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    prefect = next((s for s in systems if s.kind == "prefect"), None)
    rows = make_rows(systems, results, prefect)
    meta = {"headwater": f"{version(sys.executable, 'headwater')} ({sys.executable})",
            "servers": f"{args.headwater_server} (workers: {args.headwater_server_workers}"
                       + (f", PostgreSQL {args.headwater_postgres_url}"
                          if args.headwater_server in ("postgresql", "both") else "") + ")",
            "prefect": f"{version(args.prefect_python, 'prefect')} ({args.prefect_python}, "
                       f"API {args.prefect_api_url})" if args.prefect_python else "not given",
            "machine": f"{os.cpu_count()} cores, {platform.platform()}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "repeat": f"{args.repeat} (import, hello), {args.repeat_heavy} (others); medians"}
    print("\n" + "\n".join(f"{k + ':':10} {v}" for k, v in meta.items()))
    print("Headwater: fresh HEADWATER_HOME per workload, sources byte-compiled first (as pip "
          "does for Prefect); every workload (all systems) gets one untimed warm-up run "
          "first, so DB schema creation is not measured. Servers: one fresh server (and "
          "database) per system for all its workloads; every run checked through the API.\n"
          "Prefect runs against its own server (on SQLite unless configured otherwise).\n"
          "Noisy machine: compare within one run and quote ratios (>1x = Headwater faster).\n")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
