"""Cache policies, Cached states and resume from the persisted results of a flow run."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from headwater import flow, task
from headwater.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CachePolicy,
    CompoundCachePolicy,
)
from headwater.engine import caching
from headwater.task_runners import ThreadPoolTaskRunner

from .conftest import Store


def test_policies_compose_with_plus() -> None:
    assert DEFAULT == INPUTS + TASK_SOURCE + RUN_ID
    assert isinstance(INPUTS + TASK_SOURCE, CompoundCachePolicy)
    assert INPUTS + NO_CACHE == INPUTS
    assert NO_CACHE + INPUTS == INPUTS
    assert (INPUTS + TASK_SOURCE) + INPUTS == INPUTS + TASK_SOURCE


def test_a_cache_hit_ends_completed_named_cached(store: Store) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def slow_square(x: int) -> int:
        calls.append(x)
        return x * x

    @flow
    def pipeline(x: int) -> int:
        return slow_square(x)

    assert pipeline(3) == 9
    assert pipeline(3) == 9  # another flow run: INPUTS + TASK_SOURCE has no run id
    assert pipeline(4) == 16
    assert calls == [3, 4]
    second = store.task_runs()[1]
    assert (second["state_type"], second["state_name"]) == ("COMPLETED", "Cached")
    assert second["run_count"] == 0
    assert store.states(task_run_id=second["id"]) == [
        ("PENDING", "Pending"),
        ("COMPLETED", "Cached"),
    ]


def test_default_policy_caches_within_a_flow_run_only(store: Store) -> None:
    calls: list[str] = []

    @task(persist_result=True)  # cache_policy DEFAULT = INPUTS + TASK_SOURCE + RUN_ID
    def load(name: str) -> str:
        calls.append(name)
        return name.upper()

    @flow
    def pipeline() -> list[str]:
        return [load("a"), load("a"), load("b")]

    assert pipeline() == ["A", "A", "B"]
    assert pipeline() == ["A", "A", "B"]
    assert calls == ["a", "b", "a", "b"]


def test_cache_key_fn(store: Store) -> None:
    calls: list[str] = []
    seen: list[Any] = []

    def by_first_letter(context: Any, parameters: dict[str, Any]) -> str:
        seen.append(context.task.name)
        return f"letter-{parameters['word'][0]}"

    @task(cache_key_fn=by_first_letter)
    def shout(word: str) -> str:
        calls.append(word)
        return word.upper()

    assert shout("apple") == "APPLE"
    assert shout("avocado") == "APPLE"  # same key
    assert shout("banana") == "BANANA"
    assert calls == ["apple", "banana"]
    assert seen == ["shout", "shout", "shout"]


def test_a_custom_cache_policy(store: Store) -> None:
    class ByLength(CachePolicy):
        def compute_key(
            self,
            task_ctx: Any,
            inputs: dict[str, Any],
            flow_parameters: dict[str, Any] | None,
            **kwargs: Any,
        ) -> str | None:
            return f"len-{len(inputs['word'])}"

    @task(cache_policy=ByLength())
    def echo(word: str) -> str:
        return word

    assert echo("abc") == "abc"
    assert echo("xyz") == "abc"


def test_inputs_minus_a_parameter(store: Store) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS - "verbose")
    def compute(x: int, verbose: bool = False) -> int:
        calls.append(x)
        return x + 1

    assert compute(1) == 2
    assert compute(1, verbose=True) == 2
    assert calls == [1]


def test_flow_parameters_policy(store: Store) -> None:
    calls: list[str] = []

    @task(cache_policy=FLOW_PARAMETERS)
    def setup() -> str:
        calls.append("setup")
        return "ready"

    @flow
    def pipeline(env: str) -> str:
        return setup()

    pipeline("dev")
    pipeline("dev")
    pipeline("prod")
    assert calls == ["setup", "setup"]


def test_no_cache_with_persist_result_persists_but_never_hits(store: Store, tmp_path: Path) -> None:
    calls: list[int] = []

    @task(cache_policy=NO_CACHE, persist_result=True, result_storage=tmp_path / "r")
    def fresh(x: int) -> int:
        calls.append(x)
        return x

    fresh(1)
    fresh(1)
    assert calls == [1, 1]
    assert len([p for p in (tmp_path / "r").iterdir() if not p.name.startswith(".")]) == 2


def test_cache_expiration(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(caching, "now", lambda: clock[0])
    calls: list[int] = []

    @task(cache_policy=INPUTS, cache_expiration=datetime.timedelta(minutes=10))
    def fetch(x: int) -> int:
        calls.append(x)
        return x

    assert fetch(1, return_state=True).name == "Completed"
    clock[0] += 9 * 60
    assert fetch(1, return_state=True).name == "Cached"
    clock[0] += 2 * 60  # 11 minutes after the record was written
    assert fetch(1, return_state=True).name == "Completed"
    assert calls == [1, 1]


def test_cache_expiration_must_be_a_timedelta() -> None:
    with pytest.raises(TypeError, match=r"cache_expiration must be a datetime.timedelta, got 60"):

        @task(cache_policy=INPUTS, cache_expiration=60)  # type: ignore[arg-type]
        def nothing() -> None: ...


def test_refresh_cache_recomputes_and_replaces_the_record(store: Store) -> None:
    counter = [0]

    @task(cache_policy=INPUTS)
    def tick(name: str) -> int:
        counter[0] += 1
        return counter[0]

    assert tick("a") == 1
    assert tick.with_options(refresh_cache=True)("a") == 2
    assert tick("a") == 2  # the refreshed value is the cached one now


def test_concurrent_runs_of_one_key_compute_once(store: Store) -> None:
    calls: list[int] = []
    lock = threading.Lock()

    @task(cache_policy=INPUTS)
    def expensive(x: int) -> int:
        with lock:
            calls.append(x)
        time.sleep(0.2)
        return x * 10

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
    def pipeline() -> list[str]:
        futures = expensive.map([7] * 8)
        return [f.wait() or f.state.name for f in futures]  # type: ignore[func-returns-value]

    names = pipeline()
    assert calls == [7]
    assert sorted(names) == ["Cached"] * 7 + ["Completed"]


def test_unhashable_input_runs_uncached_with_a_clear_message(store: Store) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def use_lock(guard: Any, x: int) -> int:
        calls.append(x)
        return x

    @flow
    def pipeline() -> list[int]:
        guard = threading.Lock()
        return [use_lock(guard, 1), use_lock(guard, 1)]

    assert pipeline() == [1, 1]
    assert calls == [1, 1]
    messages = [log["message"] for log in store.logs() if log["task_run_id"] is not None]
    assert len(messages) == 2
    assert "Task 'use_lock': the cache policy cannot hash parameter 'guard'" in messages[0]
    assert "cache_key_fn" in messages[0] and "NO_CACHE" in messages[0]
    assert all(run["state_name"] == "Completed" for run in store.task_runs())


def test_async_tasks_are_cached(store: Store) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    async def fetch(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.05)
        return x * 2

    @flow
    async def pipeline() -> list[int]:
        return list(await asyncio.gather(fetch(1), fetch(1), fetch(2)))

    assert asyncio.run(pipeline()) == [2, 2, 4]
    assert sorted(calls) == [1, 2]  # fetch(1) ran once; the two may start in either order


def test_results_persist_by_default_setting(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.settings import reset_settings

    monkeypatch.setenv("HEADWATER_RESULTS_PERSIST_BY_DEFAULT", "true")
    reset_settings()
    calls: list[int] = []

    @task
    def plain(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def pipeline() -> list[int]:
        return [plain(1), plain(1)]

    assert pipeline() == [1, 1]
    assert calls == [1]


# -- resume ---------------------------------------------------------------------------------
def test_flow_retry_reuses_the_results_of_completed_tasks(store: Store) -> None:
    executions: dict[str, int] = {}
    attempts = [0]

    def count(name: str) -> None:
        executions[name] = executions.get(name, 0) + 1

    @task
    def extract(source: str) -> list[int]:
        count("extract")
        return [1, 2, 3]

    @task
    def transform(rows: list[int]) -> list[int]:
        count("transform")
        return [r * 10 for r in rows]

    @task
    def load(rows: list[int]) -> int:
        count("load")
        attempts[0] += 1
        if attempts[0] == 1:
            raise ConnectionError("database went away")
        return sum(rows)

    @flow(retries=1, persist_result=True)
    def etl(source: str) -> int:
        rows = extract(source)
        mapped = transform.map([rows, rows])
        return load(mapped[0].result())

    assert etl("s3://bucket") == 60
    assert executions == {"extract": 1, "transform": 1, "load": 2}
    states = {run["name"]: run["state_name"] for run in store.task_runs()}
    # the two mapped runs share a key: one computes, the other waits for its record
    assert sorted([states.pop("transform-0"), states.pop("transform-1")]) == [
        "Cached",
        "Completed",
    ]
    assert states == {
        "extract-0": "Completed",
        "load-0": "Failed",
        "extract-1": "Cached",
        "transform-2": "Cached",
        "transform-3": "Cached",
        "load-1": "Completed",
    }


def test_a_new_process_executing_the_same_flow_run_reuses_its_results(
    store: Store,
) -> None:
    from headwater.engine.flow_engine import AdoptedRun, run_flow_sync

    executions: list[str] = []
    fail = [True]

    @task(persist_result=True)
    def step(name: str) -> str:
        executions.append(name)
        if name == "three" and fail[0]:
            raise RuntimeError("crash")
        return name

    @flow
    def steps() -> list[str]:
        return [step("one"), step("two"), step("three")]

    first = steps(return_state=True)
    assert first.is_failed()
    run = store.flow_run()
    fail[0] = False
    # What a worker's process does for a retried deployment run: run the flow under
    # the existing flow run id (attempt 2).
    adopted = AdoptedRun(
        hex_id=run["id"].hex, name=run["name"], tags=[], run_count=2, started=time.time()
    )
    assert run_flow_sync(steps, (), {}, False, adopt=adopted) == ["one", "two", "three"]
    assert executions == ["one", "two", "three", "three"]
    second_attempt = store.task_runs()[3:]
    assert [r["state_name"] for r in second_attempt] == ["Cached", "Cached", "Completed"]
