"""SVG charts for the pages: pure functions from the data to escaped markup.

Every piece of text and every attribute goes through `Markup.format`, which escapes it,
so a chart is as safe as the rest of a page whatever the API answered. Colors come
from the stylesheet (`fill-<state>` classes), so charts follow the light and dark
themes.

Example:
    window = time_window("24h", now=time.time())
    history = await api.get("/flow_runs/history", since=..., until=..., buckets=...)
    svg = stacked_bars([Bucket.of(b) for b in history["buckets"]])
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

#: Stacking order, bottom to top: the runs that went well under the ones that did not.
STATE_ORDER = (
    "COMPLETED",
    "RUNNING",
    "PENDING",
    "SCHEDULED",
    "PAUSED",
    "CANCELLING",
    "CANCELLED",
    "CRASHED",
    "FAILED",
)

#: Time windows of the runs chart: name -> (seconds, buckets).
WINDOWS: dict[str, tuple[int, int]] = {
    "1h": (3600, 30),
    "24h": (86_400, 48),
    "7d": (7 * 86_400, 56),
}
DEFAULT_WINDOW = "24h"


@dataclass(frozen=True)
class Window:
    """A chart's time window: `buckets` equal parts from `since` to `until`."""

    name: str
    since: dt.datetime
    until: dt.datetime
    buckets: int

    @property
    def bucket_seconds(self) -> float:
        return (self.until - self.since).total_seconds() / self.buckets

    @property
    def bucket_label(self) -> str:
        """A bar's span in words: "2 min", "30 min", "3 h"."""
        seconds = self.bucket_seconds
        if seconds >= 3600 and seconds % 3600 == 0:
            return f"{seconds / 3600:g} h"
        if seconds >= 60:
            return f"{seconds / 60:g} min"
        return f"{seconds:g} s"


def time_window(name: str, now: float) -> Window:
    """The window `name` ("1h", "24h", "7d"; others mean the default) ending at `now`.

    Its end is `now` rounded up to a whole bucket, so that the buckets stay the
    same from one refresh to the next and a run only ever moves to a later one.
    """
    span, count = WINDOWS.get(name, WINDOWS[DEFAULT_WINDOW])
    width = span / count
    until = math.ceil(now / width) * width
    return Window(
        name=name if name in WINDOWS else DEFAULT_WINDOW,
        since=dt.datetime.fromtimestamp(until - span, tz=dt.UTC),
        until=dt.datetime.fromtimestamp(until, tz=dt.UTC),
        buckets=count,
    )


@dataclass(frozen=True)
class Bucket:
    """Runs of one time bucket, per state type."""

    start: dt.datetime
    end: dt.datetime
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Bucket:
        """A bucket of `GET /api/flow_runs/history` (ISO times, counts by state type)."""
        return cls(
            start=_moment(data["start"]),
            end=_moment(data["end"]),
            counts={str(k): int(v) for k, v in data["counts"].items()},
        )


def _moment(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def nice_ticks(maximum: int, count: int = 4) -> list[int]:
    """Round values for a count axis from 0 up to at least `maximum`, about `count`
    steps of 1, 2 or 5 times a power of ten.

    >>> nice_ticks(0), nice_ticks(7), nice_ticks(130)
    ([0, 1], [0, 2, 4, 6, 8], [0, 50, 100, 150])
    """
    if maximum <= 0:
        return [0, 1]
    raw = maximum / count
    power = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    step = max(1, int(step))
    top = math.ceil(maximum / step) * step
    return list(range(0, top + 1, step))


def state_totals(buckets: Sequence[Bucket]) -> dict[str, int]:
    """Runs per state type over all `buckets`, in stacking order."""
    totals: dict[str, int] = {}
    for bucket in buckets:
        for state, count in bucket.counts.items():
            totals[state] = totals.get(state, 0) + count
    return {state: totals[state] for state in _ordered(totals)}


def _ordered(states: Mapping[str, int] | Sequence[str]) -> list[str]:
    known = [s for s in STATE_ORDER if s in states]
    return known + sorted(s for s in states if s not in STATE_ORDER)


def _label_format(span: dt.timedelta) -> str:
    return "%H:%M" if span <= dt.timedelta(days=1) else "%b %d %H:%M"


def _when(moment: dt.datetime, fmt: str) -> str:
    return moment.astimezone(dt.UTC).strftime(fmt)


#: A link for the runs of one bucket in one state (None: no link).
SegmentLink = Callable[[Bucket, str], str | None]


def stacked_bars(
    buckets: Sequence[Bucket],
    *,
    link: SegmentLink | None = None,
    width: int = 960,
    height: int = 220,
    title: str = "Flow runs over time, by state",
) -> Markup:
    """A bar per bucket, stacked by state type, with a count axis and time labels (UTC).

    Each segment has a tooltip ("12 Completed, 10:00-10:30 UTC") and, with `link`,
    links to those runs.
    """
    left, right, top, bottom = 44, 8, 10, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(max((b.total for b in buckets), default=0))
    scale = plot_h / ticks[-1]
    parts: list[Markup] = [
        Markup(
            '<svg class="chart runs-chart" viewBox="0 0 {w} {h}" role="img" aria-label="{t}" '
            'data-testid="runs-chart"><title>{t}</title>'
        ).format(w=width, h=height, t=title)
    ]
    for tick in ticks:
        y = top + plot_h - tick * scale
        parts.append(
            Markup(
                '<line class="grid-line" x1="{x1}" x2="{x2}" y1="{y}" y2="{y}"/>'
                '<text x="{tx}" y="{ty}" text-anchor="end">{label}</text>'
            ).format(
                x1=left, x2=width - right, y=_n(y), tx=left - 6, ty=_n(y + 4), label=f"{tick:,}"
            )
        )
    if not buckets:
        parts.append(Markup("</svg>"))
        return Markup("").join(parts)
    slot = plot_w / len(buckets)
    bar = max(1.0, slot * 0.78)
    fmt = _label_format(buckets[-1].end - buckets[0].start)
    every = max(1, math.ceil(len(buckets) / (8 if fmt == "%H:%M" else 6)))
    for index, bucket in enumerate(buckets):
        x = left + index * slot + (slot - bar) / 2
        y = top + plot_h
        span = f"{_when(bucket.start, fmt)}-{_when(bucket.end, fmt)} UTC"
        for state in _ordered(bucket.counts):
            count = bucket.counts[state]
            if count <= 0:
                continue
            h = count * scale
            y -= h
            segment = Markup(
                '<rect class="fill-{cls}" x="{x}" y="{y}" width="{w}" height="{h}" '
                'data-state="{state}" data-count="{count}">'
                "<title>{count} {name}, {span}</title></rect>"
            ).format(
                cls=state.lower(),
                x=_n(x),
                y=_n(y),
                w=_n(bar),
                h=_n(h),
                state=state,
                count=count,
                name=state.title(),
                span=span,
            )
            href = link(bucket, state) if link is not None else None
            if href:
                segment = Markup('<a href="{}">{}</a>').format(href, segment)
            parts.append(segment)
        if index % every == 0:
            parts.append(
                Markup('<text x="{x}" y="{y}" text-anchor="start">{label}</text>').format(
                    x=_n(left + index * slot), y=height - 8, label=_when(bucket.start, fmt)
                )
            )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def _n(value: float) -> str:
    """A coordinate with at most 2 decimals (short markup)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
