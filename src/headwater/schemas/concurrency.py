"""Concurrency limits and their leases on the wire.

A limit has `limit` slots. `concurrency()` takes slots under a lease, which
its holder renews while it works and releases at the end; a lease its holder
stops renewing expires, and its slots return. `rate_limit()` takes slots and
never gives them back: on a limit with `slot_decay_per_second`, occupied
slots drain away continuously, which makes it a rate.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from headwater.schemas._types import INT32_MAX, NAME_LENGTH, Count
from headwater.schemas.common import Paging


def _check_name(name: str) -> str:
    if "/" in name:
        raise ValueError(f"{name[:64]!r} contains '/'; limit names appear in URLs, so they cannot")
    if "\x00" in name:
        raise ValueError("Text must not contain NUL (\\u0000) characters")
    return name


#: A limit's name: it appears in URL paths, so it cannot hold a slash.
LimitName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=NAME_LENGTH,
        description="Any text without '/'; task-run tag limits are named 'tag:<tag>'.",
    ),
    AfterValidator(_check_name),
]
#: Slots drained per second (0: none, a plain concurrency limit).
Decay = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
#: The longest lease: a week.
MAX_LEASE_SECONDS = 7 * 24 * 3600.0
LeaseSeconds = Annotated[float, Field(gt=0, le=MAX_LEASE_SECONDS, allow_inf_nan=False)]
#: What a holder says about itself (shown by `headwater concurrency-limit inspect`).
HolderValue = (
    Annotated[str, Field(max_length=1024, pattern=r"^[^\x00]*$")]
    | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)
HolderKey = Annotated[str, Field(max_length=64, pattern=r"^[^\x00]*$")]
Holder = Annotated[dict[HolderKey, HolderValue], Field(max_length=20)]

#: The prefix of the limits task runs take a slot of, one per tag.
TAG_PREFIX = "tag:"


class AcquireMode(enum.StrEnum):
    """`concurrency`: slots held under a lease until released. `rate_limit`: taken for good."""

    CONCURRENCY = "concurrency"
    RATE_LIMIT = "rate_limit"


class ConcurrencyLimitCreate(BaseModel):
    """Body of `POST /api/concurrency_limits`."""

    model_config = ConfigDict(extra="forbid")

    name: LimitName
    limit: Count = Field(description="Slots; 0 refuses every request.")
    active: bool = Field(default=True, description="An inactive limit blocks nothing.")
    slot_decay_per_second: Decay = Field(
        default=0.0, description="Occupied slots freed per second (needed by rate_limit)."
    )


class ConcurrencyLimitUpdate(BaseModel):
    """Body of `PATCH /api/concurrency_limits/{name}`: the fields to change."""

    model_config = ConfigDict(extra="forbid")

    limit: Count | None = None
    active: bool | None = None
    slot_decay_per_second: Decay | None = None


class ConcurrencyLimitResponse(BaseModel):
    id: uuid.UUID
    name: str
    limit: int
    active: bool
    active_slots: float = Field(description="Slots occupied now (decayed to the present).")
    slot_decay_per_second: float
    created: dt.datetime
    updated: dt.datetime


class ConcurrencyLimitQuery(Paging):
    """Filters of `GET /api/concurrency_limits` (sorted by name)."""

    name_prefix: Annotated[str, Field(max_length=NAME_LENGTH, pattern=r"^[^\x00]*$")] | None = None
    active: bool | None = None


class AcquireRequest(BaseModel):
    """Body of `POST /api/concurrency_limits/acquire`.

    All or nothing: the slots are taken from every named limit, or from none
    (then the answer is 423 with `Retry-After`). Names that are not limits are
    ignored and listed in `missing`, unless `strict` (then 404). Inactive
    limits are ignored.
    """

    model_config = ConfigDict(extra="forbid")

    names: list[LimitName] = Field(min_length=1, max_length=100)
    slots: int = Field(default=1, ge=1, le=INT32_MAX)
    mode: AcquireMode = AcquireMode.CONCURRENCY
    lease_seconds: LeaseSeconds = Field(
        default=300.0, description="Until the lease expires unless renewed (concurrency mode)."
    )
    holder: Holder | None = None
    strict: bool = Field(default=False, description="404 if a name is not a limit.")


class AcquireResponse(BaseModel):
    """Slots taken: `lease_id` is None in rate_limit mode, or when no limit applied."""

    lease_id: uuid.UUID | None
    expires: dt.datetime | None
    limits: list[str] = Field(description="The limits slots were taken from.")
    missing: list[str] = Field(description="Names that are not limits (ignored).")


class SlotsUnavailableResponse(BaseModel):
    """Body of a 423: the limit that lacked slots, and when to ask again."""

    message: str
    detail: None = None
    limit: str
    retry_after: float | None = Field(
        description="Seconds until enough slots decay; None when only releases free them."
    )


class LeaseRenew(BaseModel):
    """Body of `POST /api/concurrency_limits/leases/{id}/renew`."""

    model_config = ConfigDict(extra="forbid")

    lease_seconds: LeaseSeconds = 300.0


class LeaseResponse(BaseModel):
    id: uuid.UUID
    limits: list[str]
    slots: int
    holder: dict[str, object] | None
    expires: dt.datetime
    created: dt.datetime
