"""Pausing, resuming, and the inputs of flow runs on the wire.

A pause is recorded as an input row of its run (key `paused-<key>-schema`: the
JSON schema of the input it waits for, its timeout and whether it suspended);
the input given to resume it is the row `paused-<key>-response`. Other keys
are free for `send_input` / `receive_input`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from headwater.core.states import StateType
from headwater.schemas._types import Text

#: How long a waiting request (`wait`) may ask to be held open, before the server's own cap.
MAX_WAIT = 60.0
#: Keys sent with `send_input` leave room for a 36-character suffix in the 255 of the column.
KEY_LENGTH = 200
#: Keys of pause bookkeeping start with this; `send_input` may not use it.
PAUSE_PREFIX = "paused-"

InputKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=KEY_LENGTH,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Letters, digits, '_', '.' and '-'.",
    ),
]
Sender = Annotated[str, Field(max_length=255, pattern=r"^[^\x00]*$")]


def pause_record_key(key: str) -> str:
    return f"{PAUSE_PREFIX}{key}-schema"


def pause_response_key(key: str) -> str:
    return f"{PAUSE_PREFIX}{key}-response"


class PauseRequest(BaseModel):
    """Body of `POST /api/flow_runs/{id}/pause` (sent by the run's own process)."""

    model_config = ConfigDict(extra="forbid")

    key: InputKey = Field(
        description="Counts pauses per run: a key that fired before answers "
        "at once with the input given then (`paused` false)."
    )
    timeout_seconds: float | None = Field(
        default=3600.0, gt=0, le=366 * 86400, description="Resume is refused after this."
    )
    suspend: bool = Field(
        default=False,
        description="Suspended (the process exits; resuming schedules the run again) "
        "instead of Paused (the process waits).",
    )
    input_schema: dict[str, Any] | None = Field(
        default=None, description="JSON schema of the input the run waits for; none if null."
    )
    description: Text | None = Field(
        default=None, max_length=10_000, description="Shown to whoever resumes the run."
    )


class PauseResponse(BaseModel):
    """The outcome of a pause request."""

    paused: bool = Field(
        description="False if this pause key fired before (the run was resumed): go on."
    )
    state_type: StateType
    state_name: str
    state_timestamp: dt.datetime
    has_input: bool = Field(description="`run_input` holds the input given when resumed.")
    run_input: Any = None


class PauseInfo(BaseModel):
    """A run's latest pause: what it waits for, and the input given when it was resumed."""

    flow_run_id: uuid.UUID
    state_type: StateType
    state_name: str
    state_timestamp: dt.datetime
    key: str | None = Field(description="The pause key; null if the run never paused.")
    input_schema: dict[str, Any] | None
    description: str | None
    suspended: bool
    timeout_seconds: float | None
    deadline: dt.datetime | None = Field(description="Resume is refused after this time.")
    has_input: bool
    run_input: Any = None


class ResumeRequest(BaseModel):
    """Body of `POST /api/flow_runs/{id}/resume`."""

    model_config = ConfigDict(extra="forbid")

    run_input: dict[str, Any] | None = Field(
        default=None, description="The input, valid against the paused run's input_schema."
    )


class ResumeResponse(BaseModel):
    flow_run_id: uuid.UUID
    state_type: StateType
    state_name: str
    state_message: str | None


class FlowRunInputCreate(BaseModel):
    """Body of `POST /api/flow_runs/{id}/input`: a value for the run (`send_input`)."""

    model_config = ConfigDict(extra="forbid")

    key: InputKey
    value: Any = Field(description="Any JSON value.")
    sender: Sender | None = None


class FlowRunInputResponse(BaseModel):
    id: uuid.UUID
    flow_run_id: uuid.UUID
    key: str
    value: Any
    sender: str | None
    created: dt.datetime


class FlowRunInputFilter(BaseModel):
    """Body of `POST /api/flow_runs/{id}/input/filter` (`receive_input` polls here)."""

    model_config = ConfigDict(extra="forbid")

    prefix: InputKey | None = Field(default=None, description="Only keys starting with this.")
    exclude_keys: list[Annotated[str, Field(max_length=255)]] = Field(
        default_factory=list, max_length=10_000, description="Keys already received."
    )
    limit: int = Field(default=100, ge=1, le=1000)
    wait: float = Field(
        default=0.0,
        ge=0,
        le=MAX_WAIT,
        description="Seconds to hold the request open until an input matches.",
    )
