"""Background services: loops that keep the store truthful, safe to run in several processes.

Each round of a service runs under a lease: a PostgreSQL advisory lock, or
on SQLite an exclusive `flock` on a file beside the database. A second
server or `headwater services start` finds the lease taken and skips the
round, and a lease held by a process that dies is released with it (no
row to expire).

A round runs, in order:

- crash detection: runs whose process on this host is gone become Crashed
  (as the CLI does on start);
- every function of `ROUND` (`server/scheduler.py`, `server/lifecycle.py`,
  concurrency lease expiry): each takes the database and the time, does its
  work in its own transactions and returns how many objects it changed and
  which flow runs changed, so that long-polling workers wake up.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from headwater.store.schema import display_url
from headwater.store.writer import open_writer, sqlite_path

if TYPE_CHECKING:
    from headwater.server.database import Database

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What one service did in a round: how many objects it changed, and which flow runs."""

    changed: int = 0
    flow_run_ids: frozenset[str] = frozenset()


#: A service: `service(db, now) -> Outcome`.
Service = Callable[["Database", float], Outcome]
#: Publishes flow-run changes to this process's notifier (SQLite servers).
Publish = Callable[[Iterable[str]], None]


def round_services() -> dict[str, Service]:
    """The services of a round after crash detection, by name, in the order they run."""
    from headwater.server import lifecycle, scheduler
    from headwater.server.repositories import concurrency, inputs

    return {
        "scheduler": scheduler.schedule_runs,
        "late_runs": lifecycle.mark_late_runs,
        "dead_workers": lifecycle.recover_runs_of_dead_workers,
        "cancellations": lifecycle.finish_cancellations,
        "leases": concurrency.expire_leases,
        "expired_pauses": inputs.fail_expired_pauses,
        "retention": prune_old_events,
    }


#: Overrides `settings.server_events_retention_days` for this process (see `set_retention_days`).
_retention_days: float | None = None
#: Rows deleted per transaction, so a large backlog never holds the write lock for long.
RETENTION_CHUNK = 5000


def set_retention_days(days: float | None) -> None:
    """Keep events `days` days in this process (None: `settings.server_events_retention_days`)."""
    global _retention_days
    _retention_days = days


def retention_days() -> float:
    """How many days events (and automation firings and actions) are kept."""
    if _retention_days is not None:
        return _retention_days
    from headwater.settings import get_settings

    return get_settings().server_events_retention_days


def prune_old_events(db: Database, now: float) -> Outcome:
    """Delete events older than the retention period, with their inbox rows, and
    automation firings and finished automation actions as old.

    A retention of 0 days or less keeps everything.
    """
    import sqlalchemy as sa

    from headwater.server.repositories.events import delete_older_than
    from headwater.store.tables import automation_action, automation_firing

    days = retention_days()
    if days <= 0:
        return Outcome()
    cutoff = now - days * 86400
    deleted = 0
    while True:
        with db.write() as conn:
            chunk = delete_older_than(conn, cutoff, limit=RETENTION_CHUNK)
        deleted += chunk
        if chunk < RETENTION_CHUNK:
            break
    with db.write() as conn:
        deleted += conn.execute(
            sa.delete(automation_firing).where(automation_firing.c.occurred < cutoff)
        ).rowcount
        deleted += conn.execute(
            sa.delete(automation_action).where(
                automation_action.c.updated < cutoff,
                automation_action.c.state.in_(("COMPLETED", "FAILED")),
            )
        ).rowcount
    return Outcome(changed=deleted)


def lease_key(url: str) -> int:
    """Key of the PostgreSQL advisory lock that is the services' lease on the store at `url`.

    Advisory locks are per database, not per schema: the key includes the URL,
    whose options carry the schema (`search_path`), so stores in two schemas of
    one database have two leases.
    """
    return zlib.crc32(b"headwater.server.services " + url.encode())


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
        held = conn.execute("SELECT pg_try_advisory_lock(%s)", (lease_key(url),)).fetchone()
        if not held or not held[0]:
            yield False
            return
        try:
            yield True
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lease_key(url),))


def run_once(
    url: str,
    *,
    database: Database | None = None,
    publish: Publish | None = None,
    now: float | None = None,
) -> dict[str, int] | None:
    """One round of every service: how many objects each changed (None: lease taken).

    `database` is reused if given (else opened for the round); `publish`
    tells this process's subscribers which flow runs changed (on PostgreSQL
    every replica also hears it through NOTIFY); `now` is for tests.
    """
    from headwater.engine.crash import detect_crashed_runs
    from headwater.server.database import Database

    with lease(url) as held:
        if not held:
            return None
        writer = open_writer(url)
        try:
            report = {"crashed": detect_crashed_runs(writer)}
        finally:
            writer.close()
        own = database is None
        db = database or Database(url, pool_size=2)
        try:
            changed: set[str] = set()
            for name, service in round_services().items():
                try:
                    outcome = service(db, time.time() if now is None else now)
                except Exception as exc:  # one broken service must not stop the others
                    logger.warning("Service %s failed: %s: %s", name, type(exc).__name__, exc)
                    continue
                report[name] = outcome.changed
                changed.update(outcome.flow_run_ids)
            if changed:
                wake(db, changed, publish)
        finally:
            if own:
                db.dispose()
        return report


def wake(db: Database, flow_run_ids: Iterable[str], publish: Publish | None = None) -> None:
    """Tell subscribers (long-polling workers, live streams) that these runs changed."""
    ids = sorted(flow_run_ids)
    if publish is not None:
        publish(ids)
    if db.dialect == "postgresql":
        import sqlalchemy as sa

        from headwater.server.notifications import CHANNEL, payloads

        with db.write() as conn:
            for payload in payloads(ids):
                conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))


class Services:
    """Runs `run_once` every `interval` seconds in a daemon thread until `stop()`."""

    def __init__(
        self,
        url: str,
        *,
        interval: float = 30.0,
        database: Database | None = None,
        publish: Publish | None = None,
    ) -> None:
        self.url = url
        self.interval = interval
        self.database = database
        self.publish = publish
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
                run_once(self.url, database=self.database, publish=self.publish)
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
