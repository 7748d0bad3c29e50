"""States and state changes on the wire."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from headwater.core.states import StateType
from headwater.schemas._types import Id, StateName, Text, Timestamp


class StateResponse(BaseModel):
    """One entry of a run's state history."""

    id: uuid.UUID
    flow_run_id: uuid.UUID | None
    task_run_id: uuid.UUID | None
    type: StateType
    name: str
    message: str | None
    timestamp: dt.datetime


class StateCreate(BaseModel):
    """A state to enter: its type, and optionally a display name and message."""

    model_config = ConfigDict(extra="forbid")

    type: StateType
    name: StateName | None = Field(
        default=None, description="Display name; defaults to the type's title (Completed)."
    )
    message: Text | None = None
    timestamp: Timestamp | None = Field(default=None, description="Defaults to now.")


class SetStateRequest(StateCreate):
    """Body of `POST /api/flow_runs/{id}/set_state`."""

    id: Id | None = Field(
        default=None,
        description="Id of the state this transition creates. A retried request with the "
        "same id is recognised and changes nothing (idempotent).",
    )
    expected_state_type: StateType | None = Field(
        default=None,
        description="Refuse (409) unless the run is currently in a state of this type.",
    )
    force: bool = Field(
        default=False, description="Accept even if the run's current state is final."
    )


class SetStateResponse(BaseModel):
    """The outcome of an accepted transition (a rejected one is a 409)."""

    accepted: bool
    duplicate: bool = Field(description="The state id was already recorded: nothing changed.")
    reason: str
    state: StateResponse
