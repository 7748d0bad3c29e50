"""SQLAlchemy engines for the store: one factory, created on demand, never at import."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from headwater.exceptions import StoreError
from headwater.store.writer import check_supported


def normalize_url(url: str) -> str:
    """Map `postgresql://` to the psycopg 3 driver; leave other URLs alone."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def create_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for the store at `url`, with the per-dialect settings Headwater relies on."""
    url = normalize_url(url)
    check_supported(url)
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"Invalid database URL {url!r}; expected e.g. sqlite:////path/headwater.db or "
            "postgresql+psycopg://user@host:5432/db (HEADWATER_DATABASE_URL)."
        ) from None
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)
