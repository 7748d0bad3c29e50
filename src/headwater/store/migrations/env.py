"""Alembic environment of the store.

Headwater runs migrations through `headwater.store.migrate`, which passes an
open connection (inside its transaction) in `config.attributes["connection"]`.
The alembic CLI (developers, see alembic.ini) connects to
`HEADWATER_DATABASE_URL` instead.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection

from headwater.store import tables

config = context.config
target_metadata = tables.metadata


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    # Revisions must not import tables.py (a later change to it would change an
    # old revision), so autogenerate spells the Timestamp type out.
    if kind == "type" and isinstance(obj, tables.Timestamp):
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.Float().with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")'
    return False


_OPTIONS: dict[str, Any] = {
    "target_metadata": target_metadata,
    # One tree serves SQLite, where most ALTERs need batch mode (copy and move).
    "render_as_batch": True,
    "render_item": _render_item,
    # On SQLite too: migrate.engine() begins a real transaction there, so a
    # failed upgrade leaves the store at its previous revision.
    "transactional_ddl": True,
}


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("HEADWATER_DATABASE_URL")
    if not url:
        raise RuntimeError("Set HEADWATER_DATABASE_URL to the database to migrate.")
    return url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, **_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True, **_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    _run(config.attributes["connection"])
else:
    from headwater.store import migrate

    engine = migrate.engine(_url())
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()
