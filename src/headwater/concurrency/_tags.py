"""Tag concurrency limits: a task run tagged T holds one slot of the limit "tag:T" while it runs.

This sits on the task-run hot path, so it costs nothing when no tag limit
exists: task runs without tags never get here, and tagged ones look their
tags up in a per-process set of the active "tag:" limit names, read again at
most every `REFRESH_SECONDS`. In embedded mode the names are read with the
stdlib sqlite3 driver (or psycopg) straight from the store; FastAPI and
SQLAlchemy load only once a task run needs a slot.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from time import monotonic
from typing import TYPE_CHECKING

from headwater.exceptions import ConcurrencySlotAcquisitionError, HeadwaterError
from headwater.settings import Settings, get_settings

if TYPE_CHECKING:
    from headwater.concurrency._leases import Lease, Request
    from headwater.engine.runs import TaskRun

logger = logging.getLogger("headwater.concurrency")

PREFIX = "tag:"
#: How stale the set of tag limit names may be: a limit created now applies to task
#: runs that start at most this many seconds later.
REFRESH_SECONDS = 5.0
#: The lease of a task run's slots: renewed while it runs; if its process dies,
#: the slots come back this long after the last renewal.
LEASE_SECONDS = 300.0

#: (api_url, database url) -> (monotonic time read, names of active tag limits)
_names: dict[tuple[str | None, str], tuple[float, frozenset[str]]] = {}
_key_of: tuple[Settings, tuple[str | None, str]] | None = None
_lock = threading.Lock()

_SQL = "SELECT name FROM concurrency_limit WHERE active AND substr(name, 1, 4) = 'tag:'"


def hold(run: TaskRun) -> Lease | None:
    """Wait for and take a slot of each tag limit of `run`; None when none applies.

    Raises:
        ConcurrencySlotAcquisitionError: a limit refuses the run (0 slots), or the
            server could not be asked.
    """
    names = limited(run.tags)
    if not names:
        return None
    from headwater.concurrency import sync

    try:
        return sync._acquire(_request(run, names), None, None)
    except HeadwaterError as exc:
        raise _refused(run, exc) from None


async def hold_async(run: TaskRun) -> Lease | None:
    """`hold` for async task runs, without blocking the event loop."""
    names = limited(run.tags, read=False)
    if names is None:
        import asyncio

        names = await asyncio.to_thread(limited, run.tags)
    if not names:
        return None
    from headwater.concurrency import asyncio as concurrency_asyncio

    try:
        return await concurrency_asyncio._acquire(_request(run, names), None, None)
    except HeadwaterError as exc:
        raise _refused(run, exc) from None


def _request(run: TaskRun, names: list[str]) -> Request:
    from headwater.concurrency import _leases

    holder = _leases.holder_info()
    holder.update(task_run_id=run.hex_id, task_run_name=run.name)
    request = _leases.make_request(names, 1, _leases.CONCURRENCY, LEASE_SECONDS, False, holder)
    assert request is not None
    return request


def _refused(run: TaskRun, exc: HeadwaterError) -> ConcurrencySlotAcquisitionError:
    if isinstance(exc, ConcurrencySlotAcquisitionError):
        return exc
    return ConcurrencySlotAcquisitionError(
        f"Task run {run.name!r} could not take a slot of its tag concurrency limits: {exc}"
    )


def limited(tags: Iterable[str], *, read: bool = True) -> list[str] | None:
    """The names of the active limits "tag:<tag>" for these tags, sorted.

    With `read=False`, None when the cached names are stale (instead of reading them).
    """
    settings = get_settings()
    memo = _key_of
    if memo is not None and memo[0] is settings:
        key = memo[1]
    else:
        key = (settings.api_url, settings.effective_database_url)
        _remember_key(settings, key)
    cached = _names.get(key)
    if cached is None or monotonic() - cached[0] >= REFRESH_SECONDS:
        if not read:
            return None
        names = _refresh(key, settings)
    else:
        names = cached[1]
    if not names:
        return []
    return sorted({PREFIX + tag for tag in tags} & names)


def _remember_key(settings: Settings, key: tuple[str | None, str]) -> None:
    # Settings are read once per process (until reset); their key costs ~2 us to build.
    global _key_of
    _key_of = (settings, key)


def forget() -> None:
    """Drop the cached names, so the next tagged task run reads them again."""
    with _lock:
        _names.clear()


def _refresh(key: tuple[str | None, str], settings: Settings) -> frozenset[str]:
    with _lock:
        cached = _names.get(key)
        if cached is not None and monotonic() - cached[0] < REFRESH_SECONDS:
            return cached[1]  # another thread just read them
        try:
            names = _read(settings)
        except Exception as exc:  # tag limits are not enforced until they can be read
            names = cached[1] if cached is not None else frozenset()
            logger.warning(
                "Could not read the tag concurrency limits (%s: %s); task runs start without "
                "them for the next %g s.",
                type(exc).__name__,
                exc,
                REFRESH_SECONDS,
            )
        _names[key] = (monotonic(), names)
        return names


def _read(settings: Settings) -> frozenset[str]:
    """The names of the active tag limits, from the server or straight from the store."""
    if settings.api_url:
        return _read_from_server(settings)
    from headwater.store.writer import sqlite_path

    url = settings.effective_database_url
    path = sqlite_path(url)
    if path is None:
        import psycopg

        with psycopg.connect("postgresql://" + url.split("://", 1)[1]) as conn:
            try:
                return frozenset(str(row[0]) for row in conn.execute(_SQL))
            except psycopg.errors.UndefinedTable:  # no schema yet
                return frozenset()
    if not path.exists():
        return frozenset()
    import sqlite3

    store = sqlite3.connect(path, timeout=10)
    try:
        return frozenset(str(row[0]) for row in store.execute(_SQL))
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # a store nothing has written the schema of yet
            return frozenset()
        raise
    finally:
        store.close()


def _read_from_server(settings: Settings) -> frozenset[str]:
    from headwater.client.api import get_client

    client = get_client(settings)
    names: set[str] = set()
    offset = 0
    while True:
        page = client.request(
            "GET",
            "/concurrency_limits",
            params={"name_prefix": PREFIX, "active": True, "offset": offset, "limit": 1000},
        )
        names.update(item["name"] for item in page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return frozenset(names)
