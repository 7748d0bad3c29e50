"""Servers for the benchmark: a Headwater server (SQLite or PostgreSQL) and Prefect's.

Each is started as a subprocess in its own process group, waited for through
`GET /api/health`, and stopped (the whole group) at the end. The harness
reads their resident memory and CPU time from /proc (Linux), summed over the
process tree (uvicorn's worker processes with `--workers N`), and asks a
Headwater server through its API how many runs it recorded.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

Server = subprocess.Popen[bytes]
_TICKS = os.sysconf("SC_CLK_TCK")


def health(api_url: str) -> bool:
    """True if the server at API `api_url` answers /health."""
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=3) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def start_process(argv: list[str], env: dict[str, str], log: Path, api_url: str,
                  what: str, wait_s: float = 180) -> Server:
    """Start `argv` (a server) with output to `log`; return once `api_url` is healthy."""
    with log.open("w") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and proc.poll() is None:
            if health(api_url):
                return proc
            time.sleep(0.1)
        raise SystemExit(f"{what} did not become healthy at {api_url}; see {log}")
    except BaseException:
        stop_process(proc)
        raise


def stop_process(proc: Server | None) -> None:
    """Stop a server process group that this script started."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def free_port() -> int:
    """A TCP port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- /proc: memory and CPU of a process tree ------------------------------------------

def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    tree, pids, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(tree.get(current, []))
    return pids


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of `pid` and its descendants, in MB (10^6 bytes)."""
    total_kb = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb * 1024 / 1e6


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes (those still alive)."""
    ticks = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / _TICKS


def postgres_pids() -> list[int]:
    """Every PostgreSQL server process on this machine (backends of all databases)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


# -- Headwater server -----------------------------------------------------------------

@dataclass(frozen=True)
class Counts:
    """Runs the server holds: (all, Completed) for flow runs and for task runs."""
    flow_runs: int
    flow_runs_completed: int
    task_runs: int
    task_runs_completed: int


def libpq_url(url: str, database: str | None = None) -> str:
    """`url` without the SQLAlchemy driver suffix, optionally on another database."""
    scheme, rest = url.split("://", 1)
    parsed = urllib.parse.urlsplit(f"{scheme.split('+')[0]}://{rest}")
    if database is not None:
        parsed = parsed._replace(path=f"/{database}")
    return urllib.parse.urlunsplit(parsed)


def recreate_database(url: str, *, drop_only: bool = False) -> None:
    """Drop the PostgreSQL database of `url` (closing its sessions) and create it empty."""
    import psycopg  # the project's dependency, in the harness's interpreter

    name = urllib.parse.urlsplit(libpq_url(url)).path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to recreate database {name!r} of {url}: use a plain name")
    with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


class HeadwaterServer:
    """`headwater server start` on a free port with a fresh HEADWATER_HOME (and database).

    Example:
        with HeadwaterServer("sqlite", scratch, base_env) as server:
            env["HEADWATER_API_URL"] = server.api_url
    """

    def __init__(self, database: str, scratch: Path, base_env: dict[str, str], *,
                 postgres_url: str = "", workers: int = 1) -> None:
        self.database = database
        self.postgres_url = postgres_url
        self.workers = workers
        self.home = Path(tempfile.mkdtemp(prefix=f"server-{database}-", dir=scratch))
        self.log = Path(tempfile.gettempdir()) / f"headwater-bench-server-{database}.log"
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.env = {**base_env, "HEADWATER_HOME": str(self.home)}
        if database == "postgresql":
            self.env["HEADWATER_DATABASE_URL"] = postgres_url
        self.proc: Server | None = None
        self.idle_rss_mb = 0.0

    def __enter__(self) -> HeadwaterServer:
        if self.database == "postgresql":
            recreate_database(self.postgres_url)
        exe = Path(sys.executable).parent / "headwater"
        command = [str(exe)] if exe.exists() else [shutil.which("headwater") or "headwater"]
        print(f"starting Headwater server ({self.database}) on port {self.port} "
              f"(log: {self.log})", file=sys.stderr, flush=True)
        self.proc = start_process(
            [*command, "server", "start", "--port", str(self.port),
             "--workers", str(self.workers)],
            self.env, self.log, self.api_url, f"Headwater server ({self.database})", 60)
        if self.workers > 1:
            time.sleep(2)  # let every worker process start before memory is read
        self.idle_rss_mb = self.rss_mb()
        return self

    def __exit__(self, *_exc: object) -> None:
        stop_process(self.proc)
        if self.database == "postgresql":
            try:
                recreate_database(self.postgres_url, drop_only=True)
            except Exception as exc:  # cleanup only: report, don't hide the real result
                print(f"warning: could not drop the benchmark database: {exc}", file=sys.stderr)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def cpu_pids(self) -> list[int]:
        """The processes whose CPU counts as the server's (the DB's too on PostgreSQL)."""
        return process_tree(self.pid)

    def counts(self) -> Counts:
        """Flow runs and task runs the server holds, through its API."""
        def get(resource: str) -> tuple[int, int]:
            url = f"{self.api_url}/{resource}/counts"
            with urllib.request.urlopen(url, timeout=30) as resp:
                body = json.load(resp)
            return int(body["total"]), int(body["counts"].get("COMPLETED", 0))

        return Counts(*get("flow_runs"), *get("task_runs"))


# -- Prefect server -------------------------------------------------------------------

def start_prefect_server(python: str, url: str, home: str) -> Server | None:
    """Start `prefect server start` for `url` unless one already answers; wait until healthy."""
    if health(url):
        print(f"Prefect server already running at {url}; using it (its memory is not "
              "reported)", file=sys.stderr)
        return None
    port = urllib.parse.urlparse(url).port or 4200
    log = Path(tempfile.gettempdir()) / "headwater-bench-prefect-server.log"
    print(f"starting Prefect server on port {port} (log: {log})", file=sys.stderr, flush=True)
    argv = [python, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
            str(port)]
    return start_process(argv, {**os.environ, "PREFECT_HOME": home}, log, url, "Prefect server")
