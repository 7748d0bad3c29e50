"""`run_deployment`: start a run of a deployment and, by default, wait for its end."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from headwater.core.states import State, StateType

_FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}


class DeploymentFlowRun:
    """A run of a deployment as the API reported it: `id`, `name`, `state`, `parameters`..."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        self.id = uuid.UUID(document["id"])
        self.name: str = document["name"]
        self.flow_name: str = document["flow_name"]
        self.parameters: dict[str, Any] = document["parameters"]
        self.tags: list[str] = document["tags"]
        self.run_count: int = document["run_count"]
        self.deployment_id = uuid.UUID(document["deployment_id"])
        timestamp = dt.datetime.fromisoformat(document["state_timestamp"]).timestamp()
        self.state = State(
            StateType(document["state_type"]),
            document["state_name"],
            document["state_message"],
            timestamp=timestamp,
        )
        expected = document.get("expected_start_time")
        self.expected_start_time = dt.datetime.fromisoformat(expected) if expected else None

    @property
    def state_type(self) -> StateType:
        return self.state.type

    @property
    def state_name(self) -> str:
        return self.state.name

    def __repr__(self) -> str:
        return f"DeploymentFlowRun(id={self.id}, name={self.name!r}, state={self.state!r})"


def resolve_deployment(client: Any, name: str | uuid.UUID) -> dict[str, Any]:
    """The deployment named `flow/deployment`, or with this id."""
    from headwater.exceptions import ObjectNotFound

    text = str(name)
    try:
        deployment_id = uuid.UUID(text)
    except ValueError:
        flow_name, slash, deployment_name = text.partition("/")
        if not slash or not flow_name or not deployment_name:
            raise ObjectNotFound(
                f"Deployment {text!r}: name it 'flow-name/deployment-name' (as `headwater "
                "deployment ls` shows) or by id."
            ) from None
        from urllib.parse import quote

        found: dict[str, Any] = client.request(
            "GET",
            f"/deployments/name/{quote(flow_name, safe='')}/{quote(deployment_name, safe='')}",
        )
        return found
    found = client.request("GET", f"/deployments/{deployment_id}")
    return found


def run_deployment(
    name: str | uuid.UUID,
    parameters: dict[str, Any] | None = None,
    scheduled_time: dt.datetime | None = None,
    flow_run_name: str | None = None,
    timeout: float | None = None,
    poll_interval: float = 5,
    tags: list[str] | None = None,
    idempotency_key: str | None = None,
    work_queue_name: str | None = None,
    as_subflow: bool = True,
    job_variables: dict[str, Any] | None = None,
) -> DeploymentFlowRun:
    """Create a run of the deployment `name` ('flow/deployment' or its id) and wait for it.

    Args:
        parameters: over the deployment's defaults; checked against its schema.
        scheduled_time: when it is due (default now).
        timeout: seconds to wait for a final state; None waits as long as it takes,
            0 returns at once (the run Scheduled).
        poll_interval: the longest pause between two reads of the run's state.
        idempotency_key: a second call with the same key returns the first run.
        as_subflow: called inside a flow run, link the new run to it as a child.

    Returns:
        The run as last read: its `state` is final unless the timeout passed first.
    """
    from headwater.client.api import get_client
    from headwater.engine.parameters import jsonable

    del work_queue_name  # queues come from the deployment
    client = get_client()
    found = resolve_deployment(client, name)
    body: dict[str, Any] = {
        "parameters": jsonable(parameters or {}),
        "tags": list(tags or []),
        "idempotency_key": idempotency_key,
        "job_variables": job_variables,
        "name": flow_run_name,
    }
    if scheduled_time is not None:
        if scheduled_time.tzinfo is None:
            scheduled_time = scheduled_time.replace(tzinfo=dt.UTC)
        body["scheduled_time"] = scheduled_time.isoformat()
    if as_subflow:
        from headwater.context import flow_run_context, task_run_context

        context = flow_run_context.get()
        task_context = task_run_context.get()
        if context is not None:
            body["parent_flow_run_id"] = context.flow_run.hex_id
        elif task_context is not None and task_context.flow_run is not None:
            body["parent_flow_run_id"] = task_context.flow_run.hex_id
            body["parent_task_run_id"] = task_context.task_run.hex_id
    document = client.request("POST", f"/deployments/{found['id']}/create_flow_run", json=body)
    run = DeploymentFlowRun(document)
    if timeout == 0:
        return run
    deadline = None if timeout is None else time.monotonic() + timeout
    pause = 0.05
    while run.state.type not in _FINAL:
        if deadline is not None and time.monotonic() >= deadline:
            break
        wait = pause if deadline is None else min(pause, max(0.0, deadline - time.monotonic()))
        time.sleep(wait)
        pause = min(pause * 2, max(poll_interval, 0.05))
        run = DeploymentFlowRun(client.request("GET", f"/flow_runs/{run.id}"))
    return run
