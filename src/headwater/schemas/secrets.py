"""Secrets on the wire: write a value, read metadata, and read the value only explicitly.

Every answer except `GET /api/secrets/{name}/value` carries metadata only.
Names follow the rules of variable names.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from headwater.schemas._types import NAME_LENGTH, NO_NUL_PATTERN
from headwater.schemas.common import Paging
from headwater.schemas.variables import MAX_VALUE_BYTES, check_json_value, check_name

_NAME_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": NAME_LENGTH,
    "pattern": "^[a-z0-9_-]+$",
    "description": "Lowercase letters, digits, underscores and dashes.",
}


def _secret_name(name: str) -> str:
    return check_name(name, "Secret")


def _secret_value(value: Any) -> Any:
    return check_json_value(value, "secret value")


SecretName = Annotated[str, AfterValidator(_secret_name), WithJsonSchema(_NAME_SCHEMA)]
SecretValue = Annotated[
    Any,
    AfterValidator(_secret_value),
    WithJsonSchema(
        {"description": f"A string, or any JSON value; at most {MAX_VALUE_BYTES} bytes of JSON."}
    ),
]


class SecretCreate(BaseModel):
    """Body of `POST /api/secrets` (409 if the name is taken)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: SecretName
    value: SecretValue


class SecretSet(BaseModel):
    """Body of `PUT /api/secrets/{name}`: create the secret, or replace its value."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    value: SecretValue


class SecretResponse(BaseModel):
    """A secret's metadata; never its value."""

    id: uuid.UUID
    name: str
    key_id: str = Field(description="Fingerprint of the key that encrypted the value.")
    created: dt.datetime
    updated: dt.datetime


class SecretValueResponse(BaseModel):
    """Answer of `GET /api/secrets/{name}/value`: the decrypted value."""

    name: str
    value: Any


class SecretQuery(Paging):
    """Filters of `GET /api/secrets` (sorted by name)."""

    name_contains: Annotated[str, Field(max_length=NAME_LENGTH, pattern=NO_NUL_PATTERN)] | None = (
        Field(default=None, description="Only names containing this text.")
    )
