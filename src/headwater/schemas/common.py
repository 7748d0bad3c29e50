"""Wire models every resource shares: pages of results, health, and errors."""

from __future__ import annotations

import datetime as dt
from typing import Generic, TypeVar, overload

from pydantic import BaseModel, Field

T = TypeVar("T")

#: The most items one page may hold.
MAX_LIMIT = 1000
#: Offsets past this are refused (no UI pages that far; keeps SQL in range).
MAX_OFFSET = 2**31 - 1


@overload
def utc(timestamp: float) -> dt.datetime: ...
@overload
def utc(timestamp: None) -> None: ...
@overload
def utc(timestamp: float | None) -> dt.datetime | None: ...
def utc(timestamp: float | None) -> dt.datetime | None:
    """An epoch timestamp from the store as an aware UTC datetime (ISO 8601 on the wire)."""
    return None if timestamp is None else dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


class Paging(BaseModel):
    """Offset paging: skip `offset` items, return at most `limit`."""

    offset: int = Field(default=0, ge=0, le=MAX_OFFSET, description="Items to skip.")
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT, description="Items to return at most.")


class Page(BaseModel, Generic[T]):
    """One page of a listing, and how many items match in all."""

    items: list[T]
    total: int = Field(description="Items matching the filters, over all pages.")
    offset: int
    limit: int


class Health(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: str
    database: str
    schema_revision: str | None


class ErrorDetail(BaseModel):
    """One problem with a request: where (`loc`), what (`msg`) and its kind (`type`)."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: a readable `message`, and per-field `detail` for 422s."""

    message: str
    detail: list[ErrorDetail] | str | None = None
