"""Recorder batches as request bodies of `POST /records`, and back.

The body is `{"flows": [...], "flow_runs": [...], "task_runs": [...],
"states": [...], "logs": [...]}`, each row an object keyed by the column
names of `headwater.store.columns`. This runs for every record a remote run
produces (about four rows per task run), so it is written for speed:

- rows become dicts through a comprehension generated per table from
  `columns.py` (`{"id": r[0], ...}`): 0.46 us per state row here, against
  1.2 us for `dict(zip(columns, row))`;
- orjson serialises them (2.8 us per task run against 14.5 us for the stdlib
  `json`), falling back to `json` with `default=repr` for values orjson
  refuses (integers beyond 64 bits), so a bad parameter never loses a batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from headwater.core.records import Batch, Row
from headwater.core.states import TERMINAL_TYPES
from headwater.store import columns

Payload = dict[str, list[dict[str, Any]]]

#: Tables in the order a server applies them: a row never refers to a later table.
TABLES: tuple[str, ...] = ("flows", "flow_runs", "task_runs", "states", "logs", "events")
COLUMNS: dict[str, tuple[str, ...]] = {
    "flows": columns.FLOW,
    "flow_runs": columns.FLOW_RUN,
    "task_runs": columns.TASK_RUN,
    "states": columns.STATE,
    "logs": columns.LOG,
    "events": columns.EVENT,
}
#: Tables whose rows are upserts by id (a later row of the same id wins).
_KEYED = frozenset({"flows", "flow_runs", "task_runs"})

# Non-string dict keys (rare: parameters are made JSON-safe first) make orjson
# raise, and `dumps` falls back to `json`, which turns them into strings.
_ORJSON_OPTIONS = 0


def _objects_function(
    cols: tuple[str, ...], skip: tuple[str, ...] = ()
) -> Callable[[Iterable[Row]], list[dict[str, Any]]]:
    """`rows -> [{"col": row[0], ...}, ...]` for one table, as a literal comprehension.

    Generated (like `collections.namedtuple` does) so that it is built from
    `columns.py` and cannot drift from it, yet runs as fast as hand-written code.
    """
    items = ", ".join(
        f"{name!r}: row[{index}]" for index, name in enumerate(cols) if name not in skip
    )
    namespace: dict[str, Any] = {}
    exec(f"def objects(rows):\n    return [{{{items}}} for row in rows]\n", namespace)
    function: Callable[[Iterable[Row]], list[dict[str, Any]]] = namespace["objects"]
    return function


# An event's `resource_id` is its resource's id label, not a field of the wire model.
_OBJECTS = {
    table: _objects_function(cols, ("resource_id",) if table == "events" else ())
    for table, cols in COLUMNS.items()
}
_FLOW_RUN_STATE = columns.FLOW_RUN.index("state_type")
_FLOW_RUN_PARENT = columns.FLOW_RUN.index("parent_flow_run_id")
_FLOW_RUN_NAME = columns.FLOW_RUN.index("name")


def batch_payload(batch: Batch) -> Payload:
    """The request body of `batch`, as Python objects."""
    return {
        "flows": _OBJECTS["flows"](batch.flows.values()),
        "flow_runs": _OBJECTS["flow_runs"](batch.flow_runs.values()),
        "task_runs": _OBJECTS["task_runs"](batch.task_runs.values()),
        "states": _OBJECTS["states"](batch.states),
        "logs": _OBJECTS["logs"](batch.logs),
        "events": _OBJECTS["events"](batch.events),
    }


def finished_root_runs(batch: Batch) -> dict[str, str]:
    """{id: name} of the root flow runs that reach a final state in `batch`."""
    return {
        run_id: row[_FLOW_RUN_NAME]
        for run_id, row in batch.flow_runs.items()
        if row[_FLOW_RUN_PARENT] is None and row[_FLOW_RUN_STATE] in TERMINAL_TYPES
    }


def dumps(payload: Payload) -> bytes:
    """JSON bytes of a payload; values JSON cannot hold are sent as their repr."""
    if "events" in payload and not payload["events"]:
        # Servers from before events refuse the key; leave it out when empty.
        payload = {table: rows for table, rows in payload.items() if table != "events"}
    try:
        return orjson.dumps(payload, option=_ORJSON_OPTIONS, default=repr)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(payload, default=repr, separators=(",", ":")).encode()


def loads(body: bytes) -> Payload:
    """A payload from JSON bytes (a spooled request body)."""
    value = orjson.loads(body)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object of tables, got {type(value).__name__}")
    return {table: list(value.get(table) or ()) for table in TABLES}


def row_count(payload: Payload) -> int:
    return sum(len(payload[table]) for table in TABLES)


def merge(payloads: Iterable[Payload]) -> Payload:
    """One payload holding the records of several, in order; the latest run row per id wins.

    A server applies a request's run rows as upserts, and PostgreSQL refuses
    one statement that updates a row twice, so duplicates are folded here.
    """
    keyed: dict[str, dict[Any, dict[str, Any]]] = {table: {} for table in _KEYED}
    merged: Payload = {table: [] for table in TABLES}
    for payload in payloads:
        for table in TABLES:
            rows = payload[table]
            if table in keyed:
                index = keyed[table]
                for row in rows:
                    index[row["id"]] = row
            else:
                merged[table].extend(rows)
    for table, index in keyed.items():
        merged[table] = list(index.values())
    return merged


def split(payload: Payload, max_rows: int) -> list[Payload]:
    """Payloads of at most `max_rows` rows, together holding `payload`'s rows in table order.

    Sending the pieces in order never sends a row before the run it belongs to.
    """
    if row_count(payload) <= max_rows:
        return [payload]
    pieces: list[Payload] = []
    current: Payload = {table: [] for table in TABLES}
    room = max_rows
    for table in TABLES:
        rows = payload[table]
        start = 0
        while start < len(rows):
            take = rows[start : start + room]
            current[table].extend(take)
            start += len(take)
            room -= len(take)
            if room == 0:
                pieces.append(current)
                current = {name: [] for name in TABLES}
                room = max_rows
    if row_count(current):
        pieces.append(current)
    return pieces
