"""A stand-in for a Headwater server's `POST /api/records`, for client tests.

Real HTTP on loopback (the stdlib's threading server, HTTP/1.1 keep-alive),
real rows in a SQLite store written by `SQLiteWriter`. It checks the wire
contract as the real server does (keys exactly the columns, gzip bodies) and
can be told to misbehave: scripted answers (503, 429 with Retry-After, 401),
a delay per request, a rejection rule, a size limit answered with 413.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gzip
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from headwater.core.records import Batch
from headwater.store import columns
from headwater.store.sqlite_writer import SQLiteWriter

COLUMNS = {
    "flows": columns.FLOW,
    "flow_runs": columns.FLOW_RUN,
    "task_runs": columns.TASK_RUN,
    "states": columns.STATE,
    "logs": columns.LOG,
}


@dataclasses.dataclass
class Request:
    at: float  # time.monotonic()
    status: int
    rows: int
    gzip: bool
    headers: dict[str, str]
    peer: tuple[str, int]


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: str = '{"detail": "scripted failure"}'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class FakeServer:
    """`with FakeServer(db) as server:` serves `server.api_url` until the block ends."""

    def __init__(self, store: Path, port: int | None = None) -> None:
        self.store = store
        self.port = port or free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.requests: list[Request] = []
        self.script: collections.deque[Answer] = collections.deque()
        self.reject: Callable[[dict[str, Any]], str | None] | None = None
        self.max_rows: int | None = None
        self.delay = 0.0
        #: how many times each state id arrived in an accepted request
        self.state_ids: collections.Counter[str] = collections.Counter()
        self._writer = SQLiteWriter(store)
        self._writer.open()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._httpd: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop like a killed server: the port closes and open connections drop."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.clear()

    def count(self, table: str, where: str = "1=1") -> int:
        with sqlite3.connect(self.store) as conn:
            (value,) = conn.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()
            return int(value)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.store) as conn:
            return list(conn.execute(sql))

    def accepted(self) -> list[Request]:
        return [r for r in self.requests if r.status == 200]

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            if self.script:
                answer = self.script.popleft()
                return answer.status, answer.headers, answer.body
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        payload = json.loads(body)
        problem = _contract_problem(payload)
        if problem is None and self.reject is not None:
            problem = self.reject(payload)
        if problem is not None:
            return 422, {}, json.dumps({"detail": problem})
        if self.max_rows is not None and sum(map(len, payload.values())) > self.max_rows:
            return 413, {}, json.dumps({"detail": f"more than {self.max_rows} rows"})
        batch = Batch(
            flows={r["id"]: _row("flows", r) for r in payload.get("flows", [])},
            flow_runs={r["id"]: _row("flow_runs", r) for r in payload.get("flow_runs", [])},
            task_runs={r["id"]: _row("task_runs", r) for r in payload.get("task_runs", [])},
            states=[_row("states", r) for r in payload.get("states", [])],
            logs=[_row("logs", r) for r in payload.get("logs", [])],
        )
        with self._lock:
            self._writer.write(batch)
            self.state_ids.update(r["id"] for r in payload.get("states", []))
        return 200, {}, json.dumps({table: len(rows) for table, rows in payload.items()})


def _row(table: str, item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(item[name] for name in COLUMNS[table])


def _contract_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict) or not set(payload) <= set(COLUMNS):
        return f"unexpected body keys {sorted(payload) if isinstance(payload, dict) else payload}"
    for table, rows in payload.items():
        for item in rows:
            if set(item) != set(COLUMNS[table]):
                return f"{table}: keys {sorted(item)} are not the columns {COLUMNS[table]}"
    return None


class _Handler(BaseHTTPRequestHandler):
    owner: FakeServer
    protocol_version = "HTTP/1.1"  # keep-alive, like uvicorn
    # Headers and body go out in two writes: without this, Nagle's algorithm
    # and the client's delayed ACK add 40 ms to every answer.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        with self.owner._lock:
            self.owner._connections.add(self.connection)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.path != "/api/records":
            status, extra, text = 404, {}, '{"detail": "Not Found"}'
        else:
            status, extra, text = self.owner.handle(body, headers)
        rows = 0
        if status == 200:
            rows = sum(json.loads(text).values())
        self.owner.requests.append(
            Request(
                time.monotonic(),
                status,
                rows,
                headers.get("content-encoding") == "gzip",
                headers,
                self.client_address,
            )
        )
        data = text.encode()
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
