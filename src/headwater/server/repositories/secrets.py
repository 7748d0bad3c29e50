"""Secrets: encrypted values by name. This module stores and reads ciphertexts; the
route encrypts and decrypts (`server/crypto.py`), so no value passes through here in clear."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.exceptions import Conflict, ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.secrets import SecretQuery, SecretResponse
from headwater.server.repositories._common import page
from headwater.server.repositories.variables import contains
from headwater.store.tables import secret

#: Columns of a listing: everything but the ciphertext.
_METADATA = (secret.c.id, secret.c.name, secret.c.key_id, secret.c.created, secret.c.updated)


def to_response(row: Any) -> SecretResponse:
    return SecretResponse(
        id=row["id"],
        name=row["name"],
        key_id=row["key_id"],
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def not_found(name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"No secret named {name!r}; save it with Secret(value=...).save({name!r}) or "
        f"`headwater secret set {name}`."
    )


def exists_error(name: str) -> Conflict:
    return Conflict(
        f"A secret named {name!r} already exists; pass overwrite=True to Secret.save (or "
        "--overwrite to `headwater secret set`) to replace its value."
    )


def row(conn: sa.Connection, name: str, *, lock: bool = False) -> Any:
    """The secret's row (with its ciphertext); ObjectNotFound if there is none."""
    query = sa.select(secret).where(secret.c.name == name)
    if lock:
        query = query.with_for_update()
    found = conn.execute(query).mappings().one_or_none()
    if found is None:
        raise not_found(name)
    return found


def create(
    conn: sa.Connection, *, name: str, ciphertext: str, key_id: str, now: float
) -> SecretResponse:
    """Store a new secret; Conflict if the name is taken."""
    taken = conn.execute(sa.select(secret.c.id).where(secret.c.name == name)).first()
    if taken is not None:
        raise exists_error(name)
    values = {
        "id": uuid7(),
        "name": name,
        "ciphertext": ciphertext,
        "key_id": key_id,
        "created": now,
        "updated": now,
    }
    conn.execute(sa.insert(secret).values(values))
    return to_response(values)


def replace(
    conn: sa.Connection, *, name: str, ciphertext: str, key_id: str, now: float
) -> tuple[SecretResponse, bool]:
    """Store the secret, replacing its value if it exists; whether it was created."""
    try:
        current = row(conn, name, lock=True)
    except ObjectNotFound:
        return create(conn, name=name, ciphertext=ciphertext, key_id=key_id, now=now), True
    values = {"ciphertext": ciphertext, "key_id": key_id, "updated": now}
    conn.execute(sa.update(secret).where(secret.c.id == current["id"]).values(values))
    return to_response({**current, **values}), False


def read(conn: sa.Connection, *, name: str) -> SecretResponse:
    query = sa.select(*_METADATA).where(secret.c.name == name)
    found = conn.execute(query).mappings().one_or_none()
    if found is None:
        raise not_found(name)
    return to_response(found)


def list_secrets(conn: sa.Connection, *, query: SecretQuery) -> tuple[list[SecretResponse], int]:
    """One page of the secrets' metadata matching `query`, by name, and how many in all."""
    select = sa.select(*_METADATA)
    if query.name_contains:
        select = select.where(contains(conn, secret.c.name, query.name_contains))
    return page(conn, select, [secret.c.name], query.offset, query.limit, to_response)


def delete(conn: sa.Connection, *, name: str) -> None:
    result = conn.execute(sa.delete(secret).where(secret.c.name == name))
    if result.rowcount == 0:
        raise not_found(name)


def reencrypt_all(
    conn: sa.Connection,
    *,
    keep: str,
    convert: Callable[[str, str, str], tuple[str, str]],
    now: float,
) -> Sequence[str]:
    """Re-encrypt every secret whose key id is not `keep`, in name order; their names.

    `convert(name, ciphertext, key_id)` returns the new (ciphertext, key_id); an
    exception from it leaves the transaction to be rolled back by its owner.
    """
    rows = conn.execute(
        sa.select(secret).where(secret.c.key_id != keep).order_by(secret.c.name).with_for_update()
    ).mappings()
    changed = []
    for found in list(rows):
        ciphertext, key_id = convert(found["name"], found["ciphertext"], found["key_id"])
        conn.execute(
            sa.update(secret)
            .where(secret.c.id == found["id"])
            .values(ciphertext=ciphertext, key_id=key_id, updated=now)
        )
        changed.append(found["name"])
    return changed
