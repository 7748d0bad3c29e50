"""`headwater.artifacts`: publishing from runs and outside them, embedded and against a server."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.server.helpers import running_server

from headwater import flow, task
from headwater.artifacts import (
    acreate_markdown_artifact,
    aupdate_progress_artifact,
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from headwater.client import api as client_api
from headwater.client.api import get_client
from headwater.engine.recorder import close_recorder, get_recorder
from headwater.exceptions import PayloadTooLarge
from headwater.settings import reset_settings


def _reset() -> None:
    close_recorder()
    reset_settings()
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


def _point_at(monkeypatch: pytest.MonkeyPatch, home: Path, database_url: str) -> None:
    for name in list(os.environ):
        if name.startswith("HEADWATER_") and name != "HEADWATER_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEADWATER_HOME", str(home))
    monkeypatch.setenv("HEADWATER_DATABASE_URL", database_url)
    reset_settings()


@pytest.fixture
def embedded(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The SDK on a fresh store of each database, in this process (no server)."""
    _reset()
    _point_at(monkeypatch, tmp_path / "home", database_url)
    yield
    _reset()


@pytest.fixture
def remote(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real `headwater server start` on the test's store; the SDK talks to it."""
    _reset()
    with running_server(tmp_path / "server-home", database_url) as (base, _process):
        _point_at(monkeypatch, tmp_path / "home", database_url)
        monkeypatch.setenv("HEADWATER_API_URL", base)
        reset_settings()
        yield base
        _reset()


def artifact(artifact_id: uuid.UUID) -> dict[str, Any]:
    found: dict[str, Any] = get_client().request("GET", f"/artifacts/{artifact_id}")
    return found


def artifacts(**params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get_client().request("GET", "/artifacts", params=params)["items"]
    return items


def flow_run_ids() -> list[str]:
    get_recorder().flush()
    runs = get_client().request("GET", "/flow_runs")["items"]
    return [run["id"] for run in runs]


def test_artifacts_link_the_flow_run_and_task_run(embedded: None) -> None:
    seen: dict[str, uuid.UUID] = {}

    @task
    def load() -> int:
        seen["task"] = create_table_artifact([{"rows": 3}], key="load-summary")
        return 3

    @flow
    def pipeline() -> int:
        seen["flow"] = create_markdown_artifact("# Done", key="pipeline-report")
        return load()

    assert pipeline() == 3
    (flow_run_id,) = flow_run_ids()
    from_flow = artifact(seen["flow"])
    assert (from_flow["flow_run_id"], from_flow["task_run_id"]) == (flow_run_id, None)
    from_task = artifact(seen["task"])
    assert from_task["flow_run_id"] == flow_run_id
    (task_run,) = get_client().request("GET", "/task_runs", params={"flow_run_id": flow_run_id})[
        "items"
    ]
    assert from_task["task_run_id"] == task_run["id"]
    assert from_task["data"] == {"columns": ["rows"], "rows": [[3]]}
    linked = artifacts(flow_run_id=flow_run_id)
    assert {item["id"] for item in linked} == {str(seen["flow"]), str(seen["task"])}


def test_each_type_and_key_versions(embedded: None) -> None:
    first = create_markdown_artifact("v1", key="report", description="First")
    second = create_markdown_artifact("v2", key="report")
    assert isinstance(first, uuid.UUID)
    latest = get_client().request("GET", "/artifacts/latest/report")
    assert (latest["id"], latest["data"]) == (str(second), "v2")
    assert [item["data"] for item in artifacts(key="report")] == ["v2", "v1"]
    assert artifact(first)["description"] == "First"

    link = artifact(create_link_artifact("https://example.com/dash", link_text="Dashboard"))
    assert (link["type"], link["data"]) == (
        "link",
        {"link": "https://example.com/dash", "link_text": "Dashboard"},
    )
    image = artifact(create_image_artifact("https://example.com/chart.png", key="chart"))
    assert (image["type"], image["data"]) == ("image", "https://example.com/chart.png")

    columns = create_table_artifact({"name": ["x", "y"], "a": [1.5, float("nan")]})
    assert artifact(columns)["data"] == {
        "columns": ["name", "a"],
        "rows": [["x", 1.5], ["y", None]],
    }
    rows = create_table_artifact([[1, float("nan")], (3, 4)])
    assert artifact(rows)["data"] == {"columns": None, "rows": [[1, None], [3, 4]]}


def test_progress_is_created_and_updated(embedded: None) -> None:
    @flow
    def long_job() -> uuid.UUID:
        bar = create_progress_artifact(0, key="job-progress", description="Starting")
        for done in (25, 50.5):
            assert update_progress_artifact(bar, done) == bar
        update_progress_artifact(str(bar), 100, description="Finished")
        return bar

    bar = long_job()
    stored = artifact(bar)
    assert (stored["type"], stored["data"], stored["description"]) == (
        "progress",
        100.0,
        "Finished",
    )
    assert stored["flow_run_id"] == flow_run_ids()[0]
    with pytest.raises(ValueError, match="from 0 to 100"):
        update_progress_artifact(bar, 120)
    with pytest.raises(ValueError, match="only progress artifacts change their data"):
        get_client().request(
            "PATCH", f"/artifacts/{create_markdown_artifact('x')}", json={"data": 5}
        )


def test_outside_a_run_artifacts_are_unlinked(embedded: None) -> None:
    stored = artifact(create_markdown_artifact("notes"))
    assert (stored["key"], stored["flow_run_id"], stored["task_run_id"]) == (None, None, None)


def test_bad_values_are_clear_errors_and_store_nothing(embedded: None) -> None:
    with pytest.raises(ValueError, match=r"'Daily_Report' is invalid.*lowercase letters, digits"):
        create_markdown_artifact("x", key="Daily_Report")
    with pytest.raises(ValueError, match="must have one length"):
        create_table_artifact({"a": [1, 2], "b": [3]})
    with pytest.raises(ValueError, match="row 1 is a str"):
        create_table_artifact([{"a": 1}, "b"])
    with pytest.raises(ValueError, match=r"cell in row 0, column 'when', is a datetime.*not JSON"):
        create_table_artifact([{"when": dt.datetime(2024, 1, 1)}])
    with pytest.raises(ValueError, match="progress must be from 0 to 100"):
        create_progress_artifact(-1)
    with pytest.raises(ValueError, match="a number from 0 to 100"):
        create_progress_artifact(True)
    with pytest.raises(ValueError, match="markdown text"):
        create_markdown_artifact(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="link must be a URL"):
        create_link_artifact(None)  # type: ignore[arg-type]
    assert artifacts() == []


def test_too_large_an_artifact_names_the_limit(embedded: None) -> None:
    huge = [{"row": number, "text": "x" * 100} for number in range(50_000)]  # ~6 MB
    with pytest.raises(PayloadTooLarge, match=r"table artifact 'huge' is too large.*limit of"):
        create_table_artifact(huge, key="huge")
    assert artifacts() == []


def test_async_variants(embedded: None) -> None:
    @flow
    async def report() -> uuid.UUID:
        bar = await acreate_markdown_artifact("async", key="async-report")
        progress = create_progress_artifact(10)
        await aupdate_progress_artifact(progress, 90)
        assert artifact(progress)["data"] == 90
        return bar

    stored = artifact(asyncio.run(report()))
    assert (stored["data"], stored["flow_run_id"]) == ("async", flow_run_ids()[0])


def test_against_a_server(remote: str) -> None:
    @task
    def publish() -> uuid.UUID:
        return create_progress_artifact(50, key="remote-progress")

    @flow
    def pipeline() -> uuid.UUID:
        return publish()

    bar = pipeline()
    update_progress_artifact(bar, 75)
    assert get_client().description.startswith("the Headwater server at http://127.0.0.1")
    stored = get_client().request("GET", "/artifacts/latest/remote-progress")
    assert (stored["id"], stored["data"]) == (str(bar), 75.0)
    assert stored["flow_run_id"] == flow_run_ids()[0]
    assert stored["task_run_id"] is not None
