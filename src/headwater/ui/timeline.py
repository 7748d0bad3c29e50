"""Pictures of one flow run as SVG: the Gantt timeline of its task runs and subflow runs,
and the dependency graph of its task runs.

Pure functions: API answers (dicts) in, `Markup` out. Layout (where each bar, node and
edge goes) is computed apart from drawing, so it can be tested without a browser. Every
text taken from a run (names, states, argument names) goes through `Markup.format`,
which escapes it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from headwater.ui.render import duration, parse_time

#: States a run does not leave; a run in another state is still going ("now" ends its bar).
FINAL_TYPES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "CRASHED"})
#: Tick steps of the time axis, in seconds: the smallest giving at most `_MAX_TICKS` ticks.
_STEPS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400,
)  # fmt: skip
_MAX_TICKS = 8
_ROW = 22.0
_BAR = 14.0
_AXIS = 22.0
_RIGHT = 12.0
_MIN_BAR = 2.0
_LABEL_CHARS = 30
#: States drawn as waiting (a lighter, thinner segment) in a run's state history.
_WAITING = frozenset({"SCHEDULED", "PENDING", "PAUSED"})
_KINDS = {"flow": "Flow run", "task": "Task run", "subflow": "Subflow run"}
#: More rows than this: the axis labels show below the rows too.
_AXIS_BELOW = 20


@dataclass(frozen=True)
class Span:
    """One row of the timeline: the flow run itself (`kind` "flow"), one of its task runs
    ("task") or subflow runs ("subflow")."""

    id: str
    name: str
    state_type: str
    state_name: str
    queued: dt.datetime
    start: dt.datetime | None
    end: dt.datetime | None
    href: str
    kind: str = "task"
    run_count: int = 0
    #: The states it went through, (type, entered): the flow run's own row shows each.
    states: tuple[tuple[str, dt.datetime], ...] = ()

    @property
    def final(self) -> bool:
        return self.state_type in FINAL_TYPES


@dataclass(frozen=True)
class Row:
    """Where a span is drawn: `wait` and `run` are (x, width) or None; `states` are
    (x, width, state type) of each state a span with a state history was in."""

    span: Span
    y: float
    wait: tuple[float, float] | None
    run: tuple[float, float] | None
    states: tuple[tuple[float, float, str], ...] = ()


@dataclass(frozen=True)
class GanttLayout:
    rows: list[Row]
    ticks: list[tuple[float, str]]
    width: float
    height: float
    label_width: float
    now_x: float | None
    hidden: int
    hidden_completed: int


def spans(
    task_runs: Iterable[Mapping[str, Any]],
    subflow_runs: Iterable[Mapping[str, Any]],
    flow_run: Mapping[str, Any] | None = None,
    states: Iterable[Mapping[str, Any]] = (),
) -> list[Span]:
    """Rows for the task runs and subflow runs of a flow run (API dicts), after a row
    of the flow run itself when given.

    A subflow run is drawn once, as itself (linking to its own page): the task run its
    parent records for the call (its `parent_task_run_id`) is left out.
    """
    subflows = list(subflow_runs)
    wrappers = {str(run.get("parent_task_run_id")) for run in subflows}
    found = []
    if flow_run is not None:
        own = _span(flow_run, href="#run-states", kind="flow")
        history = tuple(
            (str(state["type"]), moment)
            for state in states
            if (moment := parse_time(state.get("timestamp"))) is not None
        )
        found.append(dataclasses.replace(own, states=history))
    found += [
        _span(run, href=f"/task-runs/{run['id']}", kind="task")
        for run in task_runs
        if str(run["id"]) not in wrappers
    ]
    found += [_span(run, href=f"/flow-runs/{run['id']}", kind="subflow") for run in subflows]
    return found


def _span(run: Mapping[str, Any], *, href: str, kind: str) -> Span:
    created = parse_time(run.get("created"))
    start = parse_time(run.get("start_time"))
    expected = parse_time(run.get("expected_start_time"))
    # A scheduled run waits from when it was due, not from when it was created.
    queued = (
        expected if expected is not None and created is not None and expected > created else created
    )
    if queued is None:
        queued = start or parse_time(run.get("state_timestamp")) or dt.datetime.now(dt.UTC)
    return Span(
        id=str(run["id"]),
        name=str(run.get("name") or run["id"]),
        state_type=str(run.get("state_type") or "PENDING"),
        state_name=str(run.get("state_name") or ""),
        queued=queued,
        start=start,
        end=parse_time(run.get("end_time")),
        href=href,
        kind=kind,
        run_count=int(run.get("run_count") or 0),
    )


def keep(items: Sequence[Span], limit: int) -> list[Span]:
    """At most `limit` spans: the flow run's own, the ones not Completed (failures, runs
    still going), then the earliest completed ones; in time order, the flow run first."""
    ordered = sorted(items, key=_order)
    if len(ordered) <= limit:
        return ordered
    # A stable sort: time order stays within each group.
    ranked = sorted(ordered, key=lambda s: (s.kind != "flow", s.state_type == "COMPLETED"))
    return sorted(ranked[:limit], key=_order)


def _order(span: Span) -> tuple[bool, dt.datetime, dt.datetime, str]:
    return (span.kind != "flow", span.queued, span.start or span.queued, span.name)


def layout_gantt(
    items: Sequence[Span],
    *,
    now: dt.datetime,
    max_rows: int = 150,
    width: float = 1000.0,
    label_width: float = 210.0,
) -> GanttLayout:
    """Place `items` on one time axis, from the first queued to the last end (or now)."""
    shown = keep(items, max_rows)
    hidden = len(items) - len(shown)
    hidden_completed = sum(1 for s in items if s.state_type == "COMPLETED") - sum(
        1 for s in shown if s.state_type == "COMPLETED"
    )
    # A long timeline repeats the axis labels below its last row.
    height = _AXIS + _ROW * len(shown) + (_AXIS if len(shown) > _AXIS_BELOW else 4)
    if not shown:
        return GanttLayout([], [], width, height, label_width, None, hidden, hidden_completed)
    origin = min(s.queued for s in shown)
    last = max(_finish(s, now) for s in shown)
    total = max((last - origin).total_seconds(), 0.001)
    plot = width - label_width - _RIGHT

    def x(moment: dt.datetime) -> float:
        seconds = min(max((moment - origin).total_seconds(), 0.0), total)
        return label_width + seconds / total * plot

    rows = []
    for index, span in enumerate(shown):
        y = _AXIS + index * _ROW
        begin = span.start if span.start is not None else _finish(span, now)
        wait = _segment(x(span.queued), x(begin)) if begin > span.queued else None
        run = None
        if span.start is not None:
            run = _segment(x(span.start), x(_finish(span, now)), minimum=_MIN_BAR)
        elif span.final and wait is None:
            # Final without ever starting (cached, cancelled at once): a thin mark.
            run = _segment(x(begin), x(begin), minimum=_MIN_BAR)
        rows.append(Row(span, y, wait, run, _state_segments(span, now, x)))
    ticks = [(x(origin + dt.timedelta(seconds=s)), _offset(s)) for s in _tick_seconds(total)]
    going = any(not s.final for s in shown)
    now_x = x(now) if going and origin <= now else None
    return GanttLayout(rows, ticks, width, height, label_width, now_x, hidden, hidden_completed)


def _state_segments(
    span: Span, now: dt.datetime, x: Callable[[dt.datetime], float]
) -> tuple[tuple[float, float, str], ...]:
    """(x, width, state type) of each state of `span.states`, until the next one (or the
    end, or now); a final state is a thin mark where it was entered."""
    found = []
    for index, (state_type, entered) in enumerate(span.states):
        following = span.states[index + 1][1] if index + 1 < len(span.states) else None
        until = following or (entered if state_type in FINAL_TYPES else _finish(span, now))
        segment = _segment(x(entered), x(until), minimum=_MIN_BAR)
        if segment is not None:
            found.append((*segment, state_type))
    return tuple(found)


def _finish(span: Span, now: dt.datetime) -> dt.datetime:
    """Where a span's bar ends: its end time; now while it is going."""
    if span.end is not None:
        return span.end
    if span.final:
        return span.start or span.queued
    return max(now, span.start or span.queued)


def _segment(left: float, right: float, *, minimum: float = 0.0) -> tuple[float, float] | None:
    size = right - left
    if size < minimum:
        return (left, minimum)
    return (left, size) if size > 0 else None


def _tick_seconds(total: float) -> list[float]:
    step = next((s for s in _STEPS if total / s <= _MAX_TICKS), _STEPS[-1])
    count = math.floor(total / step + 1e-9)
    return [i * step for i in range(count + 1)]


def _offset(seconds: float) -> str:
    """A tick label: the time since the axis starts (0, 250ms, 15s, 2m 30s, 1h 05m)."""
    if seconds == 0:
        return "0"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m" if not secs else f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h" if not minutes else f"{hours}h {minutes:02d}m"
    return f"{hours // 24}d" if not hours % 24 else f"{hours // 24}d {hours % 24:02d}h"


def gantt(layout: GanttLayout, *, now: dt.datetime) -> Markup:
    """A timeline laid out by `layout_gantt` as an inline SVG (empty without rows)."""
    if not layout.rows:
        return Markup("")
    parts = [
        Markup(
            '<svg class="chart gantt" viewBox="0 0 {} {}" role="img" aria-label="Timeline of {} '
            'runs" data-testid="timeline">'
        ).format(_n(layout.width), _n(layout.height), len(layout.rows))
    ]
    parts.append(Markup('<g class="axis">'))
    rows_end = _AXIS + _ROW * len(layout.rows)
    label_ys = [12.0] + ([rows_end + 14] if len(layout.rows) > _AXIS_BELOW else [])
    for tick_x, label in layout.ticks:
        parts.append(
            Markup('<line class="grid-line" x1="{x}" x2="{x}" y1="{top}" y2="{bottom}"/>').format(
                x=_n(tick_x), top=_n(_AXIS - 6), bottom=_n(rows_end)
            )
        )
        # The last label would stick out of the picture when centered.
        anchor = "end" if tick_x > layout.width - 30 else "middle"
        for label_y in label_ys:
            parts.append(
                Markup('<text x="{}" y="{}" text-anchor="{}">{}</text>').format(
                    _n(tick_x), _n(label_y), anchor, label
                )
            )
    parts.append(Markup("</g>"))
    for row in layout.rows:
        parts.append(_gantt_row(row, layout.label_width, now))
    if layout.now_x is not None:
        parts.append(
            Markup(
                '<line class="now" x1="{x}" x2="{x}" y1="{top}" y2="{bottom}"><title>now</title>'
                "</line>"
            ).format(x=_n(layout.now_x), top=_n(_AXIS - 6), bottom=_n(rows_end))
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _gantt_row(row: Row, label_width: float, now: dt.datetime) -> Markup:
    span = row.span
    fill = f"fill-{span.state_type.lower()}"
    parts = [
        Markup('<a href="{}" class="row row-{}" data-run-id="{}" data-state="{}">').format(
            span.href, span.kind, span.id, span.state_type
        ),
        Markup("<title>{}</title>").format(_tooltip(span, now)),
        Markup('<rect class="row-hit" x="0" y="{}" width="100%" height="{}"/>').format(
            _n(row.y), _n(_ROW)
        ),
        Markup('<text class="label" x="4" y="{}">{}{}</text>').format(
            _n(row.y + _ROW / 2 + 4),
            Markup("&#8618; ") if span.kind == "subflow" else "",
            _truncate(span.name, _LABEL_CHARS - (2 if span.kind == "subflow" else 0)),
        ),
    ]
    top = row.y + (_ROW - _BAR) / 2
    for left, size, state_type in row.states:
        waiting = state_type in _WAITING
        parts.append(
            Markup(
                '<rect class="{} fill-{}" x="{}" y="{}" width="{}" height="{}" rx="2">'
                "<title>{}</title></rect>"
            ).format(
                "wait" if waiting else "bar",
                state_type.lower(),
                _n(left),
                _n(top + 3 if waiting else top),
                _n(size),
                _n(_BAR - 6 if waiting else _BAR),
                state_type.title(),
            )
        )
    if row.states:
        parts.append(Markup("</a>"))
        return Markup("").join(parts)
    if row.wait is not None:
        parts.append(
            Markup('<rect class="wait {}" x="{}" y="{}" width="{}" height="{}" rx="2"/>').format(
                fill, _n(row.wait[0]), _n(top + 3), _n(row.wait[1]), _n(_BAR - 6)
            )
        )
    if row.run is not None:
        parts.append(
            Markup('<rect class="bar {}" x="{}" y="{}" width="{}" height="{}" rx="2"/>').format(
                fill, _n(row.run[0]), _n(top), _n(row.run[1]), _n(_BAR)
            )
        )
    parts.append(Markup("</a>"))
    return Markup("").join(parts)


def _tooltip(span: Span, now: dt.datetime) -> str:
    lines = [f"{_KINDS[span.kind]} {span.name}: {span.state_name}"]
    begin = span.start if span.start is not None else None
    waited_until = begin or (span.end if span.final else now)
    if waited_until is not None and waited_until > span.queued:
        lines.append(f"waited {duration((waited_until - span.queued).total_seconds())}")
    if begin is not None:
        ran = (_finish(span, now) - begin).total_seconds()
        lines.append(f"ran {duration(ran)}{'' if span.final else ' so far'}")
    if span.run_count > 1:
        lines.append(f"{span.run_count} attempts")
    return " · ".join(lines)


# -- The dependency graph --------------------------------------------------------------

_NODE_W = 168.0
_NODE_H = 26.0
_COLUMN_GAP = 56.0
_ROW_GAP = 10.0
_PAD = 8.0
_NODE_CHARS = 24


#: This many runs of one task or more in one layer of the graph are drawn as one node.
GROUP_AT = 6
#: The state a node of many task runs takes: the first of its runs' in this order.
_SEVERITY = (
    "FAILED", "CRASHED", "RUNNING", "CANCELLING", "PENDING", "SCHEDULED", "PAUSED",
    "CANCELLED", "COMPLETED",
)  # fmt: skip


@dataclass(frozen=True)
class Node:
    """A task run, or (`count` > 1) several runs of one task, in the graph."""

    id: str
    name: str
    state_type: str
    state_name: str
    href: str
    layer: int
    x: float
    y: float
    count: int = 1


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    arguments: tuple[str, ...]
    path: str


@dataclass(frozen=True)
class GraphLayout:
    nodes: list[Node]
    edges: list[Edge]
    width: float
    height: float
    hidden: int


def upstream(task_run: Mapping[str, Any]) -> dict[str, list[str]]:
    """The task runs a task run took inputs from: {upstream id: [argument names]}.

    The engine records `task_inputs` as {argument: [upstream task run ids]} (the
    position for positional arguments, `wait_for` for explicit waits).
    """
    found: dict[str, list[str]] = {}
    for argument, ids in (task_run.get("task_inputs") or {}).items():
        for value in ids if isinstance(ids, list) else [ids]:
            key = _canonical(value)
            if key is not None:
                found.setdefault(key, []).append(str(argument))
    return found


def _canonical(value: Any) -> str | None:
    text = str(value).replace("-", "").lower()
    if len(text) != 32:
        return None
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def layers(order: Sequence[str], parents: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Longest-path layering: a node is one layer right of its furthest upstream node.

    Nodes without known upstream nodes are in layer 0. `order` lists every node; upstream
    ids not in it are ignored. A cycle (which the engine cannot record) is broken where
    it is met, so every node gets a layer.
    """
    known = set(order)
    result: dict[str, int] = {}
    for start in order:
        if start in result:
            continue
        # Depth-first, without recursion: a chain of thousands of tasks is fine.
        stack: list[tuple[str, bool]] = [(start, False)]
        visiting: set[str] = set()
        while stack:
            node, expanded = stack.pop()
            if node in result:
                continue
            ups = [p for p in parents.get(node, ()) if p in known and p != node]
            if expanded:
                visiting.discard(node)
                result[node] = 1 + max((result[p] for p in ups if p in result), default=-1)
                continue
            visiting.add(node)
            stack.append((node, True))
            stack.extend((p, False) for p in ups if p not in result and p not in visiting)
    return result


def layout_graph(
    task_runs: Sequence[Mapping[str, Any]],
    *,
    links: Mapping[str, str] | None = None,
    max_nodes: int = 300,
    group_at: int = GROUP_AT,
) -> GraphLayout:
    """Nodes in layers left to right, edges from upstream to downstream task runs.

    `group_at` or more runs of one task in one layer (a `.map`) are one node, "fetch
    x300", colored by the worst state among them. `links` gives the page of some task
    runs (the subflow run a subflow call started); others link to their task run page.
    Within a layer, a node sits near the mean row of its upstream nodes (one sweep of
    the barycenter heuristic), which keeps edges short.
    """
    runs = {str(run["id"]): run for run in task_runs}
    parents = {node: upstream(run) for node, run in runs.items()}
    layer_of = layers(list(runs), parents)
    unit_of, members_of = _units(runs, layer_of, group_at)
    units = list(dict.fromkeys(unit_of[node] for node in runs))
    shown = units[:max_nodes]
    hidden = sum(len(members_of[unit]) for unit in units[max_nodes:])
    ups: dict[str, dict[str, list[str]]] = {unit: {} for unit in units}
    for node in runs:
        for source, arguments in parents[node].items():
            if source in unit_of and unit_of[source] != unit_of[node]:
                ups[unit_of[node]].setdefault(unit_of[source], []).extend(arguments)
    columns: dict[int, list[str]] = {}
    for unit in shown:
        columns.setdefault(layer_of[members_of[unit][0]], []).append(unit)
    row_of: dict[str, float] = {}
    for layer in sorted(columns):
        members = columns[layer]
        creation = {unit: index for index, unit in enumerate(members)}

        def rank(unit: str, creation: dict[str, int] = creation) -> tuple[float, int]:
            rows = [row_of[p] for p in ups[unit] if p in row_of]
            return (sum(rows) / len(rows) if rows else math.inf, creation[unit])

        if layer > 0:
            members.sort(key=rank)
        for index, unit in enumerate(members):
            row_of[unit] = index
    tallest = max((len(m) for m in columns.values()), default=0)
    nodes: dict[str, Node] = {}
    for layer, members in columns.items():
        offset = (tallest - len(members)) * (_NODE_H + _ROW_GAP) / 2
        for index, unit in enumerate(members):
            nodes[unit] = _node(
                unit,
                [runs[m] for m in members_of[unit]],
                links or {},
                layer=layer,
                x=_PAD + layer * (_NODE_W + _COLUMN_GAP),
                y=_PAD + offset + index * (_NODE_H + _ROW_GAP),
            )
    edges = [
        _edge(nodes[source], nodes[unit], arguments)
        for unit in shown
        for source, arguments in ups[unit].items()
        if source in nodes
    ]
    width = _PAD * 2 + (max(columns, default=0) + 1) * (_NODE_W + _COLUMN_GAP) - _COLUMN_GAP
    height = _PAD * 2 + tallest * (_NODE_H + _ROW_GAP) - _ROW_GAP
    ordered = sorted(nodes.values(), key=lambda n: (n.layer, n.y))
    return GraphLayout(ordered, edges, width, max(height, 0.0), hidden)


def _units(
    runs: Mapping[str, Mapping[str, Any]], layer_of: Mapping[str, int], group_at: int
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """({task run id: its node's id}, {node id: its task run ids}); many runs of one task
    in one layer share a node."""
    buckets: dict[tuple[int, str], list[str]] = {}
    for node, run in runs.items():
        buckets.setdefault((layer_of[node], _task_of(run)), []).append(node)
    unit_of: dict[str, str] = {}
    members_of: dict[str, list[str]] = {}
    for (layer, _), members in buckets.items():
        if len(members) >= group_at:
            unit = f"group-{layer}-{members[0]}"
            members_of[unit] = members
            unit_of.update((member, unit) for member in members)
        else:
            for member in members:
                unit_of[member] = member
                members_of[member] = [member]
    return unit_of, members_of


def _task_of(run: Mapping[str, Any]) -> str:
    return str(run.get("task_key") or str(run.get("name", "")).rsplit("-", 1)[0])


def _node(
    unit: str,
    members: list[Mapping[str, Any]],
    links: Mapping[str, str],
    *,
    layer: int,
    x: float,
    y: float,
) -> Node:
    """The node of one task run, or of the many runs of one task in a layer."""
    worst = min(members, key=lambda run: _severity(str(run.get("state_type"))))
    worst_id = str(worst["id"])
    href = links.get(worst_id, f"/task-runs/{worst_id}")
    if len(members) == 1:
        return Node(
            id=unit,
            name=str(worst.get("name") or unit),
            state_type=str(worst.get("state_type") or "PENDING"),
            state_name=str(worst.get("state_name") or ""),
            href=href,
            layer=layer,
            x=x,
            y=y,
        )
    task = _task_of(worst).removeprefix("subflow:").rsplit(".", 1)[-1]
    counts: dict[str, int] = {}
    for run in members:
        name = str(run.get("state_name") or run.get("state_type"))
        counts[name] = counts.get(name, 0) + 1
    return Node(
        id=unit,
        name=f"{task} \u00d7{len(members)}",
        state_type=str(worst.get("state_type") or "PENDING"),
        state_name=", ".join(f"{count} {name}" for name, count in counts.items()),
        href=href,
        layer=layer,
        x=x,
        y=y,
        count=len(members),
    )


def _severity(state_type: str) -> int:
    return _SEVERITY.index(state_type) if state_type in _SEVERITY else len(_SEVERITY)


def _edge(source: Node, target: Node, arguments: Sequence[str]) -> Edge:
    x1, y1 = source.x + _NODE_W, source.y + _NODE_H / 2
    x2, y2 = target.x - 3, target.y + _NODE_H / 2
    middle = (x1 + x2) / 2
    path = f"M{_n(x1)},{_n(y1)} C{_n(middle)},{_n(y1)} {_n(middle)},{_n(y2)} {_n(x2)},{_n(y2)}"
    return Edge(source.id, target.id, tuple(dict.fromkeys(arguments)), path)


def graph(layout: GraphLayout) -> Markup:
    """A dependency graph laid out by `layout_graph` as an inline SVG (empty without nodes)."""
    if not layout.nodes:
        return Markup("")
    names = {node.id: node.name for node in layout.nodes}
    parts = [
        Markup(
            '<svg class="chart graph" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" '
            'aria-label="Dependencies between {n} task runs" data-testid="graph">'
            '<defs><marker id="graph-arrow" viewBox="0 0 8 8" refX="7" refY="4" '
            'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
            '<path d="M0,0 L8,4 L0,8 z" class="arrow"/></marker></defs>'
        ).format(w=_n(layout.width), h=_n(layout.height), n=len(layout.nodes))
    ]
    for edge in layout.edges:
        parts.append(
            Markup(
                '<path class="edge" d="{}" marker-end="url(#graph-arrow)" data-source="{}" '
                'data-target="{}"><title>{} \u2192 {} ({})</title></path>'
            ).format(
                edge.path,
                edge.source,
                edge.target,
                names[edge.source],
                names[edge.target],
                ", ".join(_argument(a) for a in edge.arguments),
            )
        )
    for node in layout.nodes:
        parts.append(
            Markup(
                '<a href="{href}" class="node" data-run-id="{id}" data-state="{state}" '
                'data-count="{count}">'
                "<title>{name}: {state_name}</title>"
                '<rect class="fill-{fill}" x="{x}" y="{y}" width="{w}" height="{h}" rx="5"/>'
                '<text x="{tx}" y="{ty}">{label}</text></a>'
            ).format(
                href=node.href,
                id=node.id,
                count=node.count,
                state=node.state_type,
                name=node.name,
                state_name=node.state_name,
                fill=node.state_type.lower(),
                x=_n(node.x),
                y=_n(node.y),
                w=_n(_NODE_W),
                h=_n(_NODE_H),
                tx=_n(node.x + 8),
                ty=_n(node.y + _NODE_H / 2 + 4),
                label=_truncate(node.name, _NODE_CHARS),
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _argument(name: str) -> str:
    if name.isdigit():
        return f"argument {int(name) + 1}"
    return name


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _n(value: float) -> str:
    """A coordinate as short SVG text: 12, 12.5."""
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text
