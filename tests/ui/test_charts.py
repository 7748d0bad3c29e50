"""The SVG chart builders: windows and buckets, axis values, bar sizes, and escaping."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from headwater.ui import charts

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def _buckets(*counts: dict[str, int], minutes: int = 30) -> list[charts.Bucket]:
    width = dt.timedelta(minutes=minutes)
    return [
        charts.Bucket(start=T0 + i * width, end=T0 + (i + 1) * width, counts=c)
        for i, c in enumerate(counts)
    ]


def _rects(svg: str) -> list[dict[str, str]]:
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', tag)) for tag in re.findall(r"<rect[^>]*>", svg)]


@pytest.mark.parametrize(
    ("name", "seconds", "buckets", "label"),
    [("1h", 3600, 30, "2 min"), ("24h", 86_400, 48, "30 min"), ("7d", 604_800, 56, "3 h")],
)
def test_windows_end_on_a_whole_bucket_after_now(
    name: str, seconds: int, buckets: int, label: str
) -> None:
    now = T0.timestamp() + 61.5  # 12:01:01.5

    window = charts.time_window(name, now=now)

    width = seconds / buckets
    assert window.buckets == buckets
    assert window.bucket_label == label
    assert (window.until - window.since).total_seconds() == seconds
    assert window.until.timestamp() % width == 0
    assert now <= window.until.timestamp() < now + width
    # The next refresh, a moment later, has the same buckets.
    assert charts.time_window(name, now=now + 1) == window


def test_an_unknown_window_is_the_default() -> None:
    assert charts.time_window("2y", now=T0.timestamp()).name == "24h"


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (10, [0, 5, 10]),
        (130, [0, 50, 100, 150]),
        (4_321, [0, 2000, 4000, 6000]),
    ],
)
def test_count_axis_ticks_are_round_and_cover_the_maximum(maximum: int, ticks: list[int]) -> None:
    assert charts.nice_ticks(maximum) == ticks


def test_bars_stack_states_in_order_with_heights_proportional_to_counts() -> None:
    buckets = _buckets({"FAILED": 2, "COMPLETED": 6}, {}, {"COMPLETED": 3})

    svg = str(charts.stacked_bars(buckets, height=100 + 36))  # a plot 100 px high

    rects = _rects(svg)
    assert [(r["data-state"], r["data-count"]) for r in rects] == [
        ("COMPLETED", "6"),
        ("FAILED", "2"),
        ("COMPLETED", "3"),
    ]
    # The axis goes to 8 (ticks 0, 2, 4, 6, 8): 100 px for 8 runs.
    completed, failed, later = rects
    assert float(completed["height"]) == pytest.approx(75)
    assert float(failed["height"]) == pytest.approx(25)
    # Failed sits on top of Completed; both end on the axis line.
    assert float(failed["y"]) + float(failed["height"]) == pytest.approx(float(completed["y"]))
    assert float(completed["y"]) + 75 == pytest.approx(float(later["y"]) + float(later["height"]))
    assert completed["class"] == "fill-completed"
    assert "<title>6 Completed, 12:00-12:30 UTC</title>" in svg
    assert ">12:00</text>" in svg


def test_segments_link_to_their_runs() -> None:
    def link(bucket: charts.Bucket, state: str) -> str:
        return f"/flow-runs?since={bucket.start:%H%M}&state_type={state}"

    svg = str(charts.stacked_bars(_buckets({"FAILED": 1}), link=link))

    assert '<a href="/flow-runs?since=1200&amp;state_type=FAILED"><rect' in svg


def test_text_and_attributes_are_escaped() -> None:
    hostile = '"><script>alert(1)</script>'
    buckets = _buckets({hostile: 1})

    svg = str(
        charts.stacked_bars(buckets, link=lambda b, s: "/x?" + hostile, title="<b>" + hostile)
    )

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert '"><' not in svg.replace('"><rect', "").replace('"><title>', "")
    assert svg.count("<svg") == 1 and svg.endswith("</svg>")


def test_an_empty_window_draws_the_axis_only() -> None:
    svg = str(charts.stacked_bars(_buckets({}, {})))

    assert "<rect" not in svg
    assert ">0</text>" in svg and ">1</text>" in svg


def test_totals_add_up_every_bucket_in_stacking_order() -> None:
    buckets = _buckets({"FAILED": 1, "COMPLETED": 2}, {"COMPLETED": 3, "ODD": 1})

    assert list(charts.state_totals(buckets).items()) == [
        ("COMPLETED", 5),
        ("FAILED", 1),
        ("ODD", 1),
    ]


def test_buckets_read_the_api_answer() -> None:
    bucket = charts.Bucket.of(
        {"start": "2026-03-01T12:00:00Z", "end": "2026-03-01T12:30:00Z", "counts": {"RUNNING": 2}}
    )
    assert (bucket.start, bucket.total) == (T0, 2)
