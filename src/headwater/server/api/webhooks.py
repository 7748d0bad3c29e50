"""Webhooks: manage them under /api/webhooks; receive requests at `/hooks/<slug>`.

`/hooks/<slug>` is public (no API key): the slug is the credential, and a
signing secret can be required on top. Unknown, disabled and malformed slugs
get the same 404 after the same work, so the answer tells nothing about which
webhooks exist. The signing secret is encrypted with the server's secret key
(as secrets are), read from the app's settings on each request that needs it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from headwater.core.ids import uuid7
from headwater.exceptions import ObjectNotFound
from headwater.schemas.common import Page
from headwater.schemas.webhooks import (
    HookAccepted,
    WebhookCreate,
    WebhookName,
    WebhookQuery,
    WebhookResponse,
    WebhookSaved,
    WebhookUpdate,
)
from headwater.server import webhooks as hooks
from headwater.server.api._responses import errors
from headwater.server.crypto import SecretKeyError
from headwater.server.database import Database
from headwater.server.dependencies import DatabaseDep
from headwater.server.errors import error_body
from headwater.server.repositories import webhooks
from headwater.settings import Settings, get_settings

if TYPE_CHECKING:
    from headwater.server.crypto import SecretKey

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
#: `POST /hooks/<slug>`, mounted at the root (not under /api).
hooks_router = APIRouter(tags=["webhooks"])

#: What a slug can look like; anything else is looked up as `_NO_SLUG`, to do the same work.
_SLUG = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NO_SLUG = "!" * 43
#: The one answer to a slug that is not an enabled webhook's.
_NOT_FOUND = "No webhook at this address. Check the URL; a rotated webhook has a new one."
#: Bytes of randomness of a generated signing secret.
_SECRET_BYTES = 32

IdPath = Annotated[uuid.UUID, Path(description="The webhook's id.")]


def _settings(request: Request) -> Settings:
    settings: Settings | None = getattr(request.app.state, "settings", None)
    return settings or get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


def _key(settings: Settings, *, create: bool) -> SecretKey:
    from headwater.server.crypto import load_key

    return load_key(settings, create=create)


def _secret_name(webhook_id: uuid.UUID) -> str:
    """The name a signing secret is encrypted under: binds the ciphertext to its webhook."""
    return f"webhook.{webhook_id}"


def _template_error(message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", "template"), "msg": message, "type": "value_error"}]
    )


def _check_template(template: str, webhook_id: uuid.UUID, name: str) -> None:
    try:
        hooks.check_template(template, webhook_id, name)
    except ValueError as exc:
        raise _template_error(str(exc)) from None


def _signing_columns(
    settings: Settings, webhook_id: uuid.UUID, secret: str | None
) -> dict[str, Any]:
    if secret is None:
        return {"signing_secret": None, "signing_key_id": None}
    key = _key(settings, create=True)
    return {
        "signing_secret": key.encrypt(_secret_name(webhook_id), secret),
        "signing_key_id": key.key_id,
    }


@router.post("", status_code=201, responses=errors(400, 409, 422))
def create_webhook(db: DatabaseDep, settings: SettingsDep, body: WebhookCreate) -> WebhookSaved:
    """Create a webhook (409 if the name is taken). With `generate_signing_secret`, the
    answer shows the generated secret: this once, never again."""
    webhook_id = uuid7()
    _check_template(body.template, webhook_id, body.name)
    secret = body.signing_secret
    if body.generate_signing_secret:
        secret = secrets.token_urlsafe(_SECRET_BYTES)
    signing = _signing_columns(settings, webhook_id, secret)
    with db.write() as conn:
        item = webhooks.create(
            conn,
            name=body.name,
            description=body.description,
            template=body.template,
            enabled=body.enabled,
            now=time.time(),
            webhook_id=webhook_id,
            **signing,
        )
    shown = secret if body.generate_signing_secret else None
    return WebhookSaved(**item.model_dump(), signing_secret=shown)


@router.get("", responses=errors(422))
def list_webhooks(
    db: DatabaseDep, query: Annotated[WebhookQuery, Query()]
) -> Page[WebhookResponse]:
    """Webhooks by name, a page at a time (never their signing secrets)."""
    with db.read() as conn:
        items, total = webhooks.list_webhooks(conn, query=query)
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/name/{name}", responses=errors(404, 422))
def read_webhook_by_name(
    db: DatabaseDep, name: Annotated[WebhookName, Path(description="The webhook's name.")]
) -> WebhookResponse:
    """The webhook named `name`."""
    with db.read() as conn:
        return webhooks.read_by_name(conn, name=name)


@router.get("/{webhook_id}", responses=errors(404, 422))
def read_webhook(db: DatabaseDep, webhook_id: IdPath) -> WebhookResponse:
    """The webhook with this id."""
    with db.read() as conn:
        return webhooks.read(conn, webhook_id=webhook_id)


@router.patch("/{webhook_id}", responses=errors(400, 404, 422))
def update_webhook(
    db: DatabaseDep, settings: SettingsDep, webhook_id: IdPath, body: WebhookUpdate
) -> WebhookSaved:
    """Change the fields given. `signing_secret: null` stops requiring signatures;
    `generate_signing_secret: true` sets a random secret, shown in this answer only."""
    given = body.model_dump(exclude_unset=True)
    given.pop("generate_signing_secret", None)
    with db.read() as conn:
        current = webhooks.read(conn, webhook_id=webhook_id)
    if body.template is not None:
        _check_template(body.template, webhook_id, current.name)
    secret = None
    if body.generate_signing_secret:
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        given.update(_signing_columns(settings, webhook_id, secret))
    elif "signing_secret" in given:
        given.update(_signing_columns(settings, webhook_id, given["signing_secret"]))
    with db.write() as conn:
        item = webhooks.update(conn, webhook_id=webhook_id, changes=given, now=time.time())
    return WebhookSaved(**item.model_dump(), signing_secret=secret)


@router.post("/{webhook_id}/rotate", responses=errors(404, 422))
def rotate_webhook(db: DatabaseDep, webhook_id: IdPath) -> WebhookResponse:
    """Give the webhook a new random slug (a new URL); the old URL answers 404 at once."""
    with db.write() as conn:
        return webhooks.rotate(conn, webhook_id=webhook_id, now=time.time())


@router.delete("/{webhook_id}", status_code=204, responses=errors(404, 422))
def delete_webhook(db: DatabaseDep, webhook_id: IdPath) -> Response:
    """Delete the webhook; its URL answers 404 at once."""
    with db.write() as conn:
        webhooks.delete(conn, webhook_id=webhook_id)
    return Response(status_code=204)


# -- receiving -------------------------------------------------------------------------------


def _lookup(db: Database, slug: str) -> Any:
    """The enabled webhook at `slug`, else the one 404 (same query for every slug)."""
    with db.read() as conn:
        row = webhooks.by_slug(conn, slug if _SLUG.fullmatch(slug) else _NO_SLUG)
    if row is None or not row["enabled"]:
        raise ObjectNotFound(_NOT_FOUND)
    return row


def _accept(
    db: Database,
    settings: Settings,
    slug: str,
    body: bytes,
    headers: list[tuple[str, str]],
    query: list[tuple[str, str]],
    method: str,
) -> HookAccepted | JSONResponse:
    row = _lookup(db, slug)
    webhook_id: uuid.UUID = row["id"]
    header_map = {key.lower(): value for key, value in headers}
    if row["signing_secret"] is not None:
        try:
            secret = _key(settings, create=False).decrypt(
                _secret_name(webhook_id), row["signing_secret"], row["signing_key_id"]
            )
        except SecretKeyError as exc:
            logger.warning("Webhook %r cannot check signatures: %s", row["name"], exc)
            return JSONResponse(
                status_code=503,
                content=error_body(
                    "The server cannot check this webhook's signatures now (its secret key is "
                    "missing or not the one that encrypted the signing secret); its log says "
                    "more."
                ),
            )
        try:
            hooks.verify_signature(str(secret), body, header_map, time.time())
        except hooks.SignatureError as exc:
            return JSONResponse(status_code=401, content=error_body(str(exc)))
    context = hooks.request_context(
        body=body,
        headers=headers,
        query=query,
        method=method,
        webhook_id=webhook_id,
        name=row["name"],
        now=dt.datetime.now(dt.UTC),
    )
    event = hooks.render_event(row["template"], context, webhook_id, row["name"])
    from headwater.server.automations.service import nudge
    from headwater.server.repositories.events import insert_events

    with db.write() as conn:
        insert_events(conn, [event.to_row(received=time.time())])
    nudge()
    return HookAccepted(event_id=event.id, event=event.event)


@hooks_router.api_route(
    "/hooks/{slug}",
    methods=["PUT", "PATCH"],
    status_code=202,
    response_model=HookAccepted,
    include_in_schema=False,  # documented once, as POST (below)
)
@hooks_router.post(
    "/hooks/{slug}",
    status_code=202,
    response_model=HookAccepted,
    responses=errors(400, 401, 404, 413),
)
async def receive_hook(request: Request, slug: str) -> Any:
    """Turn the request into an event with the webhook's template (202 with the event's id).

    404 for any slug that is not an enabled webhook's; 401 for a signed webhook's
    request without a valid signature; 400 if the template fails on the request
    or does not render a valid event.
    """
    # The body is read before the lookup, so that every slug costs the same.
    body = await request.body()
    headers = [(key, value) for key, value in request.headers.items()]
    query = list(request.query_params.multi_items())
    return await run_in_threadpool(
        _accept,
        request.app.state.database,
        _settings(request),
        slug,
        body,
        headers,
        query,
        request.method,
    )
