"""The secrets API: encrypted at rest with a key kept outside the database; values only
through the explicit read; clear errors for a missing, exposed or wrong key."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.server import create_app
from headwater.server.crypto import generate_key, parse_key
from headwater.settings import Settings
from headwater.store import tables
from headwater.store.engine import create_engine

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

VALUE = "s3cr3t-hunter2-token"
MakeApi = Callable[..., TestClient]


@pytest.fixture
def make_api(database_url: str, tmp_path: Path) -> Iterator[MakeApi]:
    """`make(**settings)`: the API in process on the test's store, with these settings."""
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        settings.setdefault("home", tmp_path / "home")
        app = create_app(Settings(database_url=database_url, **settings))
        client = TestClient(app, base_url="http://testserver/api")
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_api: MakeApi) -> TestClient:
    return make_api()


def stored(database_url: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(sa.select(tables.secret))]
    finally:
        engine.dispose()


def test_value_is_encrypted_at_rest_and_read_only_explicitly(
    api: TestClient, database_url: str, tmp_path: Path
) -> None:
    created = api.post("/secrets", json={"name": "github-token", "value": VALUE})
    assert created.status_code == 201, created.text
    assert VALUE not in created.text
    assert set(created.json()) == {"id", "name", "key_id", "created", "updated"}

    (row,) = stored(database_url)
    assert VALUE not in row["ciphertext"]
    assert VALUE not in str(row)
    key = parse_key((tmp_path / "home" / "secret.key").read_bytes(), "test")
    assert row["key_id"] == key.key_id == created.json()["key_id"]

    listed = api.get("/secrets")
    assert VALUE not in listed.text
    assert [item["name"] for item in listed.json()["items"]] == ["github-token"]
    read = api.get("/secrets/github-token")
    assert read.status_code == 200
    assert VALUE not in read.text

    value = api.get("/secrets/github-token/value")
    assert value.json() == {"name": "github-token", "value": VALUE}


def test_json_values_and_replacement(api: TestClient) -> None:
    credentials = {"user": "etl", "password": VALUE, "port": 5432}
    assert api.post("/secrets", json={"name": "db", "value": credentials}).status_code == 201
    assert api.get("/secrets/db/value").json()["value"] == credentials

    again = api.post("/secrets", json={"name": "db", "value": "other"})
    assert again.status_code == 409
    assert "'db' already exists" in again.json()["message"]
    assert "overwrite=True" in again.json()["message"]

    replaced = api.put("/secrets/db", json={"value": "rotated-password"})
    assert replaced.status_code == 200
    assert api.get("/secrets/db/value").json()["value"] == "rotated-password"
    assert api.put("/secrets/new-one", json={"value": "x-value"}).status_code == 201


def test_delete_and_missing_secrets(api: TestClient) -> None:
    api.post("/secrets", json={"name": "gone", "value": VALUE})
    assert api.delete("/secrets/gone").status_code == 204
    for path in ("/secrets/gone", "/secrets/gone/value"):
        answer = api.get(path)
        assert answer.status_code == 404
        assert "No secret named 'gone'" in answer.json()["message"]
    assert api.delete("/secrets/gone").status_code == 404


def test_validation_never_echoes_the_value(api: TestClient) -> None:
    bad_name = api.post("/secrets", json={"name": "Bad Name", "value": VALUE})
    assert bad_name.status_code == 422
    assert "Secret name 'Bad Name' may only contain" in bad_name.json()["message"]
    assert VALUE not in bad_name.text
    too_big = api.post("/secrets", json={"name": "big", "value": VALUE * 5000})
    assert too_big.status_code == 422
    assert "65536 bytes" in too_big.json()["message"]
    assert VALUE not in too_big.text
    extra = api.post("/secrets", json={"name": "x1", "value": VALUE, "note": VALUE})
    assert extra.status_code == 422
    assert VALUE not in extra.text


def test_key_file_is_created_owner_only_and_refused_when_open(
    api: TestClient, tmp_path: Path
) -> None:
    path = tmp_path / "home" / "secret.key"
    assert not path.exists()  # made on first use, not at startup
    api.post("/secrets", json={"name": "one", "value": VALUE})
    assert os.stat(path).st_mode & 0o777 == 0o600

    path.chmod(0o644)
    refused = api.get("/secrets/one/value")
    assert refused.status_code == 400
    message = refused.json()["message"]
    assert str(path) in message
    assert "mode 0644" in message
    assert f"chmod 600 {path}" in message
    assert api.post("/secrets", json={"name": "two", "value": VALUE}).status_code == 400
    path.chmod(0o600)
    assert api.get("/secrets/one/value").json()["value"] == VALUE


def test_key_from_the_environment_and_a_wrong_key(make_api: MakeApi, database_url: str) -> None:
    first_key = generate_key().decode()
    api = make_api(secret_key=first_key)
    api.post("/secrets", json={"name": "api-token", "value": VALUE})
    (row,) = stored(database_url)
    assert row["key_id"] == parse_key(first_key, "test").key_id

    other_key = generate_key().decode()
    wrong = make_api(secret_key=other_key)
    answer = wrong.get("/secrets/api-token/value")
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert "Secret 'api-token' was encrypted with key " + row["key_id"] in message
    assert parse_key(other_key, "test").key_id in message
    assert "HEADWATER_SECRET_KEY" in message
    assert VALUE not in answer.text
    # Metadata stays readable without the key.
    assert wrong.get("/secrets").status_code == 200

    malformed = make_api(secret_key="not-a-key")
    bad = malformed.get("/secrets/api-token/value")
    assert bad.status_code == 400
    assert "HEADWATER_SECRET_KEY is not a Fernet key" in bad.json()["message"]
    assert "headwater secret generate-key" in bad.json()["message"]


def test_missing_key_file_on_read_says_where_it_was_looked_for(
    make_api: MakeApi, tmp_path: Path
) -> None:
    writer = make_api(home=tmp_path / "a")
    writer.post("/secrets", json={"name": "one", "value": VALUE})
    reader = make_api(home=tmp_path / "b")
    answer = reader.get("/secrets/one/value")
    assert answer.status_code == 400
    assert f"{tmp_path / 'b' / 'secret.key'} does not exist" in answer.json()["message"]
    assert not (tmp_path / "b" / "secret.key").exists()


def test_a_ciphertext_moved_to_another_secret_does_not_decrypt(
    api: TestClient, database_url: str
) -> None:
    api.post("/secrets", json={"name": "admin", "value": VALUE})
    api.post("/secrets", json={"name": "guest", "value": "guest-password"})
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            admin = conn.execute(
                sa.select(tables.secret.c.ciphertext).where(tables.secret.c.name == "admin")
            ).scalar_one()
            conn.execute(
                sa.update(tables.secret)
                .where(tables.secret.c.name == "guest")
                .values(ciphertext=admin)
            )
    finally:
        engine.dispose()
    answer = api.get("/secrets/guest/value")
    assert answer.status_code == 400
    assert "belongs to another secret" in answer.json()["message"]
    assert VALUE not in answer.text
