"""Lifecycle events of flow and task runs, derived from the state rows being written.

Every state row a writer stores (the recorder's batches, and the server's own
transitions: claims, cancellations, crashes, late runs, ...) becomes one event
`headwater.flow-run.<StateName>` or `headwater.task-run.<StateName>` in the
same transaction. The event's id IS the state row's id, so writing a state
again (a retried batch) cannot add its event twice.

This module is stdlib-only (the embedded SDK's write path imports it): it
holds the lookup SQL for both databases and turns state rows plus what the
lookup found into event rows whose JSON columns are already text, the form
both writers bind cheaply.

    rows = event_rows(states, flow_runs=lookup(...), task_runs=..., received=time.time())
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from headwater.core.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from headwater.core.records import Row
from headwater.store import columns

#: Label values are bounded (the Event model's limit); longer messages are cut.
LABEL_MAX = 1024
#: The longest state message kept in an event's payload.
PAYLOAD_MESSAGE_MAX = 64 * 1024

_FROM = (
    "FROM flow_run fr JOIN flow f ON f.id = fr.flow_id "
    "LEFT JOIN deployment d ON d.id = fr.deployment_id "
    "LEFT JOIN work_pool wp ON wp.id = fr.work_pool_id "
    "LEFT JOIN work_queue wq ON wq.id = fr.work_queue_id "
)
_SELECT = (
    "SELECT fr.id, fr.name, fr.tags, f.id, f.name, d.id, d.name, wp.id, wp.name, wq.id, wq.name "
)
#: The flow runs (with flow, deployment, pool and queue) of a JSON array of ids.
FLOW_RUNS_SQLITE = _SELECT + _FROM + "WHERE fr.id IN (SELECT value FROM json_each(?))"
FLOW_RUNS_POSTGRESQL = (
    _SELECT + _FROM + "WHERE fr.id IN (SELECT value::uuid FROM json_array_elements_text(%s::json))"
)
#: Task runs (id, name, tags, flow_run_id) of a JSON array of ids.
TASK_RUNS_SQLITE = (
    "SELECT id, name, tags, flow_run_id FROM task_run WHERE id IN (SELECT value FROM json_each(?))"
)
TASK_RUNS_POSTGRESQL = (
    "SELECT id, name, tags, flow_run_id FROM task_run "
    "WHERE id IN (SELECT value::uuid FROM json_array_elements_text(%s::json))"
)

_STATE_FLOW_RUN = columns.STATE.index("flow_run_id")
_STATE_TASK_RUN = columns.STATE.index("task_run_id")
_TASK_RUN_FLOW_RUN = columns.TASK_RUN.index("flow_run_id")
_TASK_RUN_NAME = columns.TASK_RUN.index("name")
_TASK_RUN_TAGS = columns.TASK_RUN.index("tags")


@dataclasses.dataclass(slots=True)
class FlowRunInfo:
    """What a flow run's events say about it and its related resources."""

    name: str
    tags: list[str]
    #: JSON text of the related list of the flow run's own events.
    related_json: str
    #: Labels of the flow run as a related resource of its task runs' events.
    related: list[dict[str, str]]


def hex_id(value: Any) -> str:
    """An id in the stores' hex form, from a `uuid.UUID`, hex or dashed text."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, str) and len(value) == 32:
        return value.lower()
    return uuid.UUID(str(value)).hex


def tags_of(value: Any) -> list[str]:
    """A tags column as a list (SQLite gives JSON text, PostgreSQL a list)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = json.loads(value)
    return [str(tag) for tag in value] if isinstance(value, list) else []


def dumps(value: Any) -> str:
    """Compact JSON text; values JSON cannot hold become their repr."""
    try:
        return orjson.dumps(value, default=repr).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, default=repr, separators=(",", ":"))


def _resource(kind: str, run_id: str, name: str | None, role: str | None = None) -> dict[str, str]:
    labels = {RESOURCE_ID: f"headwater.{kind}.{uuid.UUID(hex=run_id)}"}
    if name is not None:
        labels[RESOURCE_NAME] = name[:LABEL_MAX]
    if role is not None:
        labels[RESOURCE_ROLE] = role
    return labels


def _tag_resources(tags: Iterable[str]) -> list[dict[str, str]]:
    return [{RESOURCE_ID: f"headwater.tag.{tag}"[:LABEL_MAX], RESOURCE_ROLE: "tag"} for tag in tags]


def flow_run_info(row: Sequence[Any]) -> tuple[str, FlowRunInfo]:
    """(flow run hex id, info) from a row of the FLOW_RUNS_* lookup."""
    (run_id, name, tags, flow_id, flow_name, deployment_id, deployment_name) = row[:7]
    (pool_id, pool_name, queue_id, queue_name) = row[7:11]
    run_hex = hex_id(run_id)
    tag_list = tags_of(tags)
    related = [_resource("flow", hex_id(flow_id), flow_name, "flow")]
    for kind, role, rid, rname in (
        ("deployment", "deployment", deployment_id, deployment_name),
        ("work-pool", "work-pool", pool_id, pool_name),
        ("work-queue", "work-queue", queue_id, queue_name),
    ):
        if rid is not None:
            related.append(_resource(kind, hex_id(rid), rname, role))
    own = related + _tag_resources(tag_list)
    as_parent = [_resource("flow-run", run_hex, name, "flow-run"), *related]
    return run_hex, FlowRunInfo(name, tag_list, dumps(own), as_parent)


def _text(value: str) -> str:
    """A JSON string literal."""
    return orjson.dumps(value).decode()


def event_rows(
    states: Iterable[Row],
    flow_runs: Mapping[str, FlowRunInfo],
    task_runs: Mapping[str, tuple[str, list[str], str | None]],
    received: float,
) -> list[Row]:
    """The lifecycle event of each state row (`columns.STATE` order), JSON columns as text.

    `flow_runs` maps a flow run's hex id to its info, `task_runs` a task run's hex
    id to (name, tags, flow run hex id). A state whose run is unknown (not found:
    e.g. deleted meanwhile) has no event.

    This runs for every state a server ingests (~3 per task run), so the JSON
    text is assembled from pieces made once per run and once per kind of state
    (the same bytes `dumps` would give), not serialised per event.
    """
    rows: list[Row] = []
    # run hex id -> (resource id, '{"headwater.resource.id":...,"headwater.resource.name":...,',
    #                related JSON text, event name prefix)
    runs: dict[str, tuple[str, str, str, str] | None] = {}
    task_related: dict[tuple[str, tuple[str, ...]], str] = {}
    # (type, name, message) -> (resource labels' tail, payload head)
    kinds: dict[tuple[str, str, str | None], tuple[str, str]] = {}
    fromtimestamp, utc = dt.datetime.fromtimestamp, dt.UTC
    for state_id, flow_run_id, task_run_id, state_type, name, message, timestamp in states:
        run_key = task_run_id if task_run_id is not None else flow_run_id
        if run_key is None:
            continue
        if run_key in runs:
            run = runs[run_key]
        else:
            run = runs[run_key] = _run_parts(
                flow_run_id, task_run_id, flow_runs, task_runs, task_related
            )
        if run is None:
            continue
        resource_id, resource_head, related_json, prefix = run
        type_text = str(getattr(state_type, "value", state_type))
        key = (type_text, name, message)
        parts = kinds.get(key)
        if parts is None:
            tail = (
                f'"headwater.state-type":{_text(type_text)},'
                f'"headwater.state-name":{_text(name)},'
                f'"headwater.state-message":{_text((message or "")[:LABEL_MAX])}}}'
            )
            kept = None if message is None else message[:PAYLOAD_MESSAGE_MAX]
            head = (
                f'{{"validated_state":{{"type":{_text(type_text)},"name":{_text(name)},'
                f'"message":{dumps(kept)},"timestamp":"'
            )
            parts = kinds[key] = (tail, head)
        tail, head = parts
        rows.append(
            (
                state_id if len(state_id) == 32 else hex_id(state_id),
                timestamp,
                prefix + name,
                resource_id,
                resource_head + tail,
                related_json,
                head + fromtimestamp(timestamp, utc).isoformat() + '"}}',
                None,
                received,
            )
        )
    return rows


def _run_parts(
    flow_run_id: Any,
    task_run_id: Any,
    flow_runs: Mapping[str, FlowRunInfo],
    task_runs: Mapping[str, tuple[str, list[str], str | None]],
    task_related: dict[tuple[str, tuple[str, ...]], str],
) -> tuple[str, str, str, str] | None:
    """What every event of one run shares (see `event_rows`); None if the run is unknown."""
    if task_run_id is not None:
        run_hex = hex_id(task_run_id)
        task = task_runs.get(run_hex)
        if task is None:
            return None
        run_name, task_tags, parent_hex = task
        parent = flow_runs.get(parent_hex) if parent_hex is not None else None
        key = (parent_hex or "", tuple(task_tags))
        related_json = task_related.get(key)
        if related_json is None:
            related = list(parent.related) if parent is not None else []
            related_json = task_related[key] = dumps(related + _tag_resources(task_tags))
        kind = "task-run"
    else:
        run_hex = hex_id(flow_run_id)
        info = flow_runs.get(run_hex)
        if info is None:
            return None
        kind, run_name, related_json = "flow-run", info.name, info.related_json
    resource_id = f"headwater.{kind}.{uuid.UUID(hex=run_hex)}"
    head = f'{{"{RESOURCE_ID}":{_text(resource_id)},'
    if run_name is not None:
        head += f'"{RESOURCE_NAME}":{_text(run_name[:LABEL_MAX])},'
    return resource_id, head, related_json, f"headwater.{kind}."


def wanted_runs(
    states: Iterable[Row], task_runs: Mapping[str, Row]
) -> tuple[set[str], dict[str, tuple[str, list[str], str | None]], set[str]]:
    """What a lookup needs for `states`: (flow run ids, task runs known, task run ids to read).

    Task runs in `task_runs` (the batch's rows, keyed by id) need no read.
    """
    flow_run_ids: set[str] = set()
    known: dict[str, tuple[str, list[str], str | None]] = {}
    missing: set[str] = set()
    for state in states:
        task_run_id = state[_STATE_TASK_RUN]
        if task_run_id is None:
            if state[_STATE_FLOW_RUN] is not None:
                flow_run_ids.add(hex_id(state[_STATE_FLOW_RUN]))
            continue
        task_hex = hex_id(task_run_id)
        if task_hex in known or task_hex in missing:
            continue
        row = task_runs.get(task_run_id)
        if row is None:
            missing.add(task_hex)
            continue
        parent = row[_TASK_RUN_FLOW_RUN]
        parent_hex = None if parent is None else hex_id(parent)
        known[task_hex] = (row[_TASK_RUN_NAME], tags_of(row[_TASK_RUN_TAGS]), parent_hex)
        if parent_hex is not None:
            flow_run_ids.add(parent_hex)
    return flow_run_ids, known, missing


def task_run_info(row: Sequence[Any]) -> tuple[str, tuple[str, list[str], str | None]]:
    """(task run hex id, (name, tags, flow run hex id)) from a TASK_RUNS_* lookup row."""
    task_id, name, tags, flow_run_id = row
    return hex_id(task_id), (
        name,
        tags_of(tags),
        None if flow_run_id is None else hex_id(flow_run_id),
    )


def text_rows(rows: Iterable[Row]) -> list[Row]:
    """Event rows (`columns.EVENT`, JSON columns as values) with JSON columns as text."""
    return [
        (
            hex_id(r[0]),
            r[1],
            r[2],
            r[3],
            r[4] if isinstance(r[4], str) else dumps(r[4]),
            r[5] if isinstance(r[5], str) else dumps(r[5]),
            r[6] if isinstance(r[6], str) else dumps(r[6]),
            None if r[7] is None else hex_id(r[7]),
            r[8],
        )
        for r in rows
    ]


def recorded(states: Sequence[Row]) -> Sequence[Row]:
    """The states that get a lifecycle event: all, or only flow runs' when the
    `task_run_events` setting is off."""
    from headwater.settings import get_settings

    if get_settings().task_run_events:
        return states
    return [state for state in states if state[2] is None]
