"""The server's database: one engine, and the transactions routes open on it.

Routes own their unit of work: `with db.write() as conn:` commits when the
block ends (or rolls back on an error), `with db.read() as conn:` reads one
consistent snapshot. Repositories take that connection and never commit.

SQLite allows one writer at a time. Write transactions start with
`BEGIN IMMEDIATE` (so a transaction that reads, then writes, cannot fail
half way on a lock upgrade) and, within this process, queue on a lock rather
than in SQLite's busy-wait loop, which sleeps in coarse steps.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from headwater.store import schema
from headwater.store.engine import create_engine

_WRITE = "headwater_write"


def _json_serializer(value: Any) -> str:
    # As the store writers: a value JSON cannot represent is stored as its repr.
    return json.dumps(value, default=repr)


class Database:
    """The store at `url`, with read and write transactions.

    Example:
        >>> db = Database("sqlite:////tmp/headwater.db")
        >>> with db.write() as conn:
        ...     conn.execute(...)
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.display_url = schema.display_url(url)
        options: dict[str, Any] = {"json_serializer": _json_serializer}
        if not url.startswith("sqlite"):
            options.update(pool_size=pool_size, max_overflow=2 * pool_size)
        self.engine = create_engine(url, **options)
        self.dialect = self.engine.dialect.name
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )
        if self.dialect == "sqlite":
            _sqlite_explicit_transactions(self.engine)

    def ensure_schema(self) -> None:
        """Create or upgrade the schema to the revision this Headwater knows."""
        schema.ensure_schema(self.url)

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection for reading; nothing it does is committed."""
        with self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A connection in a transaction that commits when the block ends without error."""
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    def revision(self) -> str | None:
        """The schema revision the database is at (None: no schema); raises if unreachable."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        versions = sorted((str(row[0]) for row in rows), key=lambda v: (len(v), v))
        return versions[-1] if versions else None

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_explicit_transactions(engine: sa.Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, begin transactions (SQLAlchemy's recipe)."""

    @sa.event.listens_for(engine, "connect")
    def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
