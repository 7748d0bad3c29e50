"""Flows on the wire."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from headwater.schemas._types import NAME_LENGTH
from headwater.schemas.common import Paging


class FlowResponse(BaseModel):
    id: uuid.UUID
    name: str
    created: dt.datetime


class FlowFilter(Paging):
    """Query parameters of `GET /api/flows`."""

    name_like: str | None = Field(
        default=None,
        max_length=NAME_LENGTH,
        description="Only flows whose name contains this text (case-insensitive).",
    )
