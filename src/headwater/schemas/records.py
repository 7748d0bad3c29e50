"""The record ingest contract: what `POST /api/records` accepts and answers.

The SDK's `HttpBackend` sends the recorder's batches here, and programs in
other languages may too. Each item's keys are exactly the column names of its
table (`headwater.store.columns`), declared here in the same order, so that a
validated item becomes the recorder's positional row without a lookup:

    {"flows": [...], "flow_runs": [...], "task_runs": [...], "states": [...], "logs": [...],
     "events": [...]}

Ids are UUIDs (32 hex digits or dashed), timestamps epoch seconds or ISO 8601
strings, state types `StateType` names. Run items are full rows: a run sent
again replaces the stored row (except `id` and `created`), so send every
column you know, as the recorder does. `events` are `Event` objects (see
`headwater.schemas.events`), insert-or-ignore by id; the server sets their
`received` time.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from headwater.core.records import Batch, Row
from headwater.core.states import StateType
from headwater.schemas._types import (
    Count,
    DynamicKey,
    Id,
    Name,
    StateName,
    Tag,
    Text,
    Timestamp,
    hex_id,
)
from headwater.schemas.events import Event

__all__ = [
    "FlowRecord",
    "FlowRunRecord",
    "LogRecord",
    "RecordCounts",
    "Records",
    "StateRecord",
    "TaskRunRecord",
]


class _Record(BaseModel):
    # Unknown keys are an error, not silently dropped: the contract is the columns.
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Positions of the id fields, whose values `row` normalises.
    _id_positions: ClassVar[tuple[int, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._id_positions = tuple(
            i for i, name in enumerate(cls.model_fields) if name == "id" or name.endswith("_id")
        )

    def row(self) -> Row:
        """The recorder's row: the values in column order (the fields' order), hex ids."""
        values = tuple(self.__dict__.values())
        for i in self._id_positions:
            value = values[i]
            # The SDK sends 32 lowercase hex digits already: then nothing to do.
            if value is not None and (len(value) != 32 or not value.islower()):
                return tuple(
                    hex_id(v) if i in self._id_positions and v is not None else v
                    for i, v in enumerate(values)
                )
        return values


class FlowRecord(_Record):
    """A row of the `flow` table."""

    id: Id
    name: Name
    created: Timestamp


class FlowRunRecord(_Record):
    """A row of the `flow_run` table (a full row: an upsert by id)."""

    id: Id
    flow_id: Id
    name: Name
    state_type: StateType
    state_name: StateName
    state_message: Text | None = None
    state_timestamp: Timestamp
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)
    run_count: Count
    parent_flow_run_id: Id | None = None
    root_flow_run_id: Id | None = None
    parent_task_run_id: Id | None = None
    deployment_id: Id | None = None
    expected_start_time: Timestamp | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    created: Timestamp
    updated: Timestamp
    process: Name | None = None


class TaskRunRecord(_Record):
    """A row of the `task_run` table (a full row: an upsert by id)."""

    id: Id
    flow_run_id: Id | None = None
    task_key: Name
    dynamic_key: DynamicKey
    name: Name
    state_type: StateType
    state_name: StateName
    state_message: Text | None = None
    state_timestamp: Timestamp
    tags: list[Tag] = Field(default_factory=list)
    run_count: Count
    task_inputs: dict[str, Any] | None = None
    start_time: Timestamp | None = None
    end_time: Timestamp | None = None
    created: Timestamp
    updated: Timestamp


class StateRecord(_Record):
    """A row of the `state` table: one entry of a run's state history (insert-or-ignore)."""

    id: Id
    flow_run_id: Id | None = None
    task_run_id: Id | None = None
    type: StateType
    name: StateName
    message: Text | None = None
    timestamp: Timestamp


class LogRecord(_Record):
    """A row of the `log` table (insert-or-ignore by id)."""

    id: Id
    flow_run_id: Id | None = None
    task_run_id: Id | None = None
    level: Count
    name: Name
    message: Text
    timestamp: Timestamp


class Records(BaseModel):
    """A batch of records, written in one transaction. Every list may be left out."""

    # No string cache: it kept ~17 MB per 4 MB batch alive, for no speed gain.
    model_config = ConfigDict(extra="forbid", cache_strings=False)

    flows: list[FlowRecord] = Field(default_factory=list)
    flow_runs: list[FlowRunRecord] = Field(default_factory=list)
    task_runs: list[TaskRunRecord] = Field(default_factory=list)
    states: list[StateRecord] = Field(default_factory=list)
    logs: list[LogRecord] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)

    def counts(self) -> RecordCounts:
        return RecordCounts(
            flows=len(self.flows),
            flow_runs=len(self.flow_runs),
            task_runs=len(self.task_runs),
            states=len(self.states),
            logs=len(self.logs),
            events=len(self.events),
        )

    def to_batch(self) -> Batch:
        """The recorder's `Batch` of these records (a run sent twice: the later row wins)."""
        return Batch(
            flows={record.id: record.row() for record in self.flows},
            flow_runs={record.id: record.row() for record in self.flow_runs},
            task_runs={record.id: record.row() for record in self.task_runs},
            states=[record.row() for record in self.states],
            logs=[record.row() for record in self.logs],
            # The server stamps `received`: the writer sets it when it is None.
            events=[(*event.to_row()[:8], None) for event in self.events],
        )


class RecordCounts(BaseModel):
    """How many records of each kind a `POST /api/records` request carried."""

    flows: int = 0
    flow_runs: int = 0
    task_runs: int = 0
    states: int = 0
    logs: int = 0
    events: int = 0
