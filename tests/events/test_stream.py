"""`GET /api/events/stream`: matching events arrive live, others do not."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from tests.server.helpers import running_server


def _read(base: str, params: dict[str, Any], out: queue.Queue[Any], stop: threading.Event) -> None:
    # The server stops at the end of the test, mid-stream.
    with contextlib.suppress(httpx.HTTPError):
        _follow(base, params, out, stop)


def _follow(
    base: str, params: dict[str, Any], out: queue.Queue[Any], stop: threading.Event
) -> None:
    with (
        httpx.Client(timeout=30) as http,
        http.stream("GET", f"{base}/events/stream", params=params) as response,
    ):
        out.put(response.status_code)
        for line in response.iter_lines():
            if line.startswith("data: "):
                out.put(json.loads(line[len("data: ") :]))
            if stop.is_set():
                return


def _next(out: queue.Queue[Any], timeout: float = 10) -> Any:
    return out.get(timeout=timeout)


def test_the_stream_sends_matching_events_as_they_arrive(database_url: str, tmp_path: Path) -> None:
    with running_server(tmp_path / "home", database_url) as (base, _process):
        old = {"event": "customer.old", "resource": {"headwater.resource.id": "c.0"}}
        assert httpx.post(f"{base}/events", json=[old]).status_code == 200
        out: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        reader = threading.Thread(
            target=_read, args=(base, {"event": "customer.*"}, out, stop), daemon=True
        )
        reader.start()
        assert _next(out) == 200
        time.sleep(0.3)  # the stream has started; what comes now is new
        batch = [
            {"event": "invoice.paid", "resource": {"headwater.resource.id": "i.1"}},
            {"event": "customer.signup", "resource": {"headwater.resource.id": "c.1"}},
        ]
        started = time.monotonic()
        assert httpx.post(f"{base}/events", json=batch).status_code == 200
        first = _next(out)
        assert first["event"] == "customer.signup"
        assert time.monotonic() - started < 3
        httpx.post(
            f"{base}/events",
            json=[{"event": "customer.churn", "resource": {"headwater.resource.id": "c.1"}}],
        )
        assert _next(out)["event"] == "customer.churn"
        stop.set()
        assert out.empty()

        bad = httpx.get(f"{base}/events/stream", params={"event": "a*b"})
        assert bad.status_code == 422
        assert "event" in bad.text
