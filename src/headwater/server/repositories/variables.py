"""Variables: named JSON values, created, listed, read, changed and deleted by name."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.exceptions import Conflict, ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.variables import VariableQuery, VariableResponse
from headwater.server.repositories._common import has_all_tags, page
from headwater.store.tables import variable


def to_response(row: Any) -> VariableResponse:
    return VariableResponse(
        id=row["id"],
        name=row["name"],
        value=row["value"],
        tags=list(row["tags"] or []),
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def not_found(name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"No variable named {name!r}; set it with Variable.set({name!r}, value) or "
        f"`headwater variable set {name} VALUE`."
    )


def exists_error(name: str) -> Conflict:
    return Conflict(
        f"A variable named {name!r} already exists; pass overwrite=True to Variable.set (or "
        "--overwrite to `headwater variable set`) to replace its value."
    )


def _row(conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
    query = sa.select(variable).where(variable.c.name == name)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).mappings().one_or_none()


def contains(
    conn: sa.Connection, column: sa.ColumnElement[str], text: str
) -> sa.ColumnElement[bool]:
    """`column` contains `text`, case-sensitively and without LIKE's wildcards."""
    function = sa.func.strpos if conn.dialect.name == "postgresql" else sa.func.instr
    return function(column, text) > 0


def create(
    conn: sa.Connection, *, name: str, value: Any, tags: list[str], now: float
) -> VariableResponse:
    """Create the variable; Conflict if the name is taken."""
    if _row(conn, name) is not None:
        raise exists_error(name)
    values = {
        "id": uuid7(),
        "name": name,
        "value": value,
        "tags": tags,
        "created": now,
        "updated": now,
    }
    conn.execute(sa.insert(variable).values(values))
    return to_response(values)


def put(
    conn: sa.Connection, *, name: str, value: Any, tags: list[str] | None, now: float
) -> tuple[VariableResponse, bool]:
    """Create the variable or replace its value (and tags, if given); whether it was created."""
    row = _row(conn, name, lock=True)
    if row is None:
        return create(conn, name=name, value=value, tags=tags or [], now=now), True
    return update(conn, name=name, changes={"value": value, "tags": tags}, now=now), False


def update(
    conn: sa.Connection, *, name: str, changes: dict[str, Any], now: float
) -> VariableResponse:
    """Change `value` and/or `tags` (a None `tags` is left as it is)."""
    row = _row(conn, name, lock=True)
    if row is None:
        raise not_found(name)
    values: dict[str, Any] = {"updated": now}
    if "value" in changes:
        values["value"] = changes["value"]
    if changes.get("tags") is not None:
        values["tags"] = changes["tags"]
    conn.execute(sa.update(variable).where(variable.c.id == row["id"]).values(values))
    return to_response({**row, **values})


def read(conn: sa.Connection, *, name: str) -> VariableResponse:
    row = _row(conn, name)
    if row is None:
        raise not_found(name)
    return to_response(row)


def list_variables(
    conn: sa.Connection, *, query: VariableQuery
) -> tuple[list[VariableResponse], int]:
    """One page of the variables matching `query`, by name, and how many match in all."""
    select = sa.select(variable)
    if query.name_contains:
        select = select.where(contains(conn, variable.c.name, query.name_contains))
    select = select.where(*has_all_tags(conn, variable.c.tags, query.tags))
    return page(conn, select, [variable.c.name], query.offset, query.limit, to_response)


def delete(conn: sa.Connection, *, name: str) -> None:
    """Delete the variable; ObjectNotFound if there is none."""
    result = conn.execute(sa.delete(variable).where(variable.c.name == name))
    if result.rowcount == 0:
        raise not_found(name)
