"""Events on the wire: what happened, to which resource, when.

    {"event": "customer.signup",
     "resource": {"headwater.resource.id": "customer.42", "plan": "pro"},
     "related": [{"headwater.resource.id": "headwater.deployment.<uuid>",
                  "headwater.resource.role": "deployment"}],
     "payload": {"email": "a@example.com"}}

`id` defaults to a new uuid7 and `occurred` to now; `received` is set by
the server. Sending an event with an id already stored changes nothing, so a
client may retry freely. Label keys `prefect.resource.*` are accepted as
`headwater.resource.*`, so that ported code keeps working.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from headwater.core.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from headwater.core.ids import uuid7
from headwater.schemas._types import MAX_TIMESTAMP, MIN_TIMESTAMP, epoch

#: The longest event name and label value (the store's column).
NAME_MAX_LENGTH = 1024
#: The largest payload, as compact JSON.
MAX_PAYLOAD_BYTES = 256 * 1024
#: The most related resources of one event.
MAX_RELATED = 100
#: The most labels of one resource.
MAX_LABELS = 100

_PREFECT_PREFIX = "prefect.resource."


def _labels(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object of string labels")
    if len(value) > MAX_LABELS:
        raise ValueError(f"{what} has {len(value)} labels; at most {MAX_LABELS} are allowed")
    labels: dict[str, str] = {}
    for key, label in value.items():
        if not isinstance(key, str) or not isinstance(label, str):
            raise ValueError(f"{what} label {key!r} must have a string value, not {label!r}")
        if len(key) > NAME_MAX_LENGTH or len(label) > NAME_MAX_LENGTH:
            raise ValueError(f"{what} label {key[:80]!r} is longer than {NAME_MAX_LENGTH}")
        if "\x00" in key or "\x00" in label:
            raise ValueError(f"{what} label {key[:80]!r} contains a NUL character")
        if key.startswith(_PREFECT_PREFIX):
            key = "headwater.resource." + key[len(_PREFECT_PREFIX) :]
        labels[key] = label
    if not labels.get(RESOURCE_ID):
        raise ValueError(
            f'{what} needs a {RESOURCE_ID!r} label, e.g. {{"{RESOURCE_ID}": "my.system.{{id}}"}}'
        )
    return labels


class Resource(dict[str, str]):
    """A resource: string labels, with its id under `headwater.resource.id`."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(cls, handler(dict[str, str]))

    @property
    def id(self) -> str:
        return self[RESOURCE_ID]

    @property
    def name(self) -> str | None:
        return self.get(RESOURCE_NAME)

    @property
    def role(self) -> str | None:
        return self.get(RESOURCE_ROLE)


class Event(BaseModel):
    """Something that happened to a resource."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid7)
    occurred: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    event: str = Field(min_length=1, max_length=NAME_MAX_LENGTH, pattern=r"^[^\x00]*$")
    resource: Resource
    related: list[Resource] = Field(default_factory=list, max_length=MAX_RELATED)
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: uuid.UUID | None = None
    received: dt.datetime | None = None

    @field_validator("occurred", "received", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        if value is None or isinstance(value, dt.datetime):
            if isinstance(value, dt.datetime) and value.tzinfo is None:
                return value.replace(tzinfo=dt.UTC)
            return value
        return dt.datetime.fromtimestamp(epoch(value), tz=dt.UTC)

    @field_validator("resource", mode="before")
    @classmethod
    def _resource(cls, value: Any) -> Resource:
        return Resource(_labels(value, "resource"))

    @field_validator("related", mode="before")
    @classmethod
    def _related(cls, value: Any) -> list[Resource]:
        if not isinstance(value, list):
            raise ValueError("related must be a list of resources")
        related = []
        for index, item in enumerate(value):
            labels = _labels(item, f"related[{index}]")
            if not labels.get(RESOURCE_ROLE):
                raise ValueError(
                    f"related[{index}] needs a {RESOURCE_ROLE!r} label saying how it relates "
                    'to the event\'s resource, e.g. "deployment" or "tag"'
                )
            related.append(Resource(labels))
        return related

    @model_validator(mode="after")
    def _bounded(self) -> Event:
        seconds = self.occurred.timestamp()
        if not MIN_TIMESTAMP <= seconds <= MAX_TIMESTAMP:
            raise ValueError("occurred is out of range (years 1 to 9999)")
        size = len(json.dumps(self.payload, separators=(",", ":"), default=str).encode())
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(
                f"the payload is {size} bytes of JSON; at most {MAX_PAYLOAD_BYTES} are allowed. "
                "Send large data by reference (a URL or an id)."
            )
        return self

    def resource_in_role(self, role: str) -> Resource | None:
        """The first related resource with this role (`flow`, `deployment`, ...), if any."""
        for resource in self.related:
            if resource.get(RESOURCE_ROLE) == role:
                return resource
        return None

    def to_row(self, received: float | None = None) -> tuple[Any, ...]:
        """The event as a row of `columns.EVENT` (ids as 32 hex digits)."""
        return (
            self.id.hex,
            self.occurred.timestamp(),
            self.event,
            self.resource[RESOURCE_ID],
            dict(self.resource),
            [dict(r) for r in self.related],
            self.payload,
            None if self.follows is None else self.follows.hex,
            time.time() if received is None else received,
        )
