"""Tag concurrency limits: a task run tagged T holds a slot of "tag:T" while it runs."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from headwater import flow, tags, task
from headwater.client.api import get_client
from headwater.concurrency import _tags
from headwater.task_runners import ThreadPoolTaskRunner

Interval = tuple[float, float]


def create(name: str, limit: int, **values: object) -> None:
    get_client().request(
        "POST", "/concurrency_limits", json={"name": name, "limit": limit, **values}
    )
    _tags.forget()  # else the next check may be up to REFRESH_SECONDS late


def overlap(intervals: list[Interval]) -> bool:
    ordered = sorted(intervals)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))


def run_pair(tag_names: list[str]) -> list[Interval]:
    """Two task runs with these tags, submitted together; when each one's body ran."""
    intervals: list[Interval] = []
    lock = threading.Lock()

    @task(tags=tag_names)
    def query(_: int) -> None:
        start = time.monotonic()
        time.sleep(0.3)
        with lock:
            intervals.append((start, time.monotonic()))

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def pipeline() -> None:
        query.map(range(2)).wait()

    pipeline()
    return intervals


def test_tagged_task_runs_never_overlap_while_untagged_ones_do(embedded: str) -> None:
    create("tag:db", 1)
    tagged = run_pair(["db", "etl"])
    assert len(tagged) == 2
    assert not overlap(tagged)
    assert overlap(run_pair([]))
    assert overlap(run_pair(["other"]))  # a tag without a limit does not wait


def test_tag_limit_against_a_server(remote: str) -> None:
    create("tag:db", 1)
    tagged = run_pair(["db"])
    assert not overlap(tagged)
    (limit,) = get_client().request("GET", "/concurrency_limits", params={"name_prefix": "tag:"})[
        "items"
    ]
    assert limit["active_slots"] == 0


def test_tags_from_the_context_count_and_slots_come_back_on_failure(embedded: str) -> None:
    create("tag:db", 1)
    seen: list[float] = []

    @task
    def fails() -> None:
        seen.append(get_client().request("GET", "/concurrency_limits/tag:db")["active_slots"])
        raise ValueError("no")

    @flow
    def pipeline() -> str:
        with tags("db"):
            state = fails(return_state=True)
        return state.type.value

    assert pipeline() == "FAILED"
    assert seen == [1]  # held while it ran
    assert get_client().request("GET", "/concurrency_limits/tag:db")["active_slots"] == 0


def test_inactive_tag_limits_do_not_wait(embedded: str) -> None:
    create("tag:db", 1, active=False)
    assert overlap(run_pair(["db"]))


def test_a_tag_limit_of_zero_fails_the_task_run(embedded: str) -> None:
    create("tag:db", 0)

    @task(tags=["db"])
    def never() -> None:
        raise AssertionError("must not run")

    @flow
    def pipeline() -> tuple[str, str | None]:
        state = never(return_state=True)
        return state.type.value, state.message

    state_type, message = pipeline()
    assert state_type == "FAILED"
    assert message is not None and "'tag:db' has 0 slots" in message


def test_async_tagged_task_runs_never_overlap(embedded: str) -> None:
    create("tag:db", 1)
    intervals: list[Interval] = []

    @task(tags=["db"])
    async def query() -> None:
        start = time.monotonic()
        await asyncio.sleep(0.2)
        intervals.append((start, time.monotonic()))

    @flow
    async def pipeline() -> None:
        await asyncio.gather(query(), query(), query())

    asyncio.run(pipeline())
    assert len(intervals) == 3
    assert not overlap(intervals)


def test_new_tag_limits_are_seen_within_the_refresh_interval(
    embedded: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = get_client()
    now = [1000.0]  # a fake clock: a slow machine must not age the cache by itself
    monkeypatch.setattr(_tags, "monotonic", lambda: now[0])
    monkeypatch.setattr(_tags, "REFRESH_SECONDS", 0.5)
    assert _tags.limited(["db"]) == []  # read (the store has no limit)
    client.request("POST", "/concurrency_limits", json={"name": "tag:db", "limit": 1})
    now[0] += 0.4
    assert _tags.limited(["db"]) == []  # cached
    now[0] += 0.15
    assert _tags.limited(["db", "x"]) == ["tag:db"]


TAGGED_SCRIPT = textwrap.dedent(
    """
    import sys
    from headwater import flow, task

    @task(tags=["db", "etl"])
    def step(x):
        return x + 1

    @flow
    def pipeline():
        return [step(i) for i in range(3)]

    assert pipeline() == [1, 2, 3]
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "fastapi"))
    print(" ".join(heavy) or "none")
    """
)


def test_tagged_task_runs_without_tag_limits_load_nothing_heavy(
    embedded: str, tmp_path: Path
) -> None:
    if not embedded.startswith("sqlite"):
        pytest.skip("the embedded PostgreSQL writer uses SQLAlchemy anyway")
    env = dict(os.environ)
    first = subprocess.run(
        [sys.executable, "-c", TAGGED_SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    second = subprocess.run(  # on an existing store (the first run created it)
        [sys.executable, "-c", TAGGED_SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    assert second.stdout.split() == ["none"], (first.stdout, second.stdout, second.stderr)
