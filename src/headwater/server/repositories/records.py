"""Writing recorder batches with the store writers' own statements, in the route's transaction.

The server writes exactly what the store writers write: insert-or-ignore for
flows, states and logs, upserts for runs guarded by the orchestration rules
(`core/rules.py`). On SQLite it runs the stdlib writer's statements on the
connection's driver connection (SQLAlchemy's per-row parameter processing
would triple the cost of a batch); on PostgreSQL the SQLAlchemy writer's,
which send each table's rows as a few set-based statements (one per 2,000
rows, see `store/sa_writer.py`), not one statement per row. Either way they
join the transaction the route opened.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from headwater.core.records import Batch
from headwater.store import sa_writer, sqlite_writer


def write_batch(conn: sa.Connection, batch: Batch) -> None:
    """Write every record of `batch` on `conn`, inside its current transaction."""
    if conn.dialect.name == "sqlite":
        driver = conn.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        sqlite_writer.write_rows(driver, batch)
    else:
        sa_writer.write_rows(conn, batch)
