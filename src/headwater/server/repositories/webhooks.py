"""Webhooks in the store: created, listed, read, changed, rotated and deleted.

The signing secret arrives here already encrypted (the route holds the key), so
no secret passes through this module in clear; answers never carry it.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.exceptions import Conflict, ObjectNotFound
from headwater.schemas.common import utc
from headwater.schemas.webhooks import WebhookQuery, WebhookResponse, hook_path
from headwater.server.repositories._common import page
from headwater.server.repositories.variables import contains
from headwater.store.tables import webhook

#: Bytes of randomness in a slug (43 url-safe characters).
SLUG_BYTES = 32


def new_slug() -> str:
    """A random, unguessable slug."""
    return secrets.token_urlsafe(SLUG_BYTES)


def to_response(row: Any) -> WebhookResponse:
    return WebhookResponse(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        slug=row["slug"],
        url=hook_path(row["slug"]),
        template=row["template"],
        enabled=row["enabled"],
        signed=row["signing_secret"] is not None,
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def not_found(webhook_id: uuid.UUID) -> ObjectNotFound:
    return ObjectNotFound(
        f"No webhook with id {webhook_id}; list them with `headwater webhook ls` or "
        "GET /api/webhooks."
    )


def not_found_by_name(name: str) -> ObjectNotFound:
    return ObjectNotFound(
        f"No webhook named {name!r}; list them with `headwater webhook ls`, or create it with "
        f"`headwater webhook create {name} --template-file PATH`."
    )


def _row(conn: sa.Connection, webhook_id: uuid.UUID, *, lock: bool = False) -> Any:
    query = sa.select(webhook).where(webhook.c.id == webhook_id)
    if lock:
        query = query.with_for_update()
    found = conn.execute(query).mappings().one_or_none()
    if found is None:
        raise not_found(webhook_id)
    return found


def create(
    conn: sa.Connection,
    *,
    name: str,
    description: str | None,
    template: str,
    enabled: bool,
    signing_secret: str | None,
    signing_key_id: str | None,
    now: float,
    webhook_id: uuid.UUID | None = None,
) -> WebhookResponse:
    """Store a new webhook with a fresh slug; Conflict if the name is taken.

    `signing_secret` is the encrypted secret (None: requests need no signature).
    """
    taken = conn.execute(sa.select(webhook.c.id).where(webhook.c.name == name)).first()
    if taken is not None:
        raise Conflict(
            f"A webhook named {name!r} already exists; choose another name, or change it "
            f"with PATCH /api/webhooks/{taken[0]}."
        )
    values = {
        "id": webhook_id or uuid7(),
        "name": name,
        "description": description,
        "slug": new_slug(),
        "template": template,
        "signing_secret": signing_secret,
        "signing_key_id": signing_key_id,
        "enabled": enabled,
        "created": now,
        "updated": now,
    }
    conn.execute(sa.insert(webhook).values(values))
    return to_response(values)


def read(conn: sa.Connection, *, webhook_id: uuid.UUID) -> WebhookResponse:
    return to_response(_row(conn, webhook_id))


def read_by_name(conn: sa.Connection, *, name: str) -> WebhookResponse:
    found = conn.execute(sa.select(webhook).where(webhook.c.name == name)).mappings().first()
    if found is None:
        raise not_found_by_name(name)
    return to_response(found)


def by_slug(conn: sa.Connection, slug: str) -> Any:
    """The row (with its encrypted secret) of the webhook at `slug`, or None."""
    return conn.execute(sa.select(webhook).where(webhook.c.slug == slug)).mappings().one_or_none()


def list_webhooks(conn: sa.Connection, *, query: WebhookQuery) -> tuple[list[WebhookResponse], int]:
    """One page of the webhooks matching `query`, by name, and how many match in all."""
    select = sa.select(webhook)
    if query.name_contains:
        select = select.where(contains(conn, webhook.c.name, query.name_contains))
    return page(conn, select, [webhook.c.name], query.offset, query.limit, to_response)


def update(
    conn: sa.Connection, *, webhook_id: uuid.UUID, changes: dict[str, Any], now: float
) -> WebhookResponse:
    """Change the columns in `changes` (description, template, enabled, signing_secret and
    signing_key_id, the secret encrypted)."""
    current = _row(conn, webhook_id, lock=True)
    allowed = {"description", "template", "enabled", "signing_secret", "signing_key_id"}
    values = {key: value for key, value in changes.items() if key in allowed}
    values["updated"] = now
    conn.execute(sa.update(webhook).where(webhook.c.id == webhook_id).values(values))
    return to_response({**current, **values})


def rotate(conn: sa.Connection, *, webhook_id: uuid.UUID, now: float) -> WebhookResponse:
    """Give the webhook a new slug; its old address stops working when this commits."""
    current = _row(conn, webhook_id, lock=True)
    values = {"slug": new_slug(), "updated": now}
    conn.execute(sa.update(webhook).where(webhook.c.id == webhook_id).values(values))
    return to_response({**current, **values})


def delete(conn: sa.Connection, *, webhook_id: uuid.UUID) -> None:
    """Delete the webhook; ObjectNotFound if there is none."""
    result = conn.execute(sa.delete(webhook).where(webhook.c.id == webhook_id))
    if result.rowcount == 0:
        raise not_found(webhook_id)
