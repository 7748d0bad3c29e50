"""The artifacts API: publish, filter, latest version of a key, keys, progress updates."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import MakeClient, TestClient


def _create(client: TestClient, **body: Any) -> dict[str, Any]:
    response = client.post("/artifacts", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_create_and_read_each_type(client: TestClient) -> None:
    flow_run_id, task_run_id = uuid.uuid4(), uuid.uuid4()
    markdown = _create(
        client,
        key="report",
        type="markdown",
        data="# Sales\n\nUp 3%.",
        description="Daily",
        flow_run_id=flow_run_id.hex,
        task_run_id=str(task_run_id),
    )
    assert markdown["key"] == "report"
    assert markdown["flow_run_id"] == str(flow_run_id)
    assert markdown["task_run_id"] == str(task_run_id)
    assert markdown["created"] == markdown["updated"]

    read = client.get(f"/artifacts/{markdown['id']}").json()
    assert read == markdown

    table = _create(client, type="table", data=[{"a": 1, "b": None}, {"a": 2, "b": "x"}])
    assert client.get(f"/artifacts/{table['id']}").json()["data"] == {
        "columns": ["a", "b"],
        "rows": [[1, None], [2, "x"]],
    }
    assert table["key"] is None
    # Columns keep their order on every database (JSONB sorts object keys).
    columns = _create(client, type="table", data={"zone": [1, 2], "at": [3, 4]})
    assert columns["data"] == {"columns": ["zone", "at"], "rows": [[1, 3], [2, 4]]}
    ragged = _create(client, type="table", data=[{"b": 1}, {"a": 2}])
    assert ragged["data"] == {"columns": ["b", "a"], "rows": [[1, None], [None, 2]]}
    rows = _create(client, type="table", data=[[1, 2], [3, 4]])
    assert rows["data"] == {"columns": None, "rows": [[1, 2], [3, 4]]}
    # What the API returns can be published again as it is.
    copied = _create(client, type="table", data=columns["data"])
    assert client.get(f"/artifacts/{copied['id']}").json()["data"] == columns["data"]
    link = _create(client, type="link", data={"link": "https://example.com", "link_text": "ex"})
    assert link["data"]["link_text"] == "ex"
    image = _create(client, type="image", data="https://example.com/chart.png")
    assert image["data"] == "https://example.com/chart.png"
    progress = _create(client, type="progress", data=12)
    assert progress["data"] == 12.0


def test_filters_and_paging_newest_first(client: TestClient) -> None:
    run_a, run_b = uuid.uuid4().hex, uuid.uuid4().hex
    first = _create(client, key="report", type="markdown", data="v1", flow_run_id=run_a)
    second = _create(client, key="report", type="markdown", data="v2", flow_run_id=run_b)
    other = _create(client, key="other", type="progress", data=50, flow_run_id=run_a)
    loose = _create(client, type="markdown", data="no key")

    everything = client.get("/artifacts").json()
    assert [item["id"] for item in everything["items"]] == [
        loose["id"],
        other["id"],
        second["id"],
        first["id"],
    ]
    assert everything["total"] == 4

    by_key = client.get("/artifacts", params={"key": "report"}).json()
    assert [item["data"] for item in by_key["items"]] == ["v2", "v1"]
    by_run = client.get("/artifacts", params={"flow_run_id": run_a}).json()
    assert {item["id"] for item in by_run["items"]} == {first["id"], other["id"]}
    by_type = client.get("/artifacts", params={"type": "progress"}).json()
    assert [item["id"] for item in by_type["items"]] == [other["id"]]
    latest_only = client.get("/artifacts", params={"latest_only": True}).json()
    assert [item["id"] for item in latest_only["items"]] == [loose["id"], other["id"], second["id"]]

    page = client.get("/artifacts", params={"limit": 2, "offset": 1}).json()
    assert [item["id"] for item in page["items"]] == [other["id"], second["id"]]
    assert page["total"] == 4


def test_latest_version_of_a_key_and_the_keys(client: TestClient) -> None:
    _create(client, key="report", type="markdown", data="v1")
    newest = _create(client, key="report", type="markdown", data="v2")
    chart = _create(client, key="chart", type="image", data="https://example.com/c.png")
    _create(client, type="markdown", data="unkeyed")

    latest = client.get("/artifacts/latest/report")
    assert latest.status_code == 200
    assert latest.json()["id"] == newest["id"]

    keys = client.get("/artifacts/keys").json()
    assert [(item["key"], item["id"]) for item in keys["items"]] == [
        ("chart", chart["id"]),
        ("report", newest["id"]),
    ]
    assert keys["total"] == 2

    # Deleting the latest version makes the one before it the latest.
    assert client.delete(f"/artifacts/{newest['id']}").status_code == 204
    assert client.get("/artifacts/latest/report").json()["data"] == "v1"

    missing = client.get("/artifacts/latest/nothing-here")
    assert missing.status_code == 404
    assert "No artifact with key 'nothing-here'" in missing.json()["message"]
    bad = client.get("/artifacts/latest/Not_A_Key")
    assert bad.status_code == 422
    assert "lowercase letters, digits and dashes" in bad.json()["message"]


def test_update_progress_and_description(client: TestClient) -> None:
    progress = _create(client, key="load", type="progress", data=0, description="Loading")
    updated = client.patch(f"/artifacts/{progress['id']}", json={"data": 40.5})
    assert updated.status_code == 200, updated.text
    assert updated.json()["data"] == 40.5
    assert updated.json()["description"] == "Loading"
    assert updated.json()["updated"] >= updated.json()["created"]

    described = client.patch(
        f"/artifacts/{progress['id']}", json={"data": 100, "description": "Loaded"}
    ).json()
    assert (described["data"], described["description"]) == (100.0, "Loaded")

    over = client.patch(f"/artifacts/{progress['id']}", json={"data": 101})
    assert over.status_code == 422
    assert "from 0 to 100" in over.json()["message"]

    markdown = _create(client, type="markdown", data="text")
    refused = client.patch(f"/artifacts/{markdown['id']}", json={"data": "new text"})
    assert refused.status_code == 422
    assert "only progress artifacts change their data" in refused.json()["message"]
    renamed = client.patch(f"/artifacts/{markdown['id']}", json={"description": "Notes"})
    assert renamed.json()["description"] == "Notes"


def test_missing_artifacts_are_404(client: TestClient) -> None:
    missing = uuid.uuid4()
    for response in (
        client.get(f"/artifacts/{missing}"),
        client.patch(f"/artifacts/{missing}", json={"data": 5}),
        client.delete(f"/artifacts/{missing}"),
    ):
        assert response.status_code == 404
        assert f"No artifact with id '{missing}'" in response.json()["message"]


def test_invalid_artifacts_are_422_naming_the_problem(client: TestClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"key": "Daily_Report", "type": "markdown", "data": "x"}, "'Daily_Report' is invalid"),
        ({"key": "a b", "type": "markdown", "data": "x"}, "lowercase letters, digits and dashes"),
        ({"type": "progress", "data": 150}, "from 0 to 100"),
        ({"type": "progress", "data": "half"}, "a number from 0 to 100"),
        ({"type": "table", "data": {"a": [1, 2], "b": [1]}}, "must have one length"),
        ({"type": "table", "data": [{"a": 1}, [1]]}, "row 1 is a list"),
        ({"type": "table", "data": [1, 2]}, "row 0 is an int"),
        ({"type": "table", "data": "a,b"}, "A table must be a list of dicts"),
        ({"type": "table", "data": [{"a": "\u0000"}]}, "NUL"),
        ({"type": "link", "data": "https://example.com"}, '{"link": URL'),
        ({"type": "markdown", "data": 5}, "markdown text"),
        ({"type": "image", "data": None}, "the image's URL"),
        ({"type": "chart", "data": "x"}, "type"),
    ]
    for body, words in cases:
        response = client.post("/artifacts", json=body)
        assert response.status_code == 422, (body, response.text)
        assert words in response.json()["message"], (body, response.json()["message"])


def test_a_huge_table_is_refused_naming_the_limit(make_client: MakeClient) -> None:
    client = make_client(request_max_bytes=100_000)
    rows = [{"name": f"row {number}", "value": number} for number in range(10_000)]
    response = client.post("/artifacts", json={"type": "table", "data": rows})
    assert response.status_code == 413
    assert "limit of 100000 bytes" in response.json()["message"]
    assert client.get("/artifacts").json()["total"] == 0
