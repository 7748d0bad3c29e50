"""The timeline and dependency graph of a flow run page: layout math and escaping."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from headwater.ui import graph as dependencies
from headwater.ui import timeline

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def _at(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _task(
    number: int,
    *,
    created: float = 0,
    start: float | None = None,
    end: float | None = None,
    state: str = "COMPLETED",
    name: str | None = None,
    inputs: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    return {
        "id": _id(number),
        "name": name or f"task-{number}",
        "state_type": state,
        "state_name": state.title(),
        "created": _at(created),
        "start_time": None if start is None else _at(start),
        "end_time": None if end is None else _at(end),
        "task_inputs": inputs,
        "run_count": 1,
    }


def _id(number: int) -> str:
    return f"00000000-0000-7000-8000-{number:012d}"


def _gantt(spans: list[timeline.Span]) -> str:
    return str(timeline.gantt(timeline.layout_gantt(spans, now=T0), now=T0))


def _bars(svg: str) -> dict[str, dict[str, float]]:
    """{run id: {"bar_x", "bar_w", "wait_x", "wait_w"}} from a drawn timeline."""
    found: dict[str, dict[str, float]] = {}
    for row in re.findall(r'<a href="[^"]*" class="row[^"]*" data-run-id="([^"]+)".*?</a>', svg):
        found[row] = {}
    for run_id, body in re.findall(r'data-run-id="([^"]+)"[^>]*>(.*?)</a>', svg):
        for kind in ("bar", "wait"):
            match = re.search(
                rf'class="{kind} [^"]*" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', body
            )
            if match:
                found[run_id][f"{kind}_x"] = float(match.group(1))
                found[run_id][f"{kind}_w"] = float(match.group(2))
    return found


def test_parallel_task_runs_share_the_time_axis_and_waiting_is_drawn_apart() -> None:
    items = timeline.spans(
        [
            _task(1, created=0, start=0, end=10),
            _task(2, created=0, start=0, end=10),  # in parallel with 1
            _task(3, created=0, start=10, end=20, inputs={"x": [_id(1)]}),  # waited 10 s
        ],
        [],
    )
    layout = timeline.layout_gantt(items, now=T0, width=1000, label_width=200)
    rows = {row.span.id: row for row in layout.rows}
    plot = 1000 - 200 - 12

    assert rows[_id(1)].run == rows[_id(2)].run == (200, plot / 2)
    assert rows[_id(1)].wait is None
    assert rows[_id(3)].wait == (200, plot / 2)
    assert rows[_id(3)].run == (200 + plot / 2, plot / 2)
    assert [label for _, label in layout.ticks] == ["0", "5s", "10s", "15s", "20s"]
    assert layout.now_x is None  # everything is final


def test_a_running_task_run_extends_to_now_and_a_pending_one_only_waits() -> None:
    items = timeline.spans(
        [
            _task(1, created=0, start=0, end=None, state="RUNNING"),
            _task(2, created=30, state="PENDING"),
        ],
        [],
    )
    now = T0 + dt.timedelta(seconds=60)
    layout = timeline.layout_gantt(items, now=now, width=1000, label_width=200)
    running, pending = layout.rows

    assert running.run is not None and running.run[0] + running.run[1] == 1000 - 12
    assert pending.run is None
    assert pending.wait is not None and pending.wait[0] + pending.wait[1] == 1000 - 12
    assert layout.now_x == 1000 - 12


def test_rows_beyond_the_cap_are_hidden_completed_ones_first() -> None:
    tasks = [_task(i, created=i, start=i, end=i + 1) for i in range(10)]
    tasks.append(_task(99, created=5, start=5, end=6, state="FAILED"))
    layout = timeline.layout_gantt(timeline.spans(tasks, []), now=T0, max_rows=4)

    shown = [row.span.id for row in layout.rows]
    assert len(shown) == 4
    assert _id(99) in shown  # the failure is kept
    assert layout.hidden == 7 and layout.hidden_completed == 7
    queued = [row.span.queued for row in layout.rows]
    assert queued == sorted(queued)  # still drawn in time order


def test_a_subflow_run_is_drawn_as_itself_linking_to_its_page() -> None:
    call = _task(5, created=0, start=1, end=3, name="child-0")
    subflow = {
        "id": "11111111-1111-7111-8111-111111111111",
        "name": "child-run",
        "state_type": "COMPLETED",
        "state_name": "Completed",
        "created": _at(0),
        "expected_start_time": _at(0),
        "start_time": _at(1),
        "end_time": _at(3),
        "parent_task_run_id": _id(5),
        "run_count": 1,
    }
    svg = _gantt(timeline.spans([call, _task(6)], [subflow]))

    assert 'href="/flow-runs/11111111-1111-7111-8111-111111111111"' in svg
    assert "child-run" in svg and "child-0" not in svg  # the call is not drawn twice
    assert 'href="/task-runs/' + _id(6) + '"' in svg


def test_names_are_escaped_in_the_timeline_and_the_graph() -> None:
    evil = '<script>alert(1)</script>"'
    tasks = [_task(1, start=0, end=1, name=evil), _task(2, inputs={"0": [_id(1)]})]
    for svg in (
        _gantt(timeline.spans(tasks, [])),
        str(dependencies.graph(dependencies.layout_graph(tasks))),
    ):
        assert "<script>" not in svg
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;" in svg


def test_longest_path_layers() -> None:
    parents = {"b": ["a"], "c": ["b"], "d": ["a", "c"], "e": [], "f": ["x-unknown"]}
    assert dependencies.layers(["a", "b", "c", "d", "e", "f"], parents) == {
        "a": 0,
        "b": 1,
        "c": 2,
        "d": 3,  # after its furthest upstream node, not its nearest
        "e": 0,
        "f": 0,
    }


def test_layers_survive_a_cycle_and_long_chains() -> None:
    assert set(dependencies.layers(["a", "b"], {"a": ["b"], "b": ["a"]})) == {"a", "b"}
    chain = [str(i) for i in range(5000)]
    parents = {str(i): [str(i - 1)] for i in range(1, 5000)}
    assert dependencies.layers(chain, parents)["4999"] == 4999


def test_graph_layout_places_layers_left_to_right_with_edges_from_task_inputs() -> None:
    tasks = [
        _task(1),
        _task(2),
        _task(3, inputs={"0": [_id(1)], "wait_for": [_id(2)]}),
        _task(4, inputs={"items": [_id(3), _id(1)]}),
    ]
    layout = dependencies.layout_graph(tasks, links={_id(2): "/flow-runs/abc"})
    nodes = {node.id: node for node in layout.nodes}

    assert [nodes[_id(i)].layer for i in (1, 2, 3, 4)] == [0, 0, 1, 2]
    assert nodes[_id(1)].x < nodes[_id(3)].x < nodes[_id(4)].x
    assert nodes[_id(2)].href == "/flow-runs/abc"
    assert nodes[_id(4)].href == f"/task-runs/{_id(4)}"
    edges = {(edge.source, edge.target): edge.arguments for edge in layout.edges}
    assert edges == {
        (_id(1), _id(3)): ("0",),
        (_id(2), _id(3)): ("wait_for",),
        (_id(3), _id(4)): ("items",),
        (_id(1), _id(4)): ("items",),
    }
    svg = str(dependencies.graph(dependencies.layout_graph(tasks)))
    assert svg.count('class="edge"') == 4
    assert "argument 1" in svg and "wait_for" in svg


def test_upstream_ids_are_matched_whatever_their_spelling() -> None:
    plain = _id(1).replace("-", "")
    assert dependencies.upstream({"task_inputs": {"x": [plain.upper()], "y": "junk"}}) == {
        _id(1): ["x"]
    }


def test_the_graph_is_capped() -> None:
    tasks = [_task(i) for i in range(20)]
    layout = dependencies.layout_graph(tasks, max_nodes=5, group_at=100)
    assert len(layout.nodes) == 5 and layout.hidden == 15


def test_nothing_to_draw_is_empty_markup() -> None:
    assert _gantt([]) == ""
    assert str(dependencies.graph(dependencies.layout_graph([]))) == ""


def test_bars_parse_back_from_the_svg() -> None:
    svg = _gantt(timeline.spans([_task(1, created=0, start=5, end=10)], []))
    bars = _bars(svg)[_id(1)]
    assert bars["wait_x"] < bars["bar_x"]
    assert abs(bars["wait_x"] + bars["wait_w"] - bars["bar_x"]) < 0.11


def test_many_runs_of_one_task_in_a_layer_are_one_node() -> None:
    fetches = [_task(i, state="FAILED" if i == 3 else "COMPLETED") for i in range(10)]
    for run in fetches:
        run["task_key"] = "flows.fetch"
    combine = _task(50, name="combine-0", inputs={"0": [_id(i) for i in range(10)]})
    layout = dependencies.layout_graph([*fetches, combine], group_at=6)

    group, last = layout.nodes
    assert group.count == 10 and group.name == "fetch \u00d710"
    assert group.state_type == "FAILED"  # the worst of its runs
    assert group.href == f"/task-runs/{_id(3)}"  # the failed one
    assert "9 Completed" in group.state_name and "1 Failed" in group.state_name
    assert last.name == "combine-0"
    assert [(e.source, e.target) for e in layout.edges] == [(group.id, last.id)]


def test_the_flow_run_itself_is_the_first_row_and_always_kept() -> None:
    flow_run = {**_task(0, created=50, start=51, end=None, state="RUNNING"), "name": "the-run"}
    tasks = [_task(i, created=i, start=i, end=i + 1) for i in range(1, 10)]
    layout = timeline.layout_gantt(
        timeline.spans(tasks, [], flow_run), now=T0 + dt.timedelta(seconds=60), max_rows=3
    )

    first, *others = layout.rows
    assert first.span.kind == "flow" and first.span.name == "the-run"
    assert len(others) == 2 and layout.hidden == 7
    assert 'class="row row-flow"' in str(timeline.gantt(layout, now=T0))


def test_the_flow_runs_row_shows_each_of_its_states() -> None:
    flow_run = {**_task(0, created=0, start=1, end=30), "name": "the-run"}
    history = [
        {"type": state, "timestamp": _at(moment)}
        for state, moment in (
            ("PENDING", 0),
            ("RUNNING", 1),
            ("PAUSED", 5),
            ("RUNNING", 20),
            ("COMPLETED", 30),
        )
    ]
    layout = timeline.layout_gantt(
        timeline.spans([], [], flow_run, history), now=T0, width=1000, label_width=200
    )
    (row,) = layout.rows
    per_second = (1000 - 200 - 12) / 30

    assert [state for _, _, state in row.states] == [s["type"] for s in history]
    paused = row.states[2]
    assert paused[0] == pytest.approx(200 + 5 * per_second)
    assert paused[1] == pytest.approx(15 * per_second)
    assert row.states[-1][1] == 2  # the final state: a thin mark
    svg = str(timeline.gantt(layout, now=T0))
    assert 'class="wait fill-paused"' in svg and 'class="bar fill-running"' in svg
