"""The dependency graph of one flow run's task runs as SVG, from their `task_inputs`.

Pure functions, like `headwater.ui.timeline`: API answers in, `Markup` out; the layout
(layers left to right, by longest path) is computed apart from drawing, and every text
taken from a run goes through `Markup.format`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from headwater.ui.timeline import svg_number, truncate

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
    n = svg_number
    path = f"M{n(x1)},{n(y1)} C{n(middle)},{n(y1)} {n(middle)},{n(y2)} {n(x2)},{n(y2)}"
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
        ).format(w=svg_number(layout.width), h=svg_number(layout.height), n=len(layout.nodes))
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
                x=svg_number(node.x),
                y=svg_number(node.y),
                w=svg_number(_NODE_W),
                h=svg_number(_NODE_H),
                tx=svg_number(node.x + 8),
                ty=svg_number(node.y + _NODE_H / 2 + 4),
                label=truncate(node.name, _NODE_CHARS),
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _argument(name: str) -> str:
    if name.isdigit():
        return f"argument {int(name) + 1}"
    return name
