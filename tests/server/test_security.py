"""Security defaults: API key, loopback-only without one, body size limits, OpenAPI."""

from __future__ import annotations

import gzip
import json
import subprocess

import pytest

from headwater.cli.server import is_loopback, refusal

from .conftest import MakeClient
from .helpers import headwater_command, run_batch, server_env


def test_with_an_api_key_every_route_but_health_needs_it(make_client: MakeClient) -> None:
    client = make_client(api_key="s3cret")

    assert client.get("/health").status_code == 200
    for path in ("/flow_runs", "/ready", "/openapi.json", "/flows"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "Authorization: Bearer" in response.json()["message"]
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.post("/records", json={}).status_code == 401
    wrong = client.get("/flow_runs", headers={"Authorization": "Bearer s3cre"})
    assert wrong.status_code == 401
    right = client.get("/flow_runs", headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 200
    document = client.get("/openapi.json", headers={"Authorization": "Bearer s3cret"}).json()
    assert document["security"] == [{"bearer": []}]


def test_bodies_over_the_limit_are_413s(make_client: MakeClient) -> None:
    client = make_client(request_max_bytes=2_000, records_max_bytes=20_000)
    big = {"flow_name": "a", "tags": ["x" * 100] * 30}

    assert client.post("/flow_runs", json=big).status_code == 413
    body = json.dumps(run_batch(tasks=3)).encode()
    assert 2_000 < len(body) < 20_000
    assert client.post("/records", content=body).status_code == 200
    too_big = json.dumps(run_batch(tasks=40)).encode()
    response = client.post("/records", content=too_big)
    assert response.status_code == 413
    assert "limit of 20000 bytes" in response.json()["message"]


def test_a_gzip_body_is_limited_by_its_inflated_size(make_client: MakeClient) -> None:
    client = make_client(records_max_bytes=100_000)
    bomb = gzip.compress(b" " * 10_000_000)  # 10 MB of spaces in about 10 KB
    response = client.post("/records", content=bomb, headers={"content-encoding": "gzip"})
    assert response.status_code == 413
    unknown = client.post("/records", content=b"{}", headers={"content-encoding": "br"})
    assert unknown.status_code == 415


def test_a_body_without_content_length_is_counted(make_client: MakeClient) -> None:
    client = make_client(request_max_bytes=1_000)

    def chunks() -> object:
        for _ in range(10):
            yield b" " * 200

    response = client.post("/flow_runs", content=chunks())  # type: ignore[arg-type]
    assert response.status_code == 413


def test_openapi_document_and_docs_are_served(make_client: MakeClient) -> None:
    client = make_client()
    document = client.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/records", "/api/flow_runs", "/api/flow_runs/{flow_run_id}/set_state"):
        assert path in document["paths"]
    records = document["components"]["schemas"]["Records"]
    assert set(records["properties"]) == {
        "flows",
        "flow_runs",
        "task_runs",
        "states",
        "logs",
        "events",
    }
    assert "TaskRunRecord" in document["components"]["schemas"]
    assert client.get("http://testserver/docs").status_code == 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("0.0.0.0", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert (refusal(host, None, False) is None) is loopback
    assert refusal(host, "key", False) is None
    assert refusal(host, None, True) is None


def test_server_start_refuses_a_public_address_without_an_api_key(tmp_path: object) -> None:
    env = server_env(tmp_path, "sqlite:///unused.db")  # type: ignore[arg-type]
    result = subprocess.run(
        [*headwater_command(), "server", "start", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert "Refusing to listen on 0.0.0.0 without an API key" in message
    assert "--insecure-no-auth" in message and "HEADWATER_API_KEY" in message
