"""Benchmark Headwater and, optionally, Prefect on the same workloads, side by side.

    python bench/run.py [workloads...] [--prefect-python PATH] [--repeat N] [--n N]

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
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKLOADS = Path(__file__).resolve().parent / "workloads"
ALL = ["import", "hello", "sequential", "map", "async-concurrent"]
SCRIPTS = {"hello": "hello.py", "sequential": "sequential.py", "map": "map.py",
           "async-concurrent": "async_concurrent.py"}
SIZES = {"sequential": [1000], "map": [1000, 10000], "async-concurrent": [10, 1000]}
PREFECT_MAX_N = {"sequential": 1000, "map": 1000, "async-concurrent": 10}


@dataclass
class Metric:
    """One table row: which value of a workload's output, its unit, and the target."""
    label: str
    key: str
    unit: str
    target: float | None = None
    higher_better: bool = False


METRICS = {
    "import": [Metric("import", "wall", "s", 0.15)],
    "hello": [Metric("hello (whole process)", "wall", "s", 0.25)],
    "sequential": [Metric("sequential {n}", "ms_per_task", "ms/task", 0.05),
                   Metric("sequential {n} flow", "flow_s", "s")],
    "map": [Metric("map {n}", "ms_per_task", "ms/task", 0.2),
            Metric("map {n} flow", "flow_s", "s")],
    "async-concurrent": [Metric("async {n}x10 total", "total_s", "s"),
                         Metric("async {n}x10 flow runs/s", "runs_per_s", "/s", None, True),
                         Metric("async {n}x10 errors", "errors", "", 0)],
}


class BenchError(Exception):
    """A workload failed; the message goes into the table."""


@dataclass
class System:
    """One package under test and the interpreter/environment that runs it."""
    name: str
    python: str
    env: dict[str, str]
    scratch: Path
    has_server: bool = True

    def env_for_workload(self) -> dict[str, str]:
        """Environment for one workload; Headwater gets a fresh HEADWATER_HOME each time."""
        env = {**self.env, "BENCH_PKG": self.name}
        if self.name == "headwater":
            env["HEADWATER_HOME"] = tempfile.mkdtemp(prefix="home-", dir=self.scratch)
        return env


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


def measure(system: System, workload: str, n: int, args: argparse.Namespace
            ) -> tuple[dict[str, float], str]:
    """Warm up once (untimed), then run `repeat` times; return median metrics and a note."""
    env = system.env_for_workload()
    argv = ([str(WORKLOADS / SCRIPTS[workload]), str(n)] if workload in SCRIPTS
            else ["-c", f"import {system.name}"])
    warmup = [str(WORKLOADS / "hello.py")] if workload in SCRIPTS else argv
    try:
        run_once(system, warmup, env, args.timeout)
    except BenchError as exc:
        raise BenchError(f"warm-up: {exc}") from None
    samples: list[dict[str, float]] = []
    note = ""
    for _ in range(args.repeat_heavy if workload in SIZES else args.repeat):
        wall, data = run_once(system, argv, env, args.timeout)
        note = str(data.get("first_error") or note)
        numbers = {k: float(v) for k, v in data.items() if isinstance(v, (int, float))}
        samples.append({"wall": wall, **numbers})
    medians = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    return medians, note


def prefect_skip_reason(system: System | None, workload: str, n: int,
                        args: argparse.Namespace) -> str:
    """Why Prefect is not run for this workload/size, or '' to run it."""
    if system is None:
        return "n/a"
    if workload != "import" and not system.has_server:
        return "n/a (no server)"
    if args.n is None and n > PREFECT_MAX_N.get(workload, n):
        return "skipped (slow)"
    return ""


def fmt(value: float | str, unit: str) -> str:
    """Format a number with its unit, or pass an error text through."""
    return value if isinstance(value, str) else f"{value:.3g} {unit}".strip()


def ratio(m: Metric, h: float | str, p: float | str) -> str:
    """Prefect/Headwater for times (Headwater/Prefect for throughput): >1 means Headwater wins."""
    if isinstance(h, str) or isinstance(p, str) or m.key == "errors":
        return ""
    num, den = (h, p) if m.higher_better else (p, h)
    return f"{num / den:.1f}x" if den > 0 else "inf"


def target(m: Metric, h: float | str) -> str:
    """The target and whether Headwater meets it."""
    if m.target is None:
        return ""
    text = f"<= {m.target:g} {m.unit}" if m.unit else f"= {m.target:g}"
    return text if isinstance(h, str) else f"{text} {'ok' if h <= m.target else 'MISS'}"


def bench_workload(workload: str, n: int, systems: dict[str, System | None],
                   args: argparse.Namespace) -> list[dict[str, Any]]:
    """Run one workload at one size on every system; return its table rows."""
    values: dict[str, dict[str, float] | str] = {}
    notes: dict[str, str] = {}
    for name, system in systems.items():
        skip = prefect_skip_reason(system, workload, n, args) if name == "prefect" else ""
        if skip or system is None:
            values[name] = skip or "n/a"
            continue
        print(f"running {workload} {n or ''}".rstrip() + f" on {name}", file=sys.stderr, flush=True)
        try:
            values[name], notes[name] = measure(system, workload, n, args)
        except BenchError as exc:
            values[name] = f"error: {exc}"
    rows: list[dict[str, Any]] = []
    for m in METRICS[workload]:
        cell = {name: (v if isinstance(v, str) else v.get(m.key, "missing"))
                for name, v in values.items()}
        h, p = cell["headwater"], cell["prefect"]
        rows.append({"workload": m.label.format(n=n), "unit": m.unit, "headwater": h,
                     "prefect": p, "ratio": ratio(m, h, p), "target": target(m, h),
                     "notes": {k: v for k, v in notes.items() if v} if not rows else {}})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print rows as an aligned text table, then any error texts in full."""
    head = ["workload", "headwater", "prefect", "ratio (P/H)", "target"]
    body = [[str(r["workload"]), fmt(r["headwater"], r["unit"]), fmt(r["prefect"], r["unit"]),
             str(r["ratio"]), str(r["target"])] for r in rows]
    clip = [[c if len(c) <= 48 else c[:45] + "..." for c in line] for line in body]
    widths = [max(len(x) for x in col) for col in zip(head, *clip, strict=True)]
    for line in [head, ["-" * w for w in widths], *clip]:
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    seen: set[tuple[str, str]] = set()
    for r, line in zip(rows, body, strict=True):
        long = [(n, t) for n, t in [("headwater", line[1]), ("prefect", line[2])] if len(t) > 48]
        long += [(n, f"first error: {t}") for n, t in dict(r["notes"]).items()]
        for name, text in long:
            if (name, text) not in seen:
                seen.add((name, text))
                print(f"\n[{r['workload']} / {name}] {text}")


def health(url: str) -> bool:
    """True if the Prefect server at API `url` answers /health."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=3) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


Server = subprocess.Popen[bytes]


def start_prefect_server(python: str, url: str, home: str, log: Path) -> Server | None:
    """Start `prefect server start` for `url` unless one already answers; wait until healthy."""
    if health(url):
        print(f"Prefect server already running at {url}; using it", file=sys.stderr)
        return None
    port = urllib.parse.urlparse(url).port or 4200
    print(f"starting Prefect server on port {port} (log: {log})", file=sys.stderr)
    with log.open("w") as out:
        cmd = ["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        proc = subprocess.Popen(
            [python, *cmd],
            env={**os.environ, "PREFECT_HOME": home}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if health(url):
                return proc
            time.sleep(1)
        raise SystemExit(f"Prefect server did not become healthy; see {log}")
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc: Server | None) -> None:
    """Stop the server process group that this script started."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("workloads", nargs="*", metavar="WORKLOAD",
                    help=f"any of {', '.join(ALL)} (default: all)")
    ap.add_argument("--prefect-python", default=os.environ.get("BENCH_PREFECT_PYTHON"),
                    help="interpreter of a Prefect venv (default: env BENCH_PREFECT_PYTHON)")
    ap.add_argument("--prefect-api-url", default=os.environ.get("PREFECT_API_URL"),
                    help="running Prefect server API (default: env PREFECT_API_URL)")
    ap.add_argument("--start-prefect-server", action="store_true",
                    help="start (and stop at the end) a Prefect server for --prefect-api-url")
    ap.add_argument("--prefect-home", default=os.environ.get(
        "PREFECT_HOME", str(Path.home() / "prefect-home")), help="PREFECT_HOME for the server")
    ap.add_argument("--repeat", type=int, default=5, help="runs of import/hello (median)")
    ap.add_argument("--repeat-heavy", type=int, default=1,
                    help="runs of sequential/map/async-concurrent (median)")
    ap.add_argument("--n", type=int, help="one size for sized workloads, on both systems")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per subprocess")
    ap.add_argument("--json", type=Path, help="also save results here")
    args = ap.parse_args()
    unknown = set(args.workloads) - set(ALL)
    if unknown:
        ap.error(f"unknown workload(s) {sorted(unknown)}; choose from {ALL}")
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


def make_systems(args: argparse.Namespace, scratch: Path) -> dict[str, System | None]:
    """The Headwater system (embedded, no HEADWATER_* from outside) and Prefect if given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HEADWATER_", "PREFECT_"))}
    (scratch / "hw").mkdir()
    systems: dict[str, System | None] = {
        "headwater": System("headwater", sys.executable, base, scratch / "hw"), "prefect": None}
    if args.prefect_python:
        env = {**base, "PREFECT_HOME": args.prefect_home}
        if args.prefect_api_url:
            env["PREFECT_API_URL"] = args.prefect_api_url
        (scratch / "pf").mkdir()
        systems["prefect"] = System("prefect", args.prefect_python, env, scratch / "pf",
                                    has_server=bool(args.prefect_api_url))
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
    """Run the selected workloads and print (and optionally save) the table."""
    args = parse_args()
    byte_compile_headwater()
    scratch = Path(tempfile.mkdtemp(prefix="headwater-bench-"))
    server_log = Path(tempfile.gettempdir()) / "headwater-bench-prefect-server.log"
    server, rows = None, []
    try:
        if args.prefect_python and args.start_prefect_server:
            server = start_prefect_server(args.prefect_python, args.prefect_api_url,
                                          args.prefect_home, server_log)
        elif args.prefect_python and args.prefect_api_url and not health(args.prefect_api_url):
            print(f"warning: no healthy Prefect server at {args.prefect_api_url}", file=sys.stderr)
        systems = make_systems(args, scratch)
        for workload in args.workloads:
            for n in ([args.n] if args.n and workload in SIZES else SIZES.get(workload, [0])):
                rows.extend(bench_workload(workload, n, systems, args))
    finally:
        stop_server(server)
        shutil.rmtree(scratch, ignore_errors=True)
    meta = {"headwater": f"{version(sys.executable, 'headwater')} ({sys.executable})",
            "prefect": f"{version(args.prefect_python, 'prefect')} ({args.prefect_python}, "
                       f"API {args.prefect_api_url})" if args.prefect_python else "not given",
            "machine": f"{os.cpu_count()} cores, {platform.platform()}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "repeat": f"{args.repeat} (import, hello), {args.repeat_heavy} (others); medians"}
    print("\n" + "\n".join(f"{k + ':':10} {v}" for k, v in meta.items()))
    print("Headwater: embedded, fresh HEADWATER_HOME per workload, sources byte-compiled first "
          "(as pip does for Prefect); every workload (both systems) gets one untimed warm-up "
          "run first, so DB schema creation is not measured.\n"
          "Noisy machine: compare within one run and quote ratios (>1x = Headwater faster).\n")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        print(f"\nsaved {args.json}")


if __name__ == "__main__":
    main()
