"""Schema migrations of the store: upgrade, downgrade, reset, and the current revision.

These back `headwater database upgrade|downgrade|reset`; the SDK reaches them
only through `schema.ensure_schema` when a store is behind. Every command runs
in one transaction (on SQLite too) while holding `schema.migration_lock`, so
concurrent processes never migrate the same store at once and a failed
migration leaves the store at its previous revision.

Example:
    >>> from headwater.store import migrate
    >>> migrate.upgrade("sqlite:////tmp/headwater.db")
    >>> migrate.current_revision("sqlite:////tmp/headwater.db")
    '0001'
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError

from headwater.exceptions import StoreError
from headwater.store import schema, tables
from headwater.store.engine import create_engine
from headwater.store.writer import sqlite_path

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def config() -> Config:
    """An alembic Config for the store's migration tree, built without an ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def engine(url: str) -> sa.Engine:
    """An engine to migrate `url` with; on SQLite its transactions are real ones.

    Python's sqlite3 driver does not begin a transaction before DDL, so a
    failing migration would leave half its tables behind. This engine begins
    every transaction itself, with BEGIN IMMEDIATE.
    """
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    migrate_engine = create_engine(url, poolclass=sa.NullPool)
    if migrate_engine.dialect.name == "sqlite":

        @sa.event.listens_for(migrate_engine, "connect")
        def _no_implicit_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(migrate_engine, "begin")
        def _begin_immediate(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return migrate_engine


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the store at `url` to `revision` (default: the newest), creating it if empty.

    Raises:
        StoreError: the store is newer than this Headwater, or the migration failed.
    """
    with schema.migration_lock(url):
        schema.check_revision(url, current_revision(url))
        _run(url, lambda cfg, _connection: command.upgrade(cfg, revision))


def downgrade(url: str, revision: str) -> None:
    """Downgrade the store at `url` to `revision` ("base" drops every table)."""
    with schema.migration_lock(url):
        try:
            _run(url, lambda cfg, _connection: command.downgrade(cfg, revision))
        finally:
            schema.forget(url)


def reset(url: str) -> None:
    """Drop Headwater's tables at `url`, with all their data, and create them afresh.

    Only Headwater's tables (those of `tables.py`) and `alembic_version` are
    dropped; other tables in the same database or schema are left alone.
    """

    def drop_and_upgrade(cfg: Config, connection: sa.Connection) -> None:
        existing = sa.MetaData()
        with warnings.catch_warnings():
            # Expression indexes are not reflected; dropping their table drops them.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
            existing.reflect(connection)
        ours = set(tables.metadata.tables) | {"alembic_version"}
        existing.drop_all(connection, tables=[t for t in existing.sorted_tables if t.name in ours])
        command.upgrade(cfg, "head")

    with schema.migration_lock(url):
        try:
            _run(url, drop_and_upgrade)
        finally:
            schema.forget(url)


def current_revision(url: str) -> str | None:
    """The alembic revision the store at `url` is at, or None for an empty store."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    read_engine = create_engine(url, poolclass=sa.NullPool)
    try:
        with read_engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"Cannot read the schema revision of {schema.display_url(url)}: {exc}"
        ) from exc
    finally:
        read_engine.dispose()


def _run(url: str, action: Callable[[Config, sa.Connection], None]) -> None:
    """Run `action` with a Config whose env.py migrates one open transaction."""
    migrate_engine = engine(url)
    try:
        with migrate_engine.begin() as connection:
            cfg = config()
            cfg.attributes["connection"] = connection
            action(cfg, connection)
    except CommandError as exc:
        raise StoreError(f"Cannot migrate the store at {schema.display_url(url)}: {exc}") from exc
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(
            f"Migrating the store at {schema.display_url(url)} failed, nothing was changed: {exc}"
        ) from exc
    finally:
        migrate_engine.dispose()
