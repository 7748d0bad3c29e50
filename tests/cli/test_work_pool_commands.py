"""`headwater work-pool ...` and `headwater work-queue ...`, on the embedded store of each
database and against a real server."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.server.helpers import running_server

from headwater.core.ids import uuid7
from headwater.store.engine import create_engine
from headwater.store.tables import worker
from headwater.worker.infrastructure import default_base_job_template

from .helpers import StoreBuilder, assert_one_line_error, invoke


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    """Each test gets its own API client (the process keeps one per store)."""
    from headwater.client import api

    yield
    for client in api._clients.values():
        client.close()
    api._clients.clear()


def _ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def test_create_list_inspect_and_delete_a_pool(store: StoreBuilder) -> None:
    created = _ok("work-pool", "create", "etl", "--description", "Nightly ETL")
    assert "Created work pool 'etl' of type 'process', with queue 'default'." in created
    assert "headwater worker start --pool etl" in created

    listed = _ok("work-pool", "ls")
    assert listed.splitlines()[0].split() == [
        "Name",
        "Type",
        "Status",
        "Concurrency",
        "limit",
        "Description",
    ]
    assert listed.splitlines()[1].split() == [
        "etl",
        "process",
        "not",
        "ready",
        "-",
        "Nightly",
        "ETL",
    ]

    shown = _ok("work-pool", "inspect", "etl")
    assert "Job variables: command, env, labels, stream_output, working_dir" in shown
    assert "Queues: 1" in shown and "default  1" in shown
    assert "No worker has polled it yet: headwater worker start --pool etl" in shown

    assert _ok("work-pool", "delete", "etl", "--yes") == "Deleted work pool 'etl'.\n"
    assert "No work pools." in _ok("work-pool", "ls")


def test_pool_options_and_json_output(store: StoreBuilder, tmp_path: Path) -> None:
    template = default_base_job_template("process")
    template["variables"]["properties"]["env"]["default"] = {"TZ": "UTC"}
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))

    _ok(
        "work-pool",
        "create",
        "etl",
        "--type",
        "process",
        "--concurrency-limit",
        "4",
        "--paused",
        "--base-job-template",
        str(path),
    )

    (pool,) = json.loads(_ok("work-pool", "ls", "--json"))
    assert (pool["name"], pool["concurrency_limit"], pool["paused"], pool["status"]) == (
        "etl",
        4,
        True,
        "PAUSED",
    )
    assert pool["base_job_template"] == template
    inspected = json.loads(_ok("work-pool", "inspect", "etl", "--json"))
    assert [q["name"] for q in inspected["queues"]] == ["default"]
    assert inspected["workers"] == []


def test_pause_resume_and_concurrency_limits_of_a_pool(store: StoreBuilder) -> None:
    _ok("work-pool", "create", "etl")

    assert _ok("work-pool", "pause", "etl") == "Paused work pool 'etl'.\n"
    assert json.loads(_ok("work-pool", "inspect", "etl", "--json"))["paused"] is True
    assert _ok("work-pool", "resume", "etl") == "Resumed work pool 'etl'.\n"
    _ok("work-pool", "set-concurrency-limit", "etl", "3")
    assert json.loads(_ok("work-pool", "inspect", "etl", "--json"))["concurrency_limit"] == 3
    _ok("work-pool", "clear-concurrency-limit", "etl")
    pool = json.loads(_ok("work-pool", "inspect", "etl", "--json"))
    assert (pool["paused"], pool["concurrency_limit"]) == (False, None)


def test_pool_errors_are_one_line_with_the_fix(store: StoreBuilder, tmp_path: Path) -> None:
    _ok("work-pool", "create", "etl")

    assert_one_line_error(
        invoke("work-pool", "create", "etl"), "A work pool named 'etl' already exists"
    )
    assert_one_line_error(
        invoke("work-pool", "create", "k8s", "--type", "kubernetes"),
        "Unknown work pool type 'kubernetes'; known types: process",
    )
    assert_one_line_error(
        invoke("work-pool", "inspect", "nightly"),
        "No work pool named 'nightly'; create it with "
        "`headwater work-pool create nightly --type process`.",
    )
    assert_one_line_error(invoke("work-pool", "pause", "nightly"), "No work pool named")
    assert_one_line_error(invoke("work-pool", "delete", "nightly", "--yes"), "No work pool named")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert_one_line_error(
        invoke("work-pool", "create", "x", "--base-job-template", str(bad)),
        f"The job template {bad} is not valid JSON",
    )
    bad.write_text(json.dumps({"job_configuration": {"a": "{{ b }}"}, "variables": {}}))
    assert_one_line_error(
        invoke("work-pool", "create", "x", "--base-job-template", str(bad)),
        "job_configuration.a uses {{ b }}, but 'b' is not a variable",
    )


def test_delete_asks_first(store: StoreBuilder) -> None:
    from typer.testing import CliRunner

    from headwater.cli.app import create_app
    from headwater.settings import reset_settings

    _ok("work-pool", "create", "etl")
    reset_settings()
    declined = CliRunner().invoke(create_app(), ["work-pool", "delete", "etl"], input="n\n")

    assert declined.exit_code == 1
    assert "Delete work pool 'etl' with its queues and workers" in declined.stdout
    assert "etl" in _ok("work-pool", "ls")


def test_inspect_shows_workers_and_their_status(store: StoreBuilder) -> None:
    _ok("work-pool", "create", "etl")
    pool_id = uuid.UUID(json.loads(_ok("work-pool", "inspect", "etl", "--json"))["id"])
    engine = create_engine(store.url)
    with engine.begin() as conn:
        for name, age in (("host-a 101", 2.0), ("host-b 202", 600.0)):
            conn.execute(
                sa.insert(worker).values(
                    id=uuid7(),
                    work_pool_id=pool_id,
                    name=name,
                    heartbeat_interval=10.0,
                    last_heartbeat=time.time() - age,
                    created=time.time() - 3600,
                )
            )
    engine.dispose()

    shown = _ok("work-pool", "inspect", "etl")

    assert "Workers: 2" in shown
    rows = {line.split("  ")[0]: line for line in shown.splitlines() if "host-" in line}
    assert "online" in rows["host-a 101"] and "10s" in rows["host-a 101"]
    assert "offline" in rows["host-b 202"] and "10m 00s ago" in rows["host-b 202"]
    assert _ok("work-pool", "ls").splitlines()[1].split()[:4] == ["etl", "process", "ready", "-"]


def test_get_default_base_job_template(store: StoreBuilder, tmp_path: Path) -> None:
    printed = json.loads(_ok("work-pool", "get-default-base-job-template", "--type", "process"))
    assert printed == default_base_job_template("process")

    path = tmp_path / "process.json"
    result = invoke("work-pool", "get-default-base-job-template", "--file", str(path))
    assert result.exit_code == 0
    assert json.loads(path.read_text()) == printed
    assert_one_line_error(
        invoke("work-pool", "get-default-base-job-template", "--type", "kubernetes"),
        "Unknown work pool type 'kubernetes'; known types: process.",
    )


def test_queues_by_priority_with_limits_and_pause(store: StoreBuilder) -> None:
    _ok("work-pool", "create", "etl")

    created = _ok("work-queue", "create", "urgent", "--pool", "etl", "--priority", "1")
    assert created == "Created work queue 'urgent' in work pool 'etl' (priority 1).\n"
    _ok("work-queue", "create", "bulk", "--pool", "etl", "--concurrency-limit", "2")
    table = _ok("work-queue", "ls", "--pool", "etl").splitlines()
    assert [line.split()[:3] for line in table[1:]] == [
        ["default", "1", "active"],
        ["urgent", "1", "active"],
        ["bulk", "2", "active"],
    ]

    _ok("work-queue", "pause", "bulk", "--pool", "etl")
    _ok("work-queue", "set-concurrency-limit", "bulk", "5", "--pool", "etl")
    bulk = json.loads(_ok("work-queue", "inspect", "bulk", "--pool", "etl", "--json"))
    assert (bulk["paused"], bulk["concurrency_limit"], bulk["work_pool_name"]) == (True, 5, "etl")
    _ok("work-queue", "resume", "bulk", "--pool", "etl")
    _ok("work-queue", "clear-concurrency-limit", "bulk", "--pool", "etl")
    shown = _ok("work-queue", "inspect", "bulk", "--pool", "etl")
    assert "Status             active" in shown
    assert "Concurrency limit  -" in shown

    assert _ok("work-queue", "delete", "bulk", "--pool", "etl") == (
        "Deleted work queue 'bulk' of pool 'etl'.\n"
    )
    names = [q["name"] for q in json.loads(_ok("work-queue", "ls", "--pool", "etl", "--json"))]
    assert names == ["default", "urgent"]


def test_queue_errors_are_one_line_with_the_fix(store: StoreBuilder) -> None:
    _ok("work-pool", "create", "etl")

    assert_one_line_error(
        invoke("work-queue", "inspect", "urgent", "--pool", "etl"),
        "No work queue named 'urgent' in work pool 'etl'; create it with "
        "`headwater work-queue create urgent --pool etl`.",
    )
    assert_one_line_error(
        invoke("work-queue", "delete", "default", "--pool", "etl"),
        "The queue 'default' of work pool 'etl' cannot be deleted",
    )
    assert_one_line_error(invoke("work-queue", "ls", "--pool", "nope"), "No work pool named 'nope'")
    missing_pool = invoke("work-queue", "ls")
    assert missing_pool.exit_code == 2
    assert "--pool" in missing_pool.stderr


def test_commands_against_a_server(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_server(tmp_path / "server-home", database_url) as (api_url, _):
        monkeypatch.setenv("HEADWATER_API_URL", api_url)
        _ok("work-pool", "create", "remote pool", "--concurrency-limit", "2")
        _ok("work-queue", "create", "urgent", "--pool", "remote pool")

        (pool,) = json.loads(_ok("work-pool", "ls", "--json"))
        assert (pool["name"], pool["concurrency_limit"]) == ("remote pool", 2)
        queues = json.loads(_ok("work-queue", "ls", "--pool", "remote pool", "--json"))
        assert [q["name"] for q in queues] == ["default", "urgent"]
        assert_one_line_error(invoke("work-pool", "inspect", "other"), "No work pool named 'other'")
