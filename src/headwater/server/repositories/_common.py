"""Small helpers the repositories share: epoch conversion, tag filters, counting."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from headwater.schemas._types import epoch

T = TypeVar("T")


def seconds(moment: dt.datetime | None) -> float | None:
    """A query parameter's datetime as epoch seconds (naive ones are UTC)."""
    return None if moment is None else epoch(moment)


def has_all_tags(
    conn: sa.Connection, column: sa.ColumnElement[Any], tags: Sequence[str]
) -> list[sa.ColumnElement[bool]]:
    """Conditions that the JSON array `column` holds every one of `tags`."""
    if not tags:
        return []
    if conn.dialect.name == "postgresql":
        return [sa.type_coerce(column, postgresql.JSONB).contains(list(tags))]
    conditions: list[sa.ColumnElement[bool]] = []
    for tag in tags:
        each = sa.func.json_each(column).table_valued("value")
        conditions.append(sa.exists().select_from(each).where(each.c.value == tag))
    return conditions


def page(
    conn: sa.Connection,
    query: sa.Select[Any],
    order: Sequence[sa.ColumnElement[Any]],
    offset: int,
    limit: int,
    convert: Callable[[sa.RowMapping], T],
) -> tuple[list[T], int]:
    """One page of `query` in `order`, converted, and how many rows match in all.

    A first page shorter than `limit` is the whole result: no count query.
    """
    rows = conn.execute(query.order_by(*order).offset(offset).limit(limit)).mappings()
    items = [convert(row) for row in rows]
    if offset == 0 and len(items) < limit:
        return items, len(items)
    return items, total(conn, query)


def total(conn: sa.Connection, query: sa.Select[Any]) -> int:
    """How many rows `query` (without its order and paging) returns."""
    counted = sa.select(sa.func.count()).select_from(query.order_by(None).subquery())
    return int(conn.execute(counted).scalar_one())


def upsertable_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT for `table` in the connection's dialect, with `on_conflict_do_nothing` /
    `on_conflict_do_update` (PostgreSQL and SQLite spell them alike)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
