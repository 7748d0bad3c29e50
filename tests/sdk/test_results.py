"""Result persistence through the public API: storage, serializers, storage keys, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from headwater import flow, task
from headwater.cache_policies import INPUTS
from headwater.exceptions import SerializationError
from headwater.results import get_storage, read_record

from .conftest import Store


def _records(directory: Path) -> list[str]:
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def test_persist_result_writes_a_record_to_the_default_directory(
    store: Store, tmp_path: Path
) -> None:
    @task(persist_result=True)
    def double(x: int) -> int:
        return x * 2

    @flow
    def pipeline() -> int:
        return double(21)

    assert pipeline() == 42
    results = tmp_path / "home" / "results"
    (key,) = _records(results)
    record = read_record(get_storage(results), key)
    assert record is not None
    assert record.value == 42
    assert record.metadata.serializer == "pickle"
    assert record.metadata.storage_key == key
    assert record.metadata.expiration is None
    assert record.metadata.created > 0


def test_local_storage_path_setting_moves_the_default_directory(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headwater.settings import reset_settings

    monkeypatch.setenv("HEADWATER_LOCAL_STORAGE_PATH", str(tmp_path / "elsewhere"))
    reset_settings()

    @task(persist_result=True)
    def one() -> int:
        return 1

    one()
    assert len(_records(tmp_path / "elsewhere")) == 1


def test_result_storage_as_a_path_string(store: Store, tmp_path: Path) -> None:
    @task(result_storage=str(tmp_path / "mine"))
    def word() -> str:
        return "hello"

    @flow
    def pipeline() -> str:
        return word()

    assert pipeline() == "hello"
    (key,) = _records(tmp_path / "mine")
    record = read_record(get_storage(str(tmp_path / "mine")), key)
    assert record is not None and record.value == "hello"


def test_result_storage_memory_url(store: Store, tmp_path: Path) -> None:
    url = f"memory://headwater-test-{uuid.uuid4().hex}"
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_storage=url, result_storage_key="answer-{x}.pkl")
    def answer(x: int) -> dict[str, int]:
        calls.append(x)
        return {"answer": x}

    @flow
    def pipeline() -> list[dict[str, int]]:
        return [answer(42), answer(42)]

    assert pipeline() == [{"answer": 42}, {"answer": 42}]
    assert calls == [42]
    record = read_record(get_storage(url), "answer-42.pkl")
    assert record is not None and record.value == {"answer": 42}
    assert not (tmp_path / "home" / "results").exists()


@pytest.mark.parametrize(
    "serializer", ["pickle", "cloudpickle", "json", "compressed/pickle", "compressed/json"]
)
def test_serializers_round_trip_through_a_cache_hit(
    store: Store, tmp_path: Path, serializer: str
) -> None:
    value = {"rows": [1, 2, 3], "name": "ü-report", "ok": True, "ratio": 0.5}

    @task(cache_policy=INPUTS, result_serializer=serializer, result_storage=tmp_path / "r")
    def report(day: str) -> dict[str, Any]:
        return dict(value)

    first = report("2024-01-01", return_state=True)
    second = report("2024-01-01", return_state=True)
    assert first.name == "Completed"
    assert second.name == "Cached"
    assert second.result() == value
    (key,) = _records(tmp_path / "r")
    record = read_record(get_storage(tmp_path / "r"), key)
    assert record is not None and record.metadata.serializer == serializer


def test_pickle_serializer_handles_what_plain_pickle_cannot(store: Store, tmp_path: Path) -> None:
    @task(cache_policy=INPUTS, result_storage=tmp_path / "r")
    def make_function(n: int) -> Any:
        return lambda x: x + n

    make_function(1)
    cached = make_function(1, return_state=True)
    assert cached.name == "Cached"
    assert cached.result()(1) == 2


def test_unknown_serializer_name_is_refused_when_the_task_is_defined() -> None:
    with pytest.raises(SerializationError, match=r"Unknown result serializer 'yaml'.*'json'"):

        @task(result_serializer="yaml")
        def nothing() -> None: ...


def test_result_storage_key_template(store: Store, tmp_path: Path) -> None:
    @task(result_storage=tmp_path / "r", result_storage_key="report-{day}.pkl")
    def report(day: str) -> str:
        return f"report for {day}"

    @task(
        result_storage=tmp_path / "r",
        result_storage_key="{flow_run.name}/{parameters[day]}-{task_run.task_name}.json",
        result_serializer="json",
    )
    def summary(day: str) -> list[str]:
        return [day]

    @flow(flow_run_name="nightly-{day}")
    def pipeline(day: str) -> list[str]:
        report(day)
        return summary(day)

    assert pipeline("2024-01-01") == ["2024-01-01"]
    assert _records(tmp_path / "r") == [
        "nightly-2024-01-01/2024-01-01-summary.json",
        "report-2024-01-01.pkl",
    ]
    record = read_record(get_storage(tmp_path / "r"), "report-2024-01-01.pkl")
    assert record is not None and record.value == "report for 2024-01-01"


def test_a_bad_storage_key_template_fails_the_task_run(store: Store, tmp_path: Path) -> None:
    @task(result_storage=tmp_path / "r", result_storage_key="report-{dya}.pkl")
    def report(day: str) -> str:
        return day

    state = report("x", return_state=True)
    assert state.is_failed()
    assert "result_storage_key 'report-{dya}.pkl' cannot be rendered" in state.message
    assert "['day']" in state.message


def test_unserializable_value_fails_the_task_run_with_a_clear_message(
    store: Store, tmp_path: Path
) -> None:
    @task(persist_result=True, retries=2)
    def make_lock() -> Any:
        return threading.Lock()

    @task(persist_result=True, result_serializer="json")
    def make_set_of_objects() -> Any:
        return [object()]

    @flow
    def pipeline() -> str:
        first = make_lock(return_state=True)
        second = make_set_of_objects(return_state=True)
        return f"{first.message}\n{second.message}"

    first, second = pipeline().splitlines()
    assert first.startswith("Task 'make_lock' returned a lock that the 'pickle' result serializer")
    assert "result_serializer" in first and "persist_result=False" in first
    assert second.startswith("Task 'make_set_of_objects' returned a list that the 'json'")
    runs = {run["name"]: run for run in store.task_runs()}
    assert runs["make_lock-0"]["state_type"] == "FAILED"
    # serializing again would fail again: the run is not retried
    assert runs["make_lock-0"]["run_count"] == 1
    assert store.flow_run()["state_type"] == "COMPLETED"


def test_mapped_and_submitted_task_results_persist(store: Store, tmp_path: Path) -> None:
    @task(persist_result=True, result_storage=tmp_path / "r", result_storage_key="sq-{x}")
    def square(x: int) -> int:
        return x * x

    @flow
    def pipeline() -> int:
        futures = square.map([1, 2, 3])
        extra = square.submit(4)
        return sum(f.result() for f in futures) + extra.result()

    assert pipeline() == 30
    assert _records(tmp_path / "r") == ["sq-1", "sq-2", "sq-3", "sq-4"]


def test_flow_persist_result_writes_the_flow_runs_result(store: Store, tmp_path: Path) -> None:
    @flow(persist_result=True, result_storage=tmp_path / "r")
    def pipeline() -> str:
        return "done"

    state = pipeline(return_state=True)
    run = store.flow_run()
    key = f"flow-run-{run['id'].hex}"
    assert state.result() == "done"
    record = read_record(get_storage(tmp_path / "r"), key)
    assert record is not None and record.value == "done"


def test_flow_result_that_cannot_be_serialized_fails_the_flow_run(
    store: Store, tmp_path: Path
) -> None:
    @flow(persist_result=True, result_storage=tmp_path / "r", result_serializer="json")
    def pipeline() -> Any:
        return object()

    state = pipeline(return_state=True)
    assert state.is_failed()
    assert state.message.startswith("Flow 'pipeline' returned a object that the 'json'")


def test_persist_result_false_overrides_the_flow(store: Store, tmp_path: Path) -> None:
    @task(persist_result=False)
    def private() -> int:
        return 1

    @task
    def shared() -> int:
        return 2

    @flow(persist_result=True, result_storage=tmp_path / "r")
    def pipeline() -> int:
        return private() + shared()

    assert pipeline() == 3
    # the flow's own result and the inheriting task's: not `private`'s
    assert len(_records(tmp_path / "r")) == 2


def test_no_persistence_does_not_import_fsspec(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from headwater import flow, task

        @task
        def plain(x: int) -> int:
            return x

        @task(persist_result=True, result_storage={str(tmp_path / "r")!r})
        def local(x: int) -> int:
            return x

        @flow
        def pipeline() -> int:
            return plain(1) + local(2)

        assert pipeline() == 3
        print("fsspec" in sys.modules, "cloudpickle" in sys.modules)
        """
    )
    env = dict(os.environ, HEADWATER_HOME=str(tmp_path / "home"))
    env.pop("HEADWATER_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
