"""Log lines on the wire."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from headwater.schemas._types import Count, Id, Name, Text, Timestamp
from headwater.schemas.common import Paging


class LogCreate(BaseModel):
    """One log line to record; a line sent again with the same `id` is ignored."""

    model_config = ConfigDict(extra="forbid")

    id: Id | None = Field(default=None, description="Defaults to a new UUIDv7.")
    flow_run_id: Id | None = None
    task_run_id: Id | None = None
    level: Count = Field(description="A `logging` level: 10 DEBUG ... 50 CRITICAL.")
    name: Name = Field(description="The logger's name.")
    message: Text
    timestamp: Timestamp | None = Field(default=None, description="Defaults to now.")


class LogResponse(BaseModel):
    id: uuid.UUID
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    level: int
    name: str
    message: str
    timestamp: dt.datetime


class LogQuery(Paging):
    """Query parameters of `GET /api/logs`: filters and paging, oldest first."""

    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None
    min_level: int | None = Field(default=None, ge=0, le=2**31 - 1)
    since: dt.datetime | None = Field(default=None, description="Logged at or after this.")
    until: dt.datetime | None = Field(default=None, description="Logged at or before this.")
    limit: int = Field(default=200, ge=1, le=1000)
