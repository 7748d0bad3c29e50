"""The Gantt timeline of one flow run as SVG: the run, its task runs and subflow runs.

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
        ).format(svg_number(layout.width), svg_number(layout.height), len(layout.rows))
    ]
    parts.append(Markup('<g class="axis">'))
    rows_end = _AXIS + _ROW * len(layout.rows)
    label_ys = [12.0] + ([rows_end + 14] if len(layout.rows) > _AXIS_BELOW else [])
    for tick_x, label in layout.ticks:
        parts.append(
            Markup('<line class="grid-line" x1="{x}" x2="{x}" y1="{top}" y2="{bottom}"/>').format(
                x=svg_number(tick_x), top=svg_number(_AXIS - 6), bottom=svg_number(rows_end)
            )
        )
        # The last label would stick out of the picture when centered.
        anchor = "end" if tick_x > layout.width - 30 else "middle"
        for label_y in label_ys:
            parts.append(
                Markup('<text x="{}" y="{}" text-anchor="{}">{}</text>').format(
                    svg_number(tick_x), svg_number(label_y), anchor, label
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
            ).format(
                x=svg_number(layout.now_x), top=svg_number(_AXIS - 6), bottom=svg_number(rows_end)
            )
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
            svg_number(row.y), svg_number(_ROW)
        ),
        Markup('<text class="label" x="4" y="{}">{}{}</text>').format(
            svg_number(row.y + _ROW / 2 + 4),
            Markup("&#8618; ") if span.kind == "subflow" else "",
            truncate(span.name, _LABEL_CHARS - (2 if span.kind == "subflow" else 0)),
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
                svg_number(left),
                svg_number(top + 3 if waiting else top),
                svg_number(size),
                svg_number(_BAR - 6 if waiting else _BAR),
                state_type.title(),
            )
        )
    if row.states:
        parts.append(Markup("</a>"))
        return Markup("").join(parts)
    if row.wait is not None:
        parts.append(
            Markup('<rect class="wait {}" x="{}" y="{}" width="{}" height="{}" rx="2"/>').format(
                fill,
                svg_number(row.wait[0]),
                svg_number(top + 3),
                svg_number(row.wait[1]),
                svg_number(_BAR - 6),
            )
        )
    if row.run is not None:
        parts.append(
            Markup('<rect class="bar {}" x="{}" y="{}" width="{}" height="{}" rx="2"/>').format(
                fill,
                svg_number(row.run[0]),
                svg_number(top),
                svg_number(row.run[1]),
                svg_number(_BAR),
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


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def svg_number(value: float) -> str:
    """A coordinate as short SVG text: 12, 12.5."""
    text = f"{value:.1f}".removesuffix(".0")
    return "0" if text == "-0" else text
