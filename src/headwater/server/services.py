"""Background services: loops that keep the store truthful, safe to run in several processes.

Each round of a service runs under a lease: a PostgreSQL advisory lock, or
on SQLite an exclusive `flock` on a file beside the database. A second
server or `headwater services start` finds the lease taken and skips the
round, and a lease held by a process that dies is released with it (no
row to expire).

Services so far: crash detection (runs whose process on this host is gone
become Crashed, as the CLI does on start).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from headwater.store.schema import display_url
from headwater.store.writer import open_writer, sqlite_path

logger = logging.getLogger(__name__)

#: Key of the PostgreSQL advisory lock that is the services' lease.
LEASE_KEY = zlib.crc32(b"headwater.server.services")


@contextlib.contextmanager
def lease(url: str) -> Iterator[bool]:
    """Hold the services' lease on the store at `url` if it is free; yields whether held."""
    path = sqlite_path(url)
    if path is not None:
        lock_path = path.with_name(path.name + ".services.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            import fcntl

            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        return
    import psycopg

    with psycopg.connect("postgresql://" + url.split("://", 1)[1], autocommit=True) as conn:
        held = conn.execute("SELECT pg_try_advisory_lock(%s)", (LEASE_KEY,)).fetchone()
        if not held or not held[0]:
            yield False
            return
        try:
            yield True
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LEASE_KEY,))


def run_once(url: str) -> int | None:
    """One round of every service; how many runs crash detection marked (None: lease taken)."""
    from headwater.engine.crash import detect_crashed_runs

    with lease(url) as held:
        if not held:
            return None
        writer = open_writer(url)
        try:
            return detect_crashed_runs(writer)
        finally:
            writer.close()


class Services:
    """Runs `run_once` every `interval` seconds in a daemon thread until `stop()`."""

    def __init__(self, url: str, *, interval: float = 30.0) -> None:
        self.url = url
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="headwater-services", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Loop until stopped; a failing round is logged, and the next one tried."""
        logger.info("Services running on %s every %ss", display_url(self.url), self.interval)
        while not self._stop.is_set():
            try:
                run_once(self.url)
            except Exception as exc:  # a broken round must not end the loop
                logger.warning("A services round failed: %s: %s", type(exc).__name__, exc)
            self._stop.wait(self.interval)

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Services:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
