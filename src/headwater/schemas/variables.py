"""Variables on the wire: named JSON values for configuration.

Names are lowercase letters, digits, underscores and dashes (at most 255
characters), so that they read the same in code, URLs and shells. A value is
any JSON value (string, number, boolean, null, list, object) of at most
`MAX_VALUE_BYTES` once encoded.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from headwater.schemas._types import NAME_LENGTH, NO_NUL_PATTERN, Tag
from headwater.schemas.common import Paging

#: The largest value, as compact JSON.
MAX_VALUE_BYTES = 64 * 1024
#: The deepest nesting of lists and objects in a value.
MAX_DEPTH = 64
#: The most tags a variable may have.
MAX_TAGS = 50

_NAME = re.compile(r"[a-z0-9_-]+")


def check_name(name: str, kind: str = "Variable") -> str:
    """`name` if it is a valid variable or secret name, else a ValueError that says why."""
    if not 1 <= len(name) <= NAME_LENGTH:
        raise ValueError(f"{kind} names have 1 to {NAME_LENGTH} characters, not {len(name)}")
    if not _NAME.fullmatch(name):
        suggestion = re.sub(r"[^a-z0-9_-]+", "_", name.lower()).strip("_")[:NAME_LENGTH]
        hint = f" (e.g. {suggestion!r})" if suggestion else ""
        raise ValueError(
            f"{kind} name {name[:80]!r} may only contain lowercase letters, digits, underscores "
            f"and dashes{hint}"
        )
    return name


def check_json_value(value: Any, what: str = "value") -> Any:
    """`value` if it is plain JSON that fits `MAX_VALUE_BYTES`; else a ValueError that says why.

    The message never quotes the value (it may be a secret).
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(f"the {what} contains a NUL (\\u0000) character, not storable")
        elif isinstance(item, int) and not isinstance(item, bool):
            if not -(2**63) <= item < 2**63:
                raise ValueError(
                    f"the {what} holds an integer beyond 64 bits; store it as a string"
                )
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"the {what} contains {item}, which JSON cannot represent")
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise ValueError(f"the {what} is nested deeper than {MAX_DEPTH} levels")
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str) and "\x00" in key:
                    raise ValueError(f"the {what} has a key with a NUL (\\u0000) character")
                stack.append((child, depth + 1))
        elif item is not None and not isinstance(item, bool | int):
            raise ValueError(
                f"the {what} must be JSON (string, number, boolean, null, list or object), "
                f"not {type(item).__name__}"
            )
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_VALUE_BYTES:
        raise ValueError(
            f"the {what} is {size} bytes of JSON; the limit is {MAX_VALUE_BYTES} bytes (64 KiB)"
        )
    return value


def _variable_name(name: str) -> str:
    return check_name(name, "Variable")


_NAME_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": NAME_LENGTH,
    "pattern": "^[a-z0-9_-]+$",
    "description": "Lowercase letters, digits, underscores and dashes.",
}
_VALUE_SCHEMA: dict[str, Any] = {"description": f"Any JSON value, at most {MAX_VALUE_BYTES} bytes."}

#: A variable's name, checked with a message that names it and says what is allowed.
VariableName = Annotated[str, AfterValidator(_variable_name), WithJsonSchema(_NAME_SCHEMA)]
#: A JSON value of bounded size and depth.
JsonValue = Annotated[Any, AfterValidator(check_json_value), WithJsonSchema(_VALUE_SCHEMA)]
Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]


class VariableCreate(BaseModel):
    """Body of `POST /api/variables` (409 if the name is taken)."""

    model_config = ConfigDict(extra="forbid")

    name: VariableName
    value: JsonValue = None
    tags: Tags = Field(default_factory=list)


class VariableSet(BaseModel):
    """Body of `PUT /api/variables/{name}`: create the variable, or replace its value.

    Tags left out (null) keep the variable's tags.
    """

    model_config = ConfigDict(extra="forbid")

    value: JsonValue = None
    tags: Tags | None = None


class VariableUpdate(BaseModel):
    """Body of `PATCH /api/variables/{name}`: the fields to change."""

    model_config = ConfigDict(extra="forbid")

    value: JsonValue = None
    tags: Tags | None = None


class VariableResponse(BaseModel):
    id: uuid.UUID
    name: str
    value: Any
    tags: list[str]
    created: dt.datetime
    updated: dt.datetime


class VariableQuery(Paging):
    """Filters of `GET /api/variables` (sorted by name)."""

    name_contains: Annotated[str, Field(max_length=NAME_LENGTH, pattern=NO_NUL_PATTERN)] | None = (
        Field(default=None, description="Only names containing this text.")
    )
    tags: list[Tag] = Field(default_factory=list, description="Only variables with every tag.")
