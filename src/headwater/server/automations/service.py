"""The automations service: evaluates triggers over the event inbox, records firings, and
runs the actions of firings.

One process at a time evaluates (it holds the automations lease for as long
as it runs: an exclusive `flock` on a file beside a SQLite store, a
PostgreSQL advisory lock on its own connection); another waits as a
standby and takes over within about a second when the holder stops or dies.

A batch of events is applied in one transaction that deletes their inbox
entries, updates the buckets and inserts firings and actions: if the
process dies before the commit, the events are still in the inbox and are
evaluated again, and nothing fires twice. Only after the commit are the
actions run (`actions.run_pending_actions`).

`nudge()` wakes this process's service at once after events were written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from headwater.store.writer import sqlite_path

if TYPE_CHECKING:
    from headwater.server.automations.state import LoadedAutomation
    from headwater.server.automations.triggers import Engine, Firing
    from headwater.server.database import Database
    from headwater.server.services import Publish
    from headwater.settings import Settings

logger = logging.getLogger(__name__)

_nudged = threading.Event()

#: The most inbox events applied in one transaction.
BATCH_SIZE = 500


def nudge() -> None:
    """Wake this process's automations service: events were just written."""
    _nudged.set()


def lease_key(url: str) -> int:
    """Key of the PostgreSQL advisory lock that is the automations lease on the store."""
    return zlib.crc32(b"headwater.server.automations " + url.encode())


class Lease:
    """The automations lease on the store at `url`, held from `acquire()` until `release()`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._fd: int | None = None
        self._conn: Any = None

    def acquire(self) -> bool:
        """Take the lease if it is free; whether it is held now."""
        if self.held:
            return True
        path = sqlite_path(self.url)
        if path is not None:
            import fcntl

            lock_path = path.with_name(path.name + ".automations.lock")
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        import psycopg

        conn = psycopg.connect("postgresql://" + self.url.split("://", 1)[1], autocommit=True)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (lease_key(self.url),)).fetchone()
        if not row or not row[0]:
            conn.close()
            return False
        self._conn = conn
        return True

    @property
    def held(self) -> bool:
        return self._fd is not None or self._conn is not None

    def alive(self) -> bool:
        """Whether the lease is still held (its PostgreSQL session may have been lost)."""
        if self._conn is None:
            return self._fd is not None
        try:
            self._conn.execute("SELECT 1")
        except Exception:
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # closing the session releases its advisory locks
            self._conn = None


class AutomationsService:
    """Evaluates automations in a daemon thread until `stop()`.

    Args:
        url: the store.
        database: reused if given (the server's), else opened by the service.
        publish: tells this process's subscribers which flow runs changed (given
            to the actions).
        poll_interval: the longest wait for new events when nothing nudges
            (default: settings.server_automations_poll_interval).
        settings: what the actions read (allowed hosts, the UI's address, the secret
            key); default: the process's settings.
        tick_interval: seconds between two checks of proactive windows.
        metric_interval: seconds between two evaluations of metric triggers.
        standby_interval: seconds between two tries of a standby to take the lease.
        run_actions: run the actions of firings (tests turn it off to see them PENDING).
        clock: the time (tests).
    """

    def __init__(
        self,
        url: str,
        *,
        database: Database | None = None,
        publish: Publish | None = None,
        poll_interval: float | None = None,
        settings: Settings | None = None,
        tick_interval: float = 1.0,
        metric_interval: float = 5.0,
        standby_interval: float = 0.5,
        run_actions: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if settings is None:
            from headwater.settings import get_settings

            settings = get_settings()
        if poll_interval is None:
            poll_interval = settings.server_automations_poll_interval
        self.settings = settings
        self.url = url
        self.database = database
        self.publish = publish
        self.poll_interval = poll_interval
        self.tick_interval = tick_interval
        self.metric_interval = metric_interval
        self.standby_interval = standby_interval
        self.run_actions = run_actions
        self.clock = clock
        self.lease = Lease(url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fingerprint: tuple[int, float | None] | None = None
        self._engine: Engine | None = None
        self._automations: dict[Any, LoadedAutomation] = {}
        self._last_tick = 0.0
        self._last_metric = 0.0
        self._lease_checked = 0.0

    # -- running ----------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name="headwater-automations", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        _nudged.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> AutomationsService:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def run(self) -> None:
        """Wait for the lease, then evaluate until stopped (errors are logged, not raised)."""
        from headwater.server.database import Database

        own = self.database is None
        db = self.database or Database(self.url, pool_size=2)
        try:
            while not self._stop.is_set():
                if not self._acquire():
                    self._stop.wait(self.standby_interval)
                    continue
                try:
                    busy = self.iterate(db)
                except Exception as exc:  # a broken round must not end the service
                    logger.warning("Automations round failed: %s: %s", type(exc).__name__, exc)
                    busy = False
                if not busy:
                    _nudged.wait(self.poll_interval)
                    _nudged.clear()
        finally:
            self.lease.release()
            if own:
                db.dispose()

    def _acquire(self) -> bool:
        if self.lease.held:
            now = time.monotonic()
            if now - self._lease_checked < 1.0:
                return True
            self._lease_checked = now
            return self.lease.alive()
        try:
            taken = self.lease.acquire()
        except Exception as exc:
            logger.warning("Automations lease unavailable: %s: %s", type(exc).__name__, exc)
            return False
        if taken:
            logger.info("Automations service active")
            self._fingerprint = None  # reload: another process may have changed things
        return taken

    # -- one round --------------------------------------------------------------------------

    def iterate(self, db: Database) -> bool:
        """Apply one batch of inbox events and, when due, settle windows and metrics; run
        pending actions. Whether there may be more to do at once."""
        from headwater.server.automations import actions, state

        now = self.clock()
        fired = 0
        busy = False
        with db.read() as conn:
            pending = state.has_inbox(conn)
            self._reload(conn)
        if pending:
            with db.write() as conn:
                self._reload(conn)
                try:
                    events = state.take_inbox(conn, BATCH_SIZE)
                except state.InboxTaken as exc:
                    logger.info("Automations: %s; reading the inbox again", exc)
                    raise
                if events:
                    assert self._engine is not None
                    store = state.SqlBuckets(conn)
                    firings = self._engine.evaluate(store, events, now)
                    store.flush(now)
                    fired += self._record(conn, firings, now)
                busy = len(events) >= BATCH_SIZE or fired > 0
        ticked = now - self._last_tick >= self.tick_interval
        if ticked:
            self._last_tick = now
            with_metrics = now - self._last_metric >= self.metric_interval
            if with_metrics:
                self._last_metric = now
            fired += self._tick(db, now, with_metrics)
        if self.run_actions and (fired or ticked):  # at once after firings; each tick for retries
            try:
                actions.run_pending_actions(
                    db, self.clock(), publish=self.publish, settings=self.settings
                )
            except Exception as exc:
                logger.warning("Automation actions failed: %s: %s", type(exc).__name__, exc)
        return busy

    def _tick(self, db: Database, now: float, with_metrics: bool) -> int:
        from headwater.server.automations import state

        assert self._engine is not None
        if not self._engine.automations:
            return 0
        with db.write() as conn:
            self._reload(conn)
            store = state.SqlBuckets(conn)

            def measure(trigger: Any, at: float) -> float | None:
                return state.measure(conn, trigger, at)

            firings = self._engine.tick(store, now, measure if with_metrics else None)
            store.flush(now)
            return self._record(conn, firings, now)

    def _reload(self, conn: Any) -> None:
        from headwater.server.automations import state
        from headwater.server.automations.triggers import Engine

        current = state.fingerprint(conn)
        if current == self._fingerprint and self._engine is not None:
            return
        loaded, broken = state.load_enabled(conn)
        for message in broken:
            logger.warning("Automations: %s; it is skipped until fixed", message)
        self._automations = {item.spec.id: item for item in loaded}
        self._engine = Engine(item.spec for item in loaded)
        self._fingerprint = current

    def _record(self, conn: Any, firings: list[Firing], now: float) -> int:
        from headwater.server.automations import state

        for firing in firings:
            owner = self._automations.get(firing.automation_id)
            if owner is not None:
                state.record_firing(conn, firing, owner, now)
        return len(firings)


@contextlib.contextmanager
def running(url: str, **options: Any) -> Iterator[AutomationsService]:
    """An `AutomationsService` running for the duration of the block."""
    service = AutomationsService(url, **options)
    service.start()
    try:
        yield service
    finally:
        service.stop()
