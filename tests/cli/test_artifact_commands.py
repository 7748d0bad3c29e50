"""`headwater artifact ls / inspect / delete` on the embedded store of each database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from headwater import flow, task
from headwater.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
)
from headwater.client import api as client_api
from headwater.engine.recorder import close_recorder, get_recorder

from .helpers import StoreBuilder, assert_one_line_error, invoke


@pytest.fixture
def embedded(store: StoreBuilder) -> Iterator[StoreBuilder]:
    """The CLI and the SDK on the test's store; clients and the recorder closed afterwards."""
    close_recorder()
    yield store
    close_recorder()
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


def _publish() -> dict[str, uuid.UUID]:
    ids: dict[str, uuid.UUID] = {}

    @task
    def summarise() -> None:
        ids["table"] = create_table_artifact(
            [{"region": "eu", "sales": 12}, {"region": "us", "sales": 30}],
            key="sales",
            description="Sales by region",
        )

    @flow
    def nightly() -> None:
        ids["report-v1"] = create_markdown_artifact("# Report\n\nfirst", key="report")
        ids["report-v2"] = create_markdown_artifact("# Report\n\nsecond", key="report")
        summarise()

    nightly()
    ids["progress"] = create_progress_artifact(42.5, key="load")
    ids["link"] = create_link_artifact("https://example.com/dash", "Dashboard")
    ids["image"] = create_image_artifact("https://example.com/chart.png", key="chart")
    get_recorder().flush()
    return ids


def test_ls_shows_the_latest_version_per_key(embedded: StoreBuilder) -> None:
    ids = _publish()
    listed = invoke("artifact", "ls")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["ID", "Key", "Type", "Content", "Flow", "run", "Created"]
    assert [line.split()[0] for line in lines[1:6]] == [
        str(ids["image"]),
        str(ids["link"]),
        str(ids["progress"]),
        str(ids["table"]),
        str(ids["report-v2"]),
    ]
    assert "42.5%" in lines[3]
    assert "Dashboard <https://example.com/dash>" in lines[2]
    assert "2 rows x 2 columns" in lines[4]
    assert "5 of 5 artifacts." in listed.output

    every = json.loads(invoke("artifact", "ls", "--all-versions", "--json").output)
    assert len(every) == 6
    versions = json.loads(
        invoke("artifact", "ls", "--key", "report", "--all-versions", "--json").output
    )
    assert [item["id"] for item in versions] == [str(ids["report-v2"]), str(ids["report-v1"])]
    latest = json.loads(invoke("artifact", "ls", "--key", "report", "--json").output)
    assert [item["id"] for item in latest] == [str(ids["report-v2"])]

    flow_run_id = versions[0]["flow_run_id"]
    of_run = json.loads(invoke("artifact", "ls", "--flow-run", flow_run_id[:13], "--json").output)
    assert {item["id"] for item in of_run} == {
        str(ids["report-v1"]),
        str(ids["report-v2"]),
        str(ids["table"]),
    }


def test_inspect_renders_each_type(embedded: StoreBuilder) -> None:
    ids = _publish()
    table = invoke("artifact", "inspect", "sales")
    assert table.exit_code == 0, table.output
    assert "Sales by region" in table.output
    assert "Versions     1 (this is the latest)" in table.output
    assert "region" in table.output and "sales" in table.output
    cells = [line.replace("│", " ").replace("┃", " ").split() for line in table.output.splitlines()]
    assert ["region", "sales"] in cells
    assert ["us", "30"] in cells

    report = invoke("artifact", "inspect", "report")
    assert "# Report" in report.output and "second" in report.output
    assert "Versions     2 (this is the latest)" in report.output
    older = invoke("artifact", "inspect", str(ids["report-v1"]))
    assert "first" in older.output
    assert f"Versions     2 (the latest is {ids['report-v2']})" in older.output

    assert "42.5%" in invoke("artifact", "inspect", "load").output
    assert "Image: https://example.com/chart.png" in invoke("artifact", "inspect", "chart").output
    link = invoke("artifact", "inspect", str(ids["link"]).replace("-", ""))
    assert "Dashboard <https://example.com/dash>" in link.output
    assert "(no key)" in link.output

    document = json.loads(invoke("artifact", "inspect", "sales", "--json").output)
    assert document["data"] == {"columns": ["region", "sales"], "rows": [["eu", 12], ["us", 30]]}
    assert document["task_run_id"] is not None


def test_delete_asks_and_the_previous_version_becomes_latest(embedded: StoreBuilder) -> None:
    ids = _publish()
    declined = invoke_with_input("n\n", "artifact", "delete", str(ids["report-v2"]))
    assert declined.exit_code == 1
    assert json.loads(invoke("artifact", "inspect", "report", "--json").output)["id"] == str(
        ids["report-v2"]
    )
    deleted = invoke("artifact", "delete", str(ids["report-v2"]), "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.output.strip() == f"Deleted markdown artifact 'report' {ids['report-v2']}."
    latest = json.loads(invoke("artifact", "inspect", "report", "--json").output)
    assert latest["id"] == str(ids["report-v1"])


def test_errors_are_one_line(embedded: StoreBuilder) -> None:
    assert_one_line_error(
        invoke("artifact", "inspect", "nothing"), "No artifact with key 'nothing'"
    )
    assert_one_line_error(
        invoke("artifact", "inspect", "Bad_Key"), "lowercase letters, digits and dashes"
    )
    missing = uuid.uuid4()
    assert_one_line_error(
        invoke("artifact", "delete", str(missing), "--yes"), f"No artifact with id '{missing}'"
    )
    assert_one_line_error(invoke("artifact", "delete", "report", "--yes"), "is not an artifact id")
    assert_one_line_error(
        invoke("artifact", "ls", "--flow-run", "zz"), "is not a flow run id or id prefix"
    )
    assert_one_line_error(
        invoke("artifact", "ls", "--flow-run", "0123"), "No flow run found with id '0123'"
    )
    assert "No artifacts." in invoke("artifact", "ls").output


def invoke_with_input(text: str, *args: str) -> object:
    from typer.testing import CliRunner

    from headwater.cli.app import create_app
    from headwater.settings import reset_settings

    reset_settings()
    return CliRunner().invoke(create_app(), list(args), input=text, prog_name="headwater")
