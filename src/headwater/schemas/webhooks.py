"""Webhooks on the wire: an address (`/hooks/<slug>`) that turns HTTP requests into events.

A webhook has a unique name (the rules of variable names), a Jinja `template`
that renders the event as JSON, and optionally a signing secret: requests must
then carry an HMAC-SHA256 signature of their body. The signing secret is write
only: answers say `signed: true`, never the secret, except the one answer that
generated it (`generate_signing_secret: true`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from headwater.schemas._types import NAME_LENGTH, NO_NUL_PATTERN
from headwater.schemas.common import Paging
from headwater.schemas.variables import check_name

#: The longest template, in characters.
MAX_TEMPLATE_CHARS = 64 * 1024
#: The longest description, in characters.
MAX_DESCRIPTION_CHARS = 10_000
#: Signing secrets given by the user have this many characters at least ...
MIN_SIGNING_SECRET_CHARS = 8
#: ... and at most this many.
MAX_SIGNING_SECRET_CHARS = 512
#: Where a webhook receives requests: this prefix, then its slug.
HOOKS_PATH = "/hooks/"

_NAME_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": NAME_LENGTH,
    "pattern": "^[a-z0-9_-]+$",
    "description": "Lowercase letters, digits, underscores and dashes.",
}


def _webhook_name(name: str) -> str:
    return check_name(name, "Webhook")


WebhookName = Annotated[str, AfterValidator(_webhook_name), WithJsonSchema(_NAME_SCHEMA)]
Template = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_TEMPLATE_CHARS,
        pattern=NO_NUL_PATTERN,
        description="A Jinja template that renders the event as JSON (see docs/webhooks.md).",
    ),
]
Description = Annotated[str, Field(max_length=MAX_DESCRIPTION_CHARS, pattern=NO_NUL_PATTERN)]
SigningSecret = Annotated[
    str,
    Field(
        min_length=MIN_SIGNING_SECRET_CHARS,
        max_length=MAX_SIGNING_SECRET_CHARS,
        pattern=NO_NUL_PATTERN,
        description="The HMAC-SHA256 key senders sign request bodies with.",
    ),
]


def hook_path(slug: str) -> str:
    """The path a webhook with this slug receives requests at: `/hooks/<slug>`."""
    return HOOKS_PATH + slug


class WebhookCreate(BaseModel):
    """Body of `POST /api/webhooks` (409 if the name is taken)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: WebhookName
    description: Description | None = None
    template: Template
    enabled: bool = True
    signing_secret: SigningSecret | None = Field(
        default=None, description="Require requests signed with this secret."
    )
    generate_signing_secret: bool = Field(
        default=False,
        description="Generate a random signing secret; the answer shows it, once.",
    )

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookCreate:
        if self.signing_secret is not None and self.generate_signing_secret:
            raise ValueError("give signing_secret or generate_signing_secret: true, not both")
        return self


class WebhookUpdate(BaseModel):
    """Body of `PATCH /api/webhooks/{id}`: the fields to change.

    `signing_secret: null` removes the signature requirement; a string replaces
    the secret; `generate_signing_secret: true` replaces it with a random one,
    shown once in the answer.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    description: Description | None = None
    template: Template | None = None
    enabled: bool | None = None
    signing_secret: SigningSecret | None = None
    generate_signing_secret: bool = False

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookUpdate:
        if "signing_secret" in self.model_fields_set and self.generate_signing_secret:
            raise ValueError("give signing_secret or generate_signing_secret: true, not both")
        if "template" in self.model_fields_set and self.template is None:
            raise ValueError("template cannot be null; leave it out to keep the template")
        if "enabled" in self.model_fields_set and self.enabled is None:
            raise ValueError("enabled must be true or false; leave it out to keep it")
        return self


class WebhookResponse(BaseModel):
    """A webhook; `signed` says whether requests must be signed, never with what."""

    id: uuid.UUID
    name: str
    description: str | None
    slug: str = Field(description="The random part of the webhook's address.")
    url: str = Field(description="The path requests go to, on the server: /hooks/<slug>.")
    template: str
    enabled: bool
    signed: bool = Field(description="Requests must carry X-Headwater-Signature.")
    created: dt.datetime
    updated: dt.datetime


class WebhookSaved(WebhookResponse):
    """Answer of create and update: the webhook, and a generated signing secret, once."""

    signing_secret: str | None = Field(
        default=None,
        description="The signing secret generated by this request (generate_signing_secret); "
        "shown in this answer only. Null otherwise.",
    )


class WebhookQuery(Paging):
    """Filters of `GET /api/webhooks` (sorted by name)."""

    name_contains: Annotated[str, Field(max_length=NAME_LENGTH, pattern=NO_NUL_PATTERN)] | None = (
        Field(default=None, description="Only names containing this text.")
    )


class HookAccepted(BaseModel):
    """Answer of `POST /hooks/<slug>` (202): the event the request became."""

    event_id: uuid.UUID
    event: str
