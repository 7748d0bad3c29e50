"""In-memory run objects (what `get_run_context().flow_run` returns) and their store rows.

Ids are kept as 32-digit hex strings (`hex_id`, the store's format) because
they go into a row at every state change; the `uuid.UUID` attributes users
read (`id`, `parent_flow_run_id`, ...) are made on access.
"""

from __future__ import annotations

import inspect
import uuid
from typing import Any

from headwater.core.ids import uuid7_hex
from headwater.core.states import State


def _uuid(hex_id: str | None) -> uuid.UUID | None:
    return None if hex_id is None else uuid.UUID(hex_id)


class FlowRun:
    """A flow run as the code running it sees it."""

    __slots__ = (
        "created",
        "deployment_hex",
        "end_time",
        "expected_start_time",
        "flow_hex_id",
        "flow_name",
        "hex_id",
        "json_parameters",
        "name",
        "parameters",
        "parent_flow_run_hex",
        "parent_task_run_hex",
        "process",
        "root_flow_run_hex",
        "run_count",
        "start_time",
        "state",
        "tags",
    )

    def __init__(
        self,
        *,
        hex_id: str,
        flow_hex_id: str,
        flow_name: str,
        name: str,
        parameters: dict[str, Any],
        tags: list[str],
        state: State,
        process: str | None,
        parent_flow_run_hex: str | None = None,
        root_flow_run_hex: str | None = None,
        parent_task_run_hex: str | None = None,
        deployment_hex: str | None = None,
        expected_start_time: float | None = None,
    ) -> None:
        self.hex_id = hex_id
        self.flow_hex_id = flow_hex_id
        self.flow_name = flow_name
        self.name = name
        self.parameters = parameters
        #: the parameters as stored: JSON values only
        self.json_parameters: dict[str, Any] = {}
        self.tags = tags
        self.state = state
        self.process = process
        self.parent_flow_run_hex = parent_flow_run_hex
        self.root_flow_run_hex: str = root_flow_run_hex or hex_id
        self.parent_task_run_hex = parent_task_run_hex
        self.deployment_hex = deployment_hex
        self.run_count = 0
        self.created = state.timestamp
        self.expected_start_time = (
            state.timestamp if expected_start_time is None else expected_start_time
        )
        self.start_time: float | None = None
        self.end_time: float | None = None

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self.hex_id)

    @property
    def flow_id(self) -> uuid.UUID:
        return uuid.UUID(self.flow_hex_id)

    @property
    def parent_flow_run_id(self) -> uuid.UUID | None:
        return _uuid(self.parent_flow_run_hex)

    @property
    def root_flow_run_id(self) -> uuid.UUID:
        return uuid.UUID(self.root_flow_run_hex)

    @property
    def parent_task_run_id(self) -> uuid.UUID | None:
        return _uuid(self.parent_task_run_hex)

    @property
    def deployment_id(self) -> uuid.UUID | None:
        return _uuid(self.deployment_hex)

    @property
    def scheduled_start_time(self) -> float:
        return self.expected_start_time

    def row(self) -> tuple[Any, ...]:
        state: State = self.state
        return (
            self.hex_id,
            self.flow_hex_id,
            self.name,
            state.type,
            state.name,
            state.message,
            state.timestamp,
            self.json_parameters,
            self.tags,
            self.run_count,
            self.parent_flow_run_hex,
            self.root_flow_run_hex,
            self.parent_task_run_hex,
            self.deployment_hex,
            self.expected_start_time,
            self.start_time,
            self.end_time,
            self.created,
            state.timestamp,
            self.process,
        )

    def __repr__(self) -> str:
        return f"FlowRun(id={self.hex_id}, name={self.name!r}, flow_name={self.flow_name!r})"


class TaskRun:
    """A task run as the code running it sees it. Parameters are bound on first access."""

    __slots__ = (
        "_args",
        "_kwargs",
        "_parameters",
        "_signature",
        "created",
        "dynamic_key",
        "end_time",
        "flow_run_hex",
        "hex_id",
        "name",
        "resolve_inputs",
        "run_count",
        "start_time",
        "state",
        "tags",
        "task_inputs",
        "task_key",
        "task_name",
    )

    def __init__(
        self,
        *,
        hex_id: str,
        name: str,
        task_key: str,
        task_name: str,
        dynamic_key: str,
        flow_run_hex: str | None,
        tags: list[str],
        state: State,
        signature: inspect.Signature | None = None,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        task_inputs: dict[str, Any] | None = None,
        resolve_inputs: bool = False,
    ) -> None:
        self.hex_id = hex_id
        #: whether arguments hold futures, states or wrappers to resolve before running
        self.resolve_inputs = resolve_inputs
        self.name = name
        self.task_key = task_key
        self.task_name = task_name
        self.dynamic_key = dynamic_key
        self.flow_run_hex = flow_run_hex
        self.tags = tags
        self.state = state
        self.run_count = 0
        self.created = state.timestamp
        self.start_time: float | None = None
        self.end_time: float | None = None
        self.task_inputs = task_inputs
        self._signature = signature
        self._args = args
        self._kwargs = kwargs or {}
        self._parameters: dict[str, Any] | None = None

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(self.hex_id)

    @property
    def flow_run_id(self) -> uuid.UUID | None:
        return _uuid(self.flow_run_hex)

    @property
    def parameters(self) -> dict[str, Any]:
        if self._parameters is None:
            if self._signature is None:
                self._parameters = dict(self._kwargs)
            else:
                bound = self._signature.bind_partial(*self._args, **self._kwargs)
                bound.apply_defaults()
                self._parameters = dict(bound.arguments)
        return self._parameters

    def row(self) -> tuple[Any, ...]:
        state = self.state
        return (
            self.hex_id,
            self.flow_run_hex,
            self.task_key,
            self.dynamic_key,
            self.name,
            state.type,
            state.name,
            state.message,
            state.timestamp,
            self.tags,
            self.run_count,
            self.task_inputs,
            self.start_time,
            self.end_time,
            self.created,
            state.timestamp,
        )

    def __repr__(self) -> str:
        return f"TaskRun(id={self.hex_id}, name={self.name!r})"


def state_row(state: State, flow_run_hex: str | None, task_run_hex: str | None) -> tuple[Any, ...]:
    """A state-history row for `state`."""
    return (
        uuid7_hex(),
        flow_run_hex,
        task_run_hex,
        state.type,
        state.name,
        state.message,
        state.timestamp,
    )
