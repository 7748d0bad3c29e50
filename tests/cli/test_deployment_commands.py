"""`headwater deploy`, `headwater deployment ...` and `headwater flow-run cancel`.

Most tests run the CLI in process in embedded mode (no HEADWATER_API_URL): its
API client then runs the API app in this process on the test's store, once on
SQLite and once on PostgreSQL. The flows are real files written to tmp_path.
The last tests (marked "slow" in their names' section) start a real `headwater
server start` and `headwater worker start` and run a deployment end to end.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.helpers import running_server
from typer.testing import CliRunner

from headwater.cli.app import create_app
from headwater.cli.deploy import parse_parameters, parse_value
from headwater.client import api as client_api
from headwater.exceptions import ConfigurationError

from .helpers import assert_one_line_error, invoke
from .test_worker_command import running_worker, worker_env

FLOWS = textwrap.dedent(
    '''
    import time

    from headwater import flow, get_run_logger
    from headwater.runtime import deployment


    @flow(name="etl-flow")
    def nightly(day: str = "today", n: int = 3, fail: bool = False) -> int:
        """Nightly ETL."""
        get_run_logger().info("day=%s n=%d deployment=%s", day, n, deployment.name)
        if fail:
            raise ValueError("asked to fail")
        return n


    @flow
    def hourly(seconds: float = 0.0) -> None:
        time.sleep(seconds)
    '''
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory with flows/etl.py, made the current directory."""
    root = tmp_path / "project"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "etl.py").write_text(FLOWS)
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def api(store: Any) -> Iterator[client_api.ApiClient]:
    """The embedded API on the test's store, with a work pool 'etl'."""
    client = client_api.get_client()
    client.request("POST", "/work_pools", json={"name": "etl", "type": "process"})
    yield client
    _close_clients()


def _close_clients() -> None:
    # get_client() keeps one client per store for the process; each test has its own store.
    with client_api._clients_lock:
        for client in client_api._clients.values():
            client.close()
        client_api._clients.clear()


def _deployment(client: client_api.ApiClient, full_name: str) -> dict[str, Any]:
    flow_name, name = full_name.split("/")
    found: dict[str, Any] = client.request("GET", f"/deployments/name/{flow_name}/{name}")
    return found


def _deploy_nightly(*extra: str) -> None:
    result = invoke("deploy", "flows/etl.py:nightly", "--name", "nightly", "--pool", "etl", *extra)
    assert result.exit_code == 0, result.stderr


# -- parameters ------------------------------------------------------------------------------


def test_param_values_are_json_when_they_parse_and_text_otherwise() -> None:
    assert parse_value("5") == 5
    assert parse_value("2.5") == 2.5
    assert parse_value("true") is True
    assert parse_value("null") is None
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value('{"a": 1}') == {"a": 1}
    assert parse_value("2026-11-20") == "2026-11-20"
    assert parse_value('"007"') == "007"
    assert parse_value("hello world") == "hello world"
    assert parse_value("") == ""
    assert parse_value("NaN") == "NaN"


def test_params_json_is_updated_by_each_param() -> None:
    merged = parse_parameters('{"day": "today", "n": 1}', ["n=5", "extra=a=b"])
    assert merged == {"day": "today", "n": 5, "extra": "a=b"}
    with pytest.raises(ConfigurationError, match="KEY=VALUE"):
        parse_parameters(None, ["day"])
    with pytest.raises(ConfigurationError, match="JSON object"):
        parse_parameters("[1]", None)
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        parse_parameters("{day: 1}", None)


# -- deploy ----------------------------------------------------------------------------------


def test_deploy_registers_the_flow_of_a_file_with_its_options(
    project: Path, api: client_api.ApiClient
) -> None:
    result = invoke(
        "deploy",
        "flows/etl.py:nightly",
        "--name",
        "nightly",
        "--pool",
        "etl",
        "--cron",
        "0 2 * * *",
        "--timezone",
        "Europe/Paris",
        "--interval",
        "86400",
        "--anchor-date",
        "2026-01-01T09:30",
        "--param",
        "n=5",
        "--param",
        "day=2026-11-20",
        "--tag",
        "etl",
        "--version",
        "1.2",
        "--concurrency-limit",
        "2",
        "--collision-strategy",
        "cancel-new",
        "--job-variable",
        'env={"LOG": "debug"}',
    )
    assert result.exit_code == 0, result.stderr
    found = _deployment(api, "etl-flow/nightly")
    assert "'etl-flow/nightly'" in result.stdout
    assert found["id"] in result.stdout
    assert "cron '0 2 * * *' (Europe/Paris); next run " in result.stdout
    assert "every 1d from 2026-01-01 09:30 (Europe/Paris)" in result.stdout
    assert "headwater deployment run etl-flow/nightly" in result.stdout
    assert found["entrypoint"] == "flows/etl.py:nightly"
    assert found["path"] == str(project)
    assert found["parameters"] == {"n": 5, "day": "2026-11-20"}
    assert found["tags"] == ["etl"]
    assert found["version"] == "1.2"
    assert found["description"] == "Nightly ETL."
    assert (found["concurrency_limit"], found["collision_strategy"]) == (2, "CANCEL_NEW")
    assert found["job_variables"] == {"env": {"LOG": "debug"}}
    assert (found["work_pool_name"], found["work_queue_name"]) == ("etl", "default")
    specs = [schedule["schedule"] for schedule in found["schedules"]]
    assert {"cron": "0 2 * * *", "timezone": "Europe/Paris", "day_or": True} in specs
    # The anchor is 09:30 in the schedules' timezone, not in this machine's.
    assert {"interval": 86400, "anchor_date": 1767256200.0, "timezone": "Europe/Paris"} in specs
    assert set(found["parameter_schema"]["properties"]) == {"day", "n", "fail"}

    # Deploying again updates it: the schedules are replaced, the id stays.
    _deploy_nightly("--paused")
    again = _deployment(api, "etl-flow/nightly")
    assert again["id"] == found["id"]
    assert again["schedules"] == []
    assert again["paused"] is True


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (["flows/etl.py:nightly"], ["--pool NAME", "flow.serve()"]),
        (["flows/etl.py:nightly", "--pool", "nowhere"], ["'nowhere'", "work-pool create"]),
        (["flows/missing.py:nightly", "--pool", "etl"], ["no file", "missing.py"]),
        (["flows/etl.py:absent", "--pool", "etl"], ["has no 'absent'"]),
        (["flows/etl.py:nightly", "--pool", "etl", "--param", "n=many"], ["'n'", "integer"]),
        (["flows/etl.py:nightly", "--pool", "etl", "--param", "nope=1"], ["nope"]),
        (["flows/etl.py:nightly", "--pool", "etl", "--param", "n"], ["KEY=VALUE"]),
        (["flows/etl.py:nightly", "--pool", "etl", "--cron", "every day"], ["cron"]),
        (
            [
                "flows/etl.py:nightly",
                "--pool",
                "etl",
                "--cron",
                "0 2 * * *",
                "--timezone",
                "Mars/Base",
            ],
            ["Mars/Base"],
        ),
        (["flows/etl.py:nightly", "--pool", "etl", "--timezone", "UTC"], ["--cron"]),
        (["flows/etl.py:nightly", "--pool", "etl", "--anchor-date", "2026-01-01"], ["interval"]),
        (
            ["flows/etl.py:nightly", "--pool", "etl", "--interval", "60", "--anchor-date", "soon"],
            ["--anchor-date", "ISO"],
        ),
        (
            ["flows/etl.py:nightly", "--pool", "etl", "--collision-strategy", "cancel-new"],
            ["--concurrency-limit"],
        ),
        (
            [
                "flows/etl.py:nightly",
                "--pool",
                "etl",
                "--concurrency-limit",
                "1",
                "--collision-strategy",
                "drop",
            ],
            ["'drop'", "cancel-new"],
        ),
        (["flows/etl.py:nightly", "--file", "other.yaml"], ["not both"]),
    ],
)
def test_deploy_refuses_bad_input_in_one_line(
    project: Path, api: client_api.ApiClient, args: list[str], parts: list[str]
) -> None:
    result = invoke("deploy", *args)
    assert_one_line_error(result, *parts)
    assert api.request("GET", "/deployments")["total"] == 0


def test_deploy_names_the_error_in_a_broken_flow_file(
    project: Path, api: client_api.ApiClient
) -> None:
    (project / "flows" / "broken.py").write_text("from headwater import flow\n\nundefined_name\n")
    result = invoke("deploy", "flows/broken.py:nightly", "--pool", "etl")
    assert_one_line_error(result, "NameError", "undefined_name", "broken.py, line 3")


# -- headwater.yaml ---------------------------------------------------------------------------

DEPLOYMENT_FILE = textwrap.dedent(
    """
    deployments:
      - name: nightly
        entrypoint: flows/etl.py:nightly
        description: Every night
        work_pool:
          name: etl
          work_queue_name: default
          job_variables: {env: {A: "1"}}
        schedules:
          - cron: "0 2 * * *"
            timezone: Europe/Paris
          - interval: 3600
            catchup: latest
            parameters: {n: 7}
        parameters: {day: 2026-11-20}
        tags: [etl]
        concurrency_limit: {limit: 2, collision_strategy: cancel_new}
      - name: hourly
        entrypoint: flows/etl.py:hourly
        work_pool: {name: etl}
        concurrency_limit: 1
        paused: true
    """
)


def test_deploy_reads_headwater_yaml(project: Path, api: client_api.ApiClient) -> None:
    (project / "headwater.yaml").write_text(DEPLOYMENT_FILE)
    result = invoke("deploy")
    assert result.exit_code == 0, result.stderr
    nightly = _deployment(api, "etl-flow/nightly")
    hourly = _deployment(api, "hourly/hourly")
    assert "'etl-flow/nightly'" in result.stdout and "'hourly/hourly'" in result.stdout

    assert nightly["description"] == "Every night"
    assert nightly["parameters"] == {"day": "2026-11-20"}  # a YAML date, as ISO text
    assert nightly["job_variables"] == {"env": {"A": "1"}}
    assert (nightly["concurrency_limit"], nightly["collision_strategy"]) == (2, "CANCEL_NEW")
    assert nightly["path"] == str(project)
    cron, interval = nightly["schedules"]
    assert cron["schedule"]["cron"] == "0 2 * * *"
    assert cron["schedule"]["timezone"] == "Europe/Paris"
    assert interval["schedule"]["interval"] == 3600
    assert (interval["catchup"], interval["parameters"]) == ("LATEST", {"n": 7})

    assert (hourly["concurrency_limit"], hourly["collision_strategy"]) == (1, "ENQUEUE")
    assert hourly["paused"] is True
    assert hourly["schedules"] == []


def test_deploy_with_a_file_and_a_name_deploys_only_that_one(
    project: Path, api: client_api.ApiClient
) -> None:
    (project / "deployments.yaml").write_text(DEPLOYMENT_FILE)
    result = invoke("deploy", "--file", "deployments.yaml", "--name", "hourly")
    assert result.exit_code == 0, result.stderr
    listed = api.request("GET", "/deployments")["items"]
    assert [item["name"] for item in listed] == ["hourly"]

    missing = invoke("deploy", "--file", "deployments.yaml", "--name", "weekly")
    assert_one_line_error(missing, "no deployment named 'weekly'", "'nightly', 'hourly'")


@pytest.mark.parametrize(
    ("replace", "by", "parts"),
    [
        ("    schedules:", "    schedule:", ["unknown key 'schedule'", "'schedules'"]),
        ("      work_queue_name:", "      queue:", ["work_pool", "unknown key 'queue'"]),
        ("        catchup: latest", "        catchup: sometimes", ["catchup"]),
        ("        timezone: Europe/Paris", "        zone: Paris", ["'zone'"]),
        ("  - name: hourly", "  - nom: hourly", ["unknown key 'nom'"]),
        ("    work_pool: {name: etl}\n", "", ["'work_pool' is required", "serve"]),
        ("concurrency_limit: 1", "concurrency_limit: {limit: 0}", ["'limit'"]),
        ("    tags: [etl]", "    tags: etl", ["'tags' must be a list"]),
        ("      - cron:", "      - cron: 1\n        rrule:", ["one of cron"]),
        ("deployments:", "deployments: [", ["not valid YAML"]),
    ],
)
def test_a_bad_deployment_file_is_one_line_naming_the_key_and_deploys_nothing(
    project: Path, api: client_api.ApiClient, replace: str, by: str, parts: list[str]
) -> None:
    assert replace in DEPLOYMENT_FILE
    (project / "headwater.yaml").write_text(DEPLOYMENT_FILE.replace(replace, by, 1))
    result = invoke("deploy", "--all")
    assert_one_line_error(result, *parts)
    assert api.request("GET", "/deployments")["total"] == 0


def test_deploy_without_entrypoint_or_file_says_what_to_give(
    project: Path, api: client_api.ApiClient
) -> None:
    assert_one_line_error(invoke("deploy"), "ENTRYPOINT", "headwater.yaml")
    (project / "headwater.yaml").write_text(DEPLOYMENT_FILE)
    assert_one_line_error(invoke("deploy", "--all", "--pool", "etl"), "--pool", "in the file")


# -- deployment ls / inspect / run / pause / resume / delete ---------------------------------


def test_deployment_ls_and_inspect(project: Path, api: client_api.ApiClient) -> None:
    api.request("POST", "/work_pools", json={"name": "other", "type": "process"})
    _deploy_nightly("--cron", "0 2 * * *", "--param", "n=5", "--concurrency-limit", "3")
    result = invoke("deploy", "flows/etl.py:hourly", "--pool", "other", "--interval", "60")
    assert result.exit_code == 0, result.stderr

    listed = invoke("deployment", "ls")
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["Deployment", "ID", "Work", "pool", "Schedules", "Status"]
    assert lines[1].startswith("etl-flow/nightly") and "etl / default" in lines[1]
    assert "cron '0 2 * * *'" in lines[1] and "Not ready" in lines[1]
    assert lines[2].startswith("hourly/hourly") and "every 1m" in lines[2]
    assert "2 of 2 deployments." in listed.stdout

    by_pool = json.loads(invoke("deployment", "ls", "--pool", "other", "--json").stdout)
    assert [item["name"] for item in by_pool] == ["hourly"]
    by_flow = json.loads(invoke("deployment", "ls", "--flow", "etl-flow", "--json").stdout)
    assert [item["name"] for item in by_flow] == ["nightly"]
    assert "No deployments found" in invoke("deployment", "ls", "--flow", "none").stdout

    shown = invoke("deployment", "inspect", "etl-flow/nightly")
    assert shown.exit_code == 0, shown.stderr
    text = shown.stdout
    assert "flows/etl.py:nightly" in text
    assert '{"n": 5}' in text
    assert "3 at once; more runs wait their turn" in text
    schema = {
        line.split()[0]: line.split()[1:]
        for line in text.split("Parameter schema")[1].split("Schedules")[0].splitlines()[2:]
        if line.strip()
    }
    assert schema == {
        "day": ["string", '"today"'],
        "n": ["integer", "5"],
        "fail": ["boolean", "false"],
    }
    schedules = text.split("Schedules")[1]
    assert "cron '0 2 * * *'" in schedules
    assert schedules.count(":00:00") == 3  # the next three 02:00 UTC, in local time

    by_id = json.loads(invoke("deployment", "inspect", by_pool[0]["id"], "--json").stdout)
    assert by_id["name"] == "hourly"
    assert_one_line_error(invoke("deployment", "inspect", "etl-flow/none"), "etl-flow/none")
    assert_one_line_error(invoke("deployment", "inspect", "nightly"), "'flow-name/deployment")


def _runs(api: client_api.ApiClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.request("GET", "/flow_runs", params={"limit": 100})["items"]
    return items


def test_deployment_run_creates_a_run_with_parameters_and_start_time(
    project: Path, api: client_api.ApiClient
) -> None:
    _deploy_nightly("--param", "n=5")
    before = time.time()
    result = invoke(
        "deployment",
        "run",
        "etl-flow/nightly",
        "--param",
        "day=2026-11-20",
        "--params",
        '{"n": 1, "fail": false}',
        "--param",
        "n=9",
        "--start-in",
        "3600",
    )
    assert result.exit_code == 0, result.stderr
    (run,) = _runs(api)
    assert run["name"] in result.stdout and run["id"] in result.stdout
    assert "Scheduled, due " in result.stdout
    assert "No worker of work pool 'etl' is online" in result.stderr
    assert run["parameters"] == {"day": "2026-11-20", "n": 9, "fail": False}
    assert run["state_type"] == "SCHEDULED"
    expected = time.mktime(time.strptime(run["expected_start_time"][:19], "%Y-%m-%dT%H:%M:%S"))
    expected -= time.timezone if time.localtime().tm_isdst == 0 else time.altzone
    assert before + 3590 < expected < time.time() + 3610

    # The same idempotency key twice: one run.
    for _ in range(2):
        keyed = invoke("deployment", "run", "etl-flow/nightly", "--idempotency-key", "k1")
        assert keyed.exit_code == 0, keyed.stderr
    assert len(_runs(api)) == 2

    at = invoke("deployment", "run", "etl-flow/nightly", "--start-at", "2030-01-02T03:04:05+00:00")
    assert at.exit_code == 0, at.stderr
    assert any(r["expected_start_time"].startswith("2030-01-02T03:04:05") for r in _runs(api))


def test_deployment_run_watch_gives_up_after_its_timeout(
    project: Path, api: client_api.ApiClient
) -> None:
    _deploy_nightly()
    started = time.monotonic()
    result = invoke("deployment", "run", "etl-flow/nightly", "--watch", "--timeout", "1")
    assert 1 <= time.monotonic() - started < 10
    assert result.exit_code == 1
    assert "| Scheduled" in result.stdout
    assert "has not ended after 1s; it goes on" in result.stderr.splitlines()[-1]
    assert [run["state_type"] for run in _runs(api)] == ["SCHEDULED"]


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        (["--param", "n=many"], ["'n'", "integer"]),
        (["--start-in", "5", "--start-at", "2030-01-01"], ["--start-in or --start-at"]),
        (["--start-at", "tomorrow"], ["--start-at", "ISO"]),
        (["--timeout", "5"], ["--watch"]),
    ],
)
def test_deployment_run_refuses_bad_input_in_one_line(
    project: Path, api: client_api.ApiClient, args: list[str], parts: list[str]
) -> None:
    _deploy_nightly()
    assert_one_line_error(invoke("deployment", "run", "etl-flow/nightly", *args), *parts)
    assert _runs(api) == []


def test_pause_resume_and_delete(project: Path, api: client_api.ApiClient) -> None:
    _deploy_nightly("--cron", "0 2 * * *")
    paused = invoke("deployment", "pause", "etl-flow/nightly")
    assert paused.exit_code == 0, paused.stderr
    assert "Paused deployment etl-flow/nightly" in paused.stdout
    assert _deployment(api, "etl-flow/nightly")["paused"] is True
    assert "Paused" in invoke("deployment", "ls").stdout
    run = invoke("deployment", "run", "etl-flow/nightly")
    assert "is paused" in run.stderr

    resumed = invoke("deployment", "resume", _deployment(api, "etl-flow/nightly")["id"])
    assert resumed.exit_code == 0, resumed.stderr
    assert _deployment(api, "etl-flow/nightly")["paused"] is False

    refused = CliRunner().invoke(
        create_app(), ["deployment", "delete", "etl-flow/nightly"], input="n\n"
    )
    assert refused.exit_code == 1
    assert api.request("GET", "/deployments")["total"] == 1
    deleted = invoke("deployment", "delete", "etl-flow/nightly", "--yes")
    assert deleted.exit_code == 0, deleted.stderr
    assert "Deleted deployment etl-flow/nightly." in deleted.stdout
    assert api.request("GET", "/deployments")["total"] == 0
    assert_one_line_error(invoke("deployment", "pause", "etl-flow/nightly"), "etl-flow/nightly")


# -- flow-run cancel --------------------------------------------------------------------------


def test_cancel_a_scheduled_run_is_cancelled_at_once(
    project: Path, api: client_api.ApiClient
) -> None:
    _deploy_nightly()
    assert invoke("deployment", "run", "etl-flow/nightly", "--start-in", "600").exit_code == 0
    (run,) = _runs(api)
    cancelled = invoke("flow-run", "cancel", run["id"][:18])
    assert cancelled.exit_code == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"Flow run {run['name']!r} ({run['id']}): Cancelled."
    assert api.request("GET", f"/flow_runs/{run['id']}")["state_type"] == "CANCELLED"

    assert_one_line_error(invoke("flow-run", "cancel", run["id"]), "already", "CANCELLED")
    assert_one_line_error(invoke("flow-run", "cancel", "0123abcd"), "0123abcd")


# -- end to end: a real server and worker (slow: a few seconds each) -------------------------


@pytest.fixture
def served(
    project: Path, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A `headwater server start` on a fresh store, a pool 'etl', and a `headwater worker
    start --pool etl` process; the CLI points at the server. Yields the worker's log."""
    home = tmp_path / "server-home"
    with running_server(home, database_url) as (api_url, _):
        httpx.post(f"{api_url}/work_pools", json={"name": "etl"}).raise_for_status()
        monkeypatch.setenv("HEADWATER_API_URL", api_url)
        env = worker_env(HEADWATER_API_URL=api_url, HEADWATER_HOME=str(tmp_path / "worker-home"))
        log = tmp_path / "worker.log"
        with running_worker(log, env):
            yield log
    _close_clients()


def test_run_watch_follows_a_run_to_its_end_on_a_worker(served: Path) -> None:
    _deploy_nightly("--param", "n=4")
    watched = invoke("deployment", "run", "etl-flow/nightly", "--watch", "--timeout", "60")
    assert watched.exit_code == 0, (watched.stdout, watched.stderr)
    out = watched.stdout
    assert out.index("| Scheduled") < out.index("| Pending") < out.index("| Running")
    assert out.index("| Running") < out.index("day=today n=4 deployment=nightly")
    assert "| Completed" in out
    assert out.count("| Running") == 1

    failed = invoke("deployment", "run", "etl-flow/nightly", "-p", "fail=true", "--watch")
    assert failed.exit_code == 1, (failed.stdout, failed.stderr)
    assert "asked to fail" in failed.stdout
    assert "| Failed" in failed.stdout


def test_cancel_a_running_run_stops_its_process(served: Path) -> None:
    result = invoke("deploy", "flows/etl.py:hourly", "--pool", "etl")
    assert result.exit_code == 0, result.stderr
    started = invoke("deployment", "run", "hourly/hourly", "--param", "seconds=60")
    assert started.exit_code == 0, started.stderr
    client = client_api.get_client()
    (run,) = _runs(client)
    deadline = time.monotonic() + 30
    while client.request("GET", f"/flow_runs/{run['id']}")["state_type"] != "RUNNING":
        assert time.monotonic() < deadline, "the worker did not start the run"
        time.sleep(0.1)
    cancelled = invoke("flow-run", "cancel", run["id"])
    assert cancelled.exit_code == 0, cancelled.stderr
    assert "Cancelling: its worker stops it within seconds." in cancelled.stdout
    deadline = time.monotonic() + 20
    while client.request("GET", f"/flow_runs/{run['id']}")["state_type"] != "CANCELLED":
        assert time.monotonic() < deadline, "the run was not cancelled"
        time.sleep(0.1)
    while "process exited with code" not in served.read_text():
        assert time.monotonic() < deadline, f"the run's process did not end: {served.read_text()}"
        time.sleep(0.1)
