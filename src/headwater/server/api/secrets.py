"""Secrets: write values (encrypted here, with the server's key), list and read metadata,
and read one value explicitly (`GET /api/secrets/{name}/value`), decrypted here.

The key is read from the server's settings on each request that needs it, so a
rotated key file takes effect without a restart.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from headwater.schemas.common import Page
from headwater.schemas.secrets import (
    SecretCreate,
    SecretName,
    SecretQuery,
    SecretResponse,
    SecretSet,
    SecretValueResponse,
)
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.repositories import secrets
from headwater.settings import Settings, get_settings

if TYPE_CHECKING:
    from headwater.server.crypto import SecretKey

router = APIRouter(prefix="/secrets", tags=["secrets"])

NamePath = Annotated[SecretName, Path(description="The secret's name.")]


def _settings(request: Request) -> Settings:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings or get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


def _key(settings: Settings, *, create: bool) -> SecretKey:
    from headwater.server.crypto import load_key

    return load_key(settings, create=create)


@router.post("", status_code=201, responses=errors(400, 409, 422))
def create_secret(db: DatabaseDep, settings: SettingsDep, body: SecretCreate) -> SecretResponse:
    """Encrypt and store a new secret (409 if one has that name); answers its metadata."""
    key = _key(settings, create=True)
    ciphertext = key.encrypt(body.name, body.value)
    with db.write() as conn:
        return secrets.create(
            conn, name=body.name, ciphertext=ciphertext, key_id=key.key_id, now=time.time()
        )


@router.get("", responses=errors(422))
def list_secrets(db: DatabaseDep, query: Annotated[SecretQuery, Query()]) -> Page[SecretResponse]:
    """Secrets' metadata (never values), by name, a page at a time."""
    with db.read() as conn:
        items, total = secrets.list_secrets(conn, query=query)
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/{name}", responses=errors(404, 422))
def read_secret(db: DatabaseDep, name: NamePath) -> SecretResponse:
    """The secret's metadata: name, key id, times; never its value."""
    with db.read() as conn:
        return secrets.read(conn, name=name)


@router.get("/{name}/value", responses=errors(400, 404, 422))
def read_secret_value(
    db: DatabaseDep, settings: SettingsDep, name: NamePath
) -> SecretValueResponse:
    """The secret's decrypted value (400 naming the key needed if the server's key cannot
    decrypt it)."""
    with db.read() as conn:
        row = secrets.row(conn, name)
    key = _key(settings, create=False)
    value = key.decrypt(name, row["ciphertext"], row["key_id"])
    return SecretValueResponse(name=name, value=value)


@router.put("/{name}", responses={201: {"model": SecretResponse}, **errors(400, 422)})
def set_secret(
    db: DatabaseDep, settings: SettingsDep, name: NamePath, body: SecretSet, response: Response
) -> SecretResponse:
    """Store the secret: create it (201) or replace its value (200)."""
    key = _key(settings, create=True)
    ciphertext = key.encrypt(name, body.value)
    with db.write() as conn:
        item, created = secrets.replace(
            conn, name=name, ciphertext=ciphertext, key_id=key.key_id, now=time.time()
        )
    if created:
        response.status_code = 201
    return item


@router.delete("/{name}", status_code=204, responses=errors(404, 422))
def delete_secret(db: DatabaseDep, name: NamePath) -> Response:
    """Delete the secret."""
    with db.write() as conn:
        secrets.delete(conn, name=name)
    return Response(status_code=204)
