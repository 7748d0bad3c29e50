"""Request bodies hold exactly the recorder's rows, keyed by the store's columns."""

from __future__ import annotations

import json

from tests.client.conftest import make_batch

from headwater.client import _encoding
from headwater.core.states import StateType


def test_rows_become_objects_keyed_by_exactly_the_columns() -> None:
    batch = make_batch(3, final=StateType.COMPLETED)
    payload = json.loads(_encoding.dumps(_encoding.batch_payload(batch)))
    assert list(payload) == [t for t in _encoding.TABLES if t != "events"]  # empty: left out
    for table, rows in payload.items():
        originals = {
            "flows": list(batch.flows.values()),
            "flow_runs": list(batch.flow_runs.values()),
            "task_runs": list(batch.task_runs.values()),
            "states": batch.states,
            "logs": batch.logs,
        }[table]
        expected = [dict(zip(_encoding.COLUMNS[table], row, strict=True)) for row in originals]
        assert rows == json.loads(json.dumps(expected))
    assert payload["flow_runs"][0]["state_type"] == "COMPLETED"


def test_finished_root_runs_are_found() -> None:
    done = make_batch(1, final=StateType.FAILED, name="done")
    assert list(_encoding.finished_root_runs(done).values()) == ["done"]
    assert _encoding.finished_root_runs(make_batch(1)) == {}


def test_merge_keeps_the_latest_row_of_a_run_and_every_state() -> None:
    first = _encoding.batch_payload(make_batch(2))
    later = json.loads(json.dumps(first))
    later["flow_runs"][0]["state_type"] = "COMPLETED"
    merged = _encoding.merge([first, later])
    assert [run["state_type"] for run in merged["flow_runs"]] == ["COMPLETED"]
    assert len(merged["task_runs"]) == 2
    assert len(merged["states"]) == 2 * len(first["states"])


def test_split_keeps_table_order_and_every_row() -> None:
    payload = _encoding.batch_payload(make_batch(10))
    pieces = _encoding.split(payload, 7)
    assert all(_encoding.row_count(piece) <= 7 for piece in pieces)
    assert _encoding.merge(pieces) == payload
    order = [t for piece in pieces for t in _encoding.TABLES if piece[t]]
    assert order == sorted(order, key=_encoding.TABLES.index)
