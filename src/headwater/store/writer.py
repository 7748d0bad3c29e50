"""The contract every store writer meets, and the factory that picks one from a URL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from headwater.core.records import Batch
from headwater.exceptions import StoreError


class Writer(Protocol):
    """Writes recorder batches to a store. One batch is one transaction."""

    def open(self) -> None:
        """Connect, and create or upgrade the schema if it is not at head."""

    def write(self, batch: Batch) -> None:
        """Write every record of `batch` atomically; run rows are upserts by id."""

    def active_runs(self, host: str) -> list[tuple[uuid.UUID, str]]:
        """(flow_run id, process tag) of Pending/Running/Cancelling runs owned by `host`,
        except runs claimed by a worker (the worker, or dead-worker recovery, settles them)."""

    def mark_crashed(
        self, flow_run_ids: Sequence[uuid.UUID | str], message: str, now: float
    ) -> None:
        """Move these flow runs, and their unfinished task runs, to Crashed (with history)."""

    def close(self) -> None:
        """Release connections."""


def sqlite_path(url: str) -> Path | None:
    """The file of a `sqlite:///...` URL, or None for any other database."""
    for prefix in ("sqlite+pysqlite:///", "sqlite:///"):
        if url.startswith(prefix):
            return Path(url[len(prefix) :].split("?", 1)[0])
    return None


SUPPORTED_SCHEMES = ("sqlite", "postgresql", "postgres")


def check_supported(url: str) -> None:
    """Raise `StoreError` unless `url` names a SQLite file or a PostgreSQL database."""
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme not in SUPPORTED_SCHEMES:
        raise StoreError(
            f"Unsupported database URL {url.split('@')[-1]!r}: Headwater stores runs in SQLite "
            "(sqlite:////path/headwater.db) or PostgreSQL "
            "(postgresql+psycopg://user@host:5432/db); fix HEADWATER_DATABASE_URL."
        )


def open_writer(url: str) -> Writer:
    """The embedded stdlib writer for SQLite files, the SQLAlchemy writer otherwise."""
    check_supported(url)
    path = sqlite_path(url)
    if path is not None:
        from headwater.store.sqlite_writer import SQLiteWriter

        return SQLiteWriter(path)
    from headwater.store.sa_writer import SAWriter

    return SAWriter(url)
