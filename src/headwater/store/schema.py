"""Schema version check: one cheap read; alembic is imported only when an upgrade is due.

`ensure_schema` runs on the SDK's hot path (the first write of a process), so
when the store is already at `HEAD_REVISION` it costs one `SELECT` through the
stdlib `sqlite3` driver (or psycopg for PostgreSQL) and imports neither
SQLAlchemy nor alembic.

Revision ids are zero-padded sequence numbers ("0001", "0002", ...), so a
store written by a later Headwater is recognised without loading the
migration tree: its revision compares greater than `HEAD_REVISION`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import sys
import threading
import zlib
from collections.abc import Iterator
from typing import Any

from headwater.exceptions import StoreError
from headwater.store.writer import sqlite_path

logger = logging.getLogger(__name__)

#: The newest migration this Headwater knows (store/migrations/versions).
HEAD_REVISION = "0004"

#: Key of the PostgreSQL advisory lock that serialises Headwater migrations.
ADVISORY_LOCK_KEY = zlib.crc32(b"headwater.store.migrate")

_ensured: set[str] = set()
_ensure_lock = threading.Lock()


class _HeldLock:
    """A process's hold on one store's migration lock.

    Re-entrant because `ensure_schema` holds it while calling `migrate.upgrade`,
    which takes it too: flock() on a second descriptor of the same file would
    block the process on itself.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.depth = 0


_held: dict[str, _HeldLock] = {}
_held_guard = threading.Lock()


def ensure_schema(url: str) -> None:
    """Create or upgrade the store at `url` to `HEAD_REVISION`, once per process.

    Raises:
        StoreError: the store was written by a later Headwater, or it cannot
            be read or migrated.
    """
    if url in _ensured:
        return
    with _ensure_lock:
        if url in _ensured:
            return
        found = read_revision(url)
        if found != HEAD_REVISION:
            check_revision(url, found)
            with migration_lock(url):
                # Another process may have migrated while we waited for the lock.
                found = read_revision(url)
                check_revision(url, found)
                if found != HEAD_REVISION:
                    from headwater.store import migrate

                    logger.info(
                        "Upgrading the store at %s from revision %s to %s",
                        display_url(url),
                        found,
                        HEAD_REVISION,
                    )
                    migrate.upgrade(url, HEAD_REVISION)
        _ensured.add(url)


def forget(url: str | None = None) -> None:
    """Drop the per-process "already at head" memo for `url` (or for every URL).

    `migrate.downgrade` and `migrate.reset` call this so that the next
    `ensure_schema` reads the version again.
    """
    with _ensure_lock:
        if url is None:
            _ensured.clear()
        else:
            _ensured.discard(url)


def check_revision(url: str, found: str | None) -> None:
    """Raise `StoreError` if `found` is not a revision this Headwater can upgrade from."""
    if found is None or found == HEAD_REVISION:
        return
    if not found.isdigit():
        raise StoreError(
            f"The database at {display_url(url)} has alembic revision {found!r}, which is "
            f"not a Headwater schema revision (this Headwater's is {HEAD_REVISION!r}). "
            "Point HEADWATER_DATABASE_URL at a database or schema of its own."
        )
    if int(found) > int(HEAD_REVISION):
        raise StoreError(
            f"The store at {display_url(url)} is at schema revision {found!r}, newer than "
            f"revision {HEAD_REVISION!r} that this Headwater knows: it was written by a "
            "later Headwater version. Upgrade Headwater (pip install -U headwater) to use it."
        )


def read_revision(url: str) -> str | None:
    """The alembic revision of the store at `url`, or None if it has no schema yet."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, timeout=30)
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot open the store at {path}: {exc}") from exc
        try:
            return _newest(conn.execute("SELECT version_num FROM alembic_version").fetchall())
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc):
                return None
            raise StoreError(
                f"Cannot read the schema version of the store at {path}: {exc}. "
                "Is it a Headwater database? Set HEADWATER_DATABASE_URL or HEADWATER_HOME "
                "to use another one."
            ) from exc
        finally:
            conn.close()
    if _backend(url) == "postgresql":
        import psycopg

        with _pg_connect(url) as conn:
            try:
                rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            except psycopg.errors.UndefinedTable:
                return None
            except psycopg.Error as exc:
                raise StoreError(
                    f"Cannot read the schema version of the store at {display_url(url)}: {exc}"
                ) from exc
            return _newest(rows)
    # Any other database (e.g. in-memory SQLite) goes through SQLAlchemy.
    from headwater.store import migrate

    return migrate.current_revision(url)


@contextlib.contextmanager
def migration_lock(url: str) -> Iterator[None]:
    """Hold the lock that serialises migrations of the store at `url` across processes.

    SQLite: `flock` on "<db file>.migrate.lock"; PostgreSQL: a session advisory
    lock. Re-entrant within a thread.
    """
    with _held_guard:
        held = _held.setdefault(url, _HeldLock())
    with held.lock:
        held.depth += 1
        try:
            if held.depth > 1:
                yield
            else:
                with _process_lock(url):
                    yield
        finally:
            held.depth -= 1


@contextlib.contextmanager
def _process_lock(url: str) -> Iterator[None]:
    path = sqlite_path(url)
    if path is not None:
        lock_path = path.with_name(path.name + ".migrate.lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        # The lock file stays: deleting it would let a third process lock a new
        # inode while a second one still holds the old one.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_file(fd)
            try:
                yield
            finally:
                _unlock_file(fd)
        finally:
            os.close(fd)
    elif _backend(url) == "postgresql":
        with _pg_connect(url) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    else:
        yield


if sys.platform == "win32":
    import msvcrt
    import time

    def _lock_file(fd: int) -> None:
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                time.sleep(0.05)

    def _unlock_file(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_file(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def display_url(url: str) -> str:
    """`url` with any password replaced by ***, for messages and logs."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _backend(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    return "postgresql" if scheme in ("postgresql", "postgres") else scheme


def _pg_connect(url: str) -> Any:
    """A psycopg autocommit connection from an SQLAlchemy-style URL."""
    import psycopg

    conninfo = "postgresql://" + url.split("://", 1)[1]
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=30)
    except psycopg.Error as exc:
        raise StoreError(f"Cannot connect to the store at {display_url(url)}: {exc}") from exc


def _newest(rows: list[Any]) -> str | None:
    # A linear tree leaves one row; should there be several, the newest wins.
    versions = sorted((str(row[0]) for row in rows), key=lambda v: (len(v), v))
    return versions[-1] if versions else None
