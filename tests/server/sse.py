"""A server-sent-events reader over httpx, and a server process with `create_app` options."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from .helpers import free_port, server_env, serving


@dataclasses.dataclass(frozen=True)
class Event:
    """One event as received: `event:`, parsed `data:`, `id:`, and when it arrived."""

    event: str
    data: Any
    id: str | None
    received: float


class EventReader:
    """Reads `GET {base}/stream` in a thread; `next()` hands out events as they arrive.

    Comment lines (heartbeats) are kept in `comments`. The reader stops at the
    end of the stream or at `close()`.

    Example:
        >>> with EventReader(base, flow_run_id=run_id) as reader:
        ...     assert reader.next().event == "flow_run.state"
    """

    def __init__(self, base: str, headers: dict[str, str] | None = None, **params: str) -> None:
        self.url = f"{base}/stream"
        self.params = params
        self.headers = headers or {}
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.comments: list[tuple[str, float]] = []
        self.status_code: int | None = None
        self._connected = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=60))
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> EventReader:
        self._thread.start()
        # The server subscribes before it sends the first line (`retry:`).
        assert self._connected.wait(15), "the stream did not start"
        assert self.status_code == 200, self.status_code
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _read(self) -> None:
        try:
            with self._client.stream(
                "GET", self.url, params=self.params, headers=self.headers
            ) as response:
                self._response = response
                self.status_code = response.status_code
                if response.status_code != 200:
                    return
                fields: dict[str, str] = {}
                for line in response.iter_lines():
                    self._connected.set()
                    if line.startswith(":"):
                        self.comments.append((line, time.monotonic()))
                    elif line:
                        name, _, value = line.partition(":")
                        fields[name] = value[1:] if value.startswith(" ") else value
                    elif "event" in fields:
                        self.events.put(
                            Event(
                                fields["event"],
                                json.loads(fields["data"]),
                                fields.get("id"),
                                time.monotonic(),
                            )
                        )
                        fields = {}
                    else:
                        fields = {}
        except (httpx.HTTPError, RuntimeError, ValueError):
            pass  # closed by `close()`
        finally:
            self._connected.set()
            self.events.put(None)

    def next(self, timeout: float = 15.0) -> Event:
        """The next event; fails the test if none arrives within `timeout` seconds."""
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s") from None
        assert event is not None, "the stream ended"
        return event

    def until_end(self, timeout: float = 30.0) -> list[Event]:
        """Every event up to and including `end`."""
        events = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.1, deadline - time.monotonic()))
            events.append(event)
            if event.event == "end":
                return events

    def close(self) -> None:
        if self._response is not None:
            # Closing from this thread does not wake the reader blocked in recv();
            # shutting the socket down does (and the server sees the client leave).
            stream = self._response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._client.close()
        self._thread.join(10)


@contextlib.contextmanager
def app_server(
    home: Path, database_url: str, **options: Any
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A server process of `create_app(settings, **options)` under uvicorn; yields (API URL, it).

    For options `headwater server start` has no flag for (e.g. stream intervals).
    """
    port = free_port()
    code = (
        "import json, sys, uvicorn\n"
        "from headwater.server import create_app\n"
        "from headwater.settings import load_settings\n"
        "app = create_app(load_settings(), **json.loads(sys.argv[2]))\n"
        "uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[1]), log_level='warning',"
        " timeout_graceful_shutdown=5)\n"
    )
    argv = [sys.executable, "-c", code, str(port), json.dumps(options)]
    with serving(argv, port, home, server_env(home, database_url)) as running:
        yield running
