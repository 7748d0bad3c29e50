"""The variables API: create, list, read, set, update and delete by name; validation."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import TestClient


def test_create_read_list_update_delete(client: TestClient) -> None:
    created = client.post("/variables", json={"name": "batch_size", "value": 500, "tags": ["etl"]})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "batch_size"
    assert created.json()["value"] == 500
    assert created.json()["tags"] == ["etl"]

    read = client.get("/variables/batch_size").json()
    assert read["value"] == 500
    assert read["id"] == created.json()["id"]

    patched = client.patch("/variables/batch_size", json={"value": {"size": 1000}})
    assert patched.status_code == 200, patched.text
    assert patched.json()["value"] == {"size": 1000}
    assert patched.json()["tags"] == ["etl"]  # untouched
    assert patched.json()["updated"] > created.json()["updated"]

    to_null = client.patch("/variables/batch_size", json={"value": None})
    assert to_null.json()["value"] is None

    assert client.delete("/variables/batch_size").status_code == 204
    missing = client.get("/variables/batch_size")
    assert missing.status_code == 404
    assert "No variable named 'batch_size'" in missing.json()["message"]
    assert client.delete("/variables/batch_size").status_code == 404


@pytest.mark.parametrize(
    "value",
    ["text", "", 42, -1.5, True, False, None, [1, "two", None], {"a": {"b": [1, 2]}}, 2**63 - 1],
)
def test_every_json_value_round_trips(client: TestClient, value: Any) -> None:
    assert client.post("/variables", json={"name": "v", "value": value}).status_code == 201
    assert client.get("/variables/v").json()["value"] == value


def test_existing_name_is_a_conflict_that_says_overwrite(client: TestClient) -> None:
    client.post("/variables", json={"name": "region", "value": "eu"})
    again = client.post("/variables", json={"name": "region", "value": "us"})
    assert again.status_code == 409
    assert "'region' already exists" in again.json()["message"]
    assert "overwrite=True" in again.json()["message"]
    assert client.get("/variables/region").json()["value"] == "eu"


def test_put_creates_then_replaces_keeping_tags_unless_given(client: TestClient) -> None:
    first = client.put("/variables/region", json={"value": "eu", "tags": ["geo"]})
    assert first.status_code == 201
    second = client.put("/variables/region", json={"value": "us"})
    assert second.status_code == 200
    assert (second.json()["value"], second.json()["tags"]) == ("us", ["geo"])
    third = client.put("/variables/region", json={"value": "ap", "tags": []})
    assert third.json()["tags"] == []
    assert third.json()["id"] == first.json()["id"]


def test_list_filters_by_name_and_tags_and_pages(client: TestClient) -> None:
    for index in range(5):
        tags = ["even"] if index % 2 == 0 else []
        client.post("/variables", json={"name": f"var_{index}", "value": index, "tags": tags})
    client.post("/variables", json={"name": "other", "value": 0})

    everything = client.get("/variables").json()
    assert [item["name"] for item in everything["items"]] == [
        "other",
        *[f"var_{i}" for i in range(5)],
    ]
    matching = client.get("/variables", params={"name_contains": "var_"}).json()
    assert matching["total"] == 5
    # `_` is a literal, not a LIKE wildcard
    assert client.get("/variables", params={"name_contains": "r_"}).json()["total"] == 5
    assert client.get("/variables", params={"name_contains": "_1"}).json()["total"] == 1
    tagged = client.get("/variables", params={"tags": ["even"]}).json()
    assert [item["name"] for item in tagged["items"]] == ["var_0", "var_2", "var_4"]
    page = client.get("/variables", params={"offset": 2, "limit": 2}).json()
    assert [item["name"] for item in page["items"]] == ["var_1", "var_2"]
    assert page["total"] == 6


@pytest.mark.parametrize("name", ["Batch", "has space", "dots.here", "ünïcode", "a" * 256, ""])
def test_bad_names_are_422_naming_them(client: TestClient, name: str) -> None:
    answer = client.post("/variables", json={"name": name, "value": 1})
    assert answer.status_code == 422, answer.text
    message = answer.json()["message"]
    assert "body.name" in message
    if name and len(name) <= 255:
        assert repr(name) in message
        assert "lowercase letters, digits, underscores and dashes" in message


def test_bad_name_in_the_path_is_422_naming_it(client: TestClient) -> None:
    answer = client.get("/variables/Bad%20Name")
    assert answer.status_code == 422
    assert "'Bad Name'" in answer.json()["message"]
    assert "e.g. 'bad_name'" in answer.json()["message"]


def test_value_over_64_kib_is_refused_naming_the_limit(client: TestClient) -> None:
    answer = client.post("/variables", json={"name": "big", "value": "x" * 70_000})
    assert answer.status_code == 422
    assert "the limit is 65536 bytes (64 KiB)" in answer.json()["message"]
    assert client.put("/variables/big", json={"value": ["y" * 1000] * 70}).status_code == 422
    assert client.get("/variables/big").status_code == 404


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"name": "v", "value": NaN}', "nan, which JSON cannot represent"),
        ('{"name": "v", "value": {"a": Infinity}}', "inf, which JSON cannot represent"),
        ('{"name": "v", "value": "nul\\u0000here"}', "NUL"),
        ('{"name": "v", "value": ' + "[" * 100 + "]" * 100 + "}", "deeper than 64 levels"),
        ('{"name": "v", "value": 1, "extra": 2}', "body.extra"),
        ('{"name": "v", "value": ' + str(10**30) + "}", "integer beyond 64 bits"),
    ],
)
def test_unstorable_values_are_422(client: TestClient, body: str, reason: str) -> None:
    answer = client.post("/variables", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["message"]
