"""`headwater variable ...` and `headwater secret ...`, including key rotation."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from headwater.cli.app import create_app
from headwater.client import api as client_api
from headwater.server.crypto import generate_key, parse_key
from headwater.settings import reset_settings
from headwater.store import tables

from .helpers import StoreBuilder, assert_one_line_error
from .helpers import invoke as invoke_cli

VALUE = "cli-secret-5d1e7b-value"


def forget_clients() -> None:
    """Each command runs as in a new process: no client (and settings) of an earlier one."""
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def no_cached_clients() -> Any:
    yield
    forget_clients()


def invoke(*args: str) -> Result:
    forget_clients()
    return invoke_cli(*args)


def invoke_with(stdin: str, *args: str) -> Result:
    forget_clients()
    reset_settings()
    return CliRunner().invoke(create_app(), list(args), input=stdin, prog_name="headwater")


def secret_rows(store: StoreBuilder) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(tables.secret)).mappings()
            return {row["name"]: dict(row) for row in rows}
    finally:
        engine.dispose()


def read_value(name: str) -> Any:
    forget_clients()
    reset_settings()
    return client_api.get_client().request("GET", f"/secrets/{name}/value")["value"]


# -- variables ---------------------------------------------------------------------------


def test_variable_set_get_ls_unset(store: StoreBuilder) -> None:
    assert invoke("variable", "set", "batch_size", "500", "--tag", "etl").exit_code == 0
    assert invoke("variable", "set", "region", "eu-west-1").exit_code == 0
    assert invoke("variable", "set", "config", '{"rows": 10, "on": true}').exit_code == 0
    assert invoke("variable", "set", "quoted", '"42"').exit_code == 0

    assert invoke("variable", "get", "batch_size").output == "500\n"
    assert invoke("variable", "get", "region").output == "eu-west-1\n"
    assert json.loads(invoke("variable", "get", "config").output) == {"rows": 10, "on": True}
    assert invoke("variable", "get", "quoted").output == "42\n"
    as_json = json.loads(invoke("variable", "get", "quoted", "--json").output)
    assert as_json["value"] == "42"

    listed = invoke("variable", "ls")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["Name", "Value", "Tags", "Updated"]
    assert lines[1].split()[:2] == ["batch_size", "500"]
    assert "etl" in lines[1]
    assert "4 of 4 variables." in listed.output
    only = json.loads(invoke("variable", "ls", "--tag", "etl", "--json").output)
    assert [item["name"] for item in only] == ["batch_size"]
    named = json.loads(invoke("variable", "ls", "--name", "reg", "--json").output)
    assert [item["name"] for item in named] == ["region"]

    taken = invoke("variable", "set", "region", "us-east-1")
    assert_one_line_error(taken, "'region' already exists", "--overwrite")
    replaced = invoke("variable", "set", "region", "us-east-1", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert invoke("variable", "get", "region").output == "us-east-1\n"

    assert invoke("variable", "unset", "region").output.strip() == "Unset variable 'region'."
    assert_one_line_error(invoke("variable", "get", "region"), "No variable named 'region'")
    assert_one_line_error(invoke("variable", "unset", "region"), "No variable named 'region'")


def test_variable_errors_are_one_line(store: StoreBuilder) -> None:
    bad = invoke("variable", "set", "Bad.Name", "1")
    assert_one_line_error(bad, "'Bad.Name'", "lowercase letters, digits, underscores and dashes")
    too_big = invoke("variable", "set", "big", "x" * 70_000)
    assert_one_line_error(too_big, "65536 bytes")
    assert "No variables." in invoke("variable", "ls").output


# -- secrets -----------------------------------------------------------------------------


def test_secret_set_from_stdin_ls_and_delete(store: StoreBuilder, home: Path) -> None:
    stored = invoke_with(VALUE + "\n", "secret", "set", "api-token", "--value-file", "-")
    assert stored.exit_code == 0, stored.output
    assert "Stored secret 'api-token'" in stored.output
    assert VALUE not in stored.output
    assert os.stat(home / "secret.key").st_mode & 0o777 == 0o600
    assert read_value("api-token") == VALUE  # the trailing newline is not part of it
    assert VALUE not in secret_rows(store)["api-token"]["ciphertext"]

    # piped without --value-file, and a JSON value from a file
    assert invoke_with("piped-" + VALUE, "secret", "set", "piped").exit_code == 0
    assert read_value("piped") == "piped-" + VALUE
    document = home.parent / "db.json"
    document.write_text(json.dumps({"user": "etl", "password": VALUE}))
    from_file = invoke("secret", "set", "db", "--value-file", str(document), "--json-value")
    assert from_file.exit_code == 0, from_file.output
    assert read_value("db") == {"user": "etl", "password": VALUE}

    listed = invoke("secret", "ls")
    assert listed.exit_code == 0, listed.output
    assert VALUE not in listed.output
    assert [line.split()[0] for line in listed.output.splitlines()[1:4]] == [
        "api-token",
        "db",
        "piped",
    ]
    assert "3 of 3 secrets." in listed.output
    assert VALUE not in invoke("secret", "ls", "--json").output

    taken = invoke_with("other", "secret", "set", "api-token")
    assert_one_line_error(taken, "'api-token' already exists", "--overwrite")
    assert invoke_with("new-value", "secret", "set", "api-token", "--overwrite").exit_code == 0
    assert read_value("api-token") == "new-value"

    assert invoke("secret", "delete", "db").output.strip() == "Deleted secret 'db'."
    assert_one_line_error(invoke("secret", "delete", "db"), "No secret named 'db'")
    assert_one_line_error(invoke_with("", "secret", "set", "empty"), "is empty")
    assert_one_line_error(
        invoke_with("{nope", "secret", "set", "bad", "--json-value"), "is not JSON"
    )


def test_rotate_key_with_the_key_file(store: StoreBuilder, home: Path) -> None:
    invoke_with(VALUE, "secret", "set", "api-token")
    invoke_with("second-" + VALUE, "secret", "set", "other")
    key_file = home / "secret.key"
    old = parse_key(key_file.read_bytes(), "old")
    assert {row["key_id"] for row in secret_rows(store).values()} == {old.key_id}

    rotated = invoke("secret", "rotate-key")
    assert rotated.exit_code == 0, rotated.output
    new = parse_key(key_file.read_bytes(), "new")
    assert new.key_id != old.key_id
    assert f"Re-encrypted 2 secrets with key {new.key_id}" in rotated.output
    assert os.stat(key_file).st_mode & 0o777 == 0o600
    rows = secret_rows(store)
    assert {row["key_id"] for row in rows.values()} == {new.key_id}
    assert all(VALUE not in row["ciphertext"] for row in rows.values())
    # Only the new key is kept, and it is all that is needed.
    assert [path.name for path in home.iterdir() if "key" in path.name] == ["secret.key"]
    assert read_value("api-token") == VALUE
    assert read_value("other") == "second-" + VALUE

    again = invoke("secret", "rotate-key")  # a second rotation works the same way
    assert again.exit_code == 0, again.output
    assert read_value("api-token") == VALUE


def test_rotate_key_with_the_environment_key(
    store: StoreBuilder, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = generate_key().decode()
    monkeypatch.setenv("HEADWATER_SECRET_KEY", old_key)
    invoke_with(VALUE, "secret", "set", "api-token")

    refused = invoke("secret", "rotate-key")
    assert_one_line_error(refused, "HEADWATER_SECRET_KEY is set", "--new-key-file")

    new_file = home.parent / "new.key"
    made = invoke("secret", "generate-key", "--file", str(new_file))
    assert made.exit_code == 0, made.output
    assert os.stat(new_file).st_mode & 0o777 == 0o600
    new = parse_key(new_file.read_bytes(), "new")

    rotated = invoke("secret", "rotate-key", "--new-key-file", str(new_file))
    assert rotated.exit_code == 0, rotated.output
    assert "set HEADWATER_SECRET_KEY to the key in" in rotated.output
    assert secret_rows(store)["api-token"]["key_id"] == new.key_id

    # Until the setting changes, reads fail with a message naming the key needed.
    with pytest.raises(Exception, match=f"encrypted with key {new.key_id}"):
        read_value("api-token")
    monkeypatch.setenv("HEADWATER_SECRET_KEY", new_file.read_text().strip())
    assert read_value("api-token") == VALUE


def test_rotate_key_needs_every_old_key_and_changes_nothing_without(
    store: StoreBuilder, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = home.parent / "first.key"
    invoke("secret", "generate-key", "--file", str(first))
    monkeypatch.setenv("HEADWATER_SECRET_KEY_FILE", str(first))
    invoke_with(VALUE, "secret", "set", "from-first")
    second = home.parent / "second.key"
    invoke("secret", "generate-key", "--file", str(second))
    monkeypatch.setenv("HEADWATER_SECRET_KEY_FILE", str(second))
    invoke_with("two-" + VALUE, "secret", "set", "from-second")
    before = secret_rows(store)

    missing = invoke("secret", "rotate-key")
    first_id = parse_key(first.read_bytes(), "first").key_id
    assert_one_line_error(
        missing, f"'from-first' was encrypted with key {first_id}", "--old-key-file"
    )
    assert secret_rows(store) == before
    assert parse_key(second.read_bytes(), "x").key_id == before["from-second"]["key_id"]

    rotated = invoke("secret", "rotate-key", "--old-key-file", str(first))
    assert rotated.exit_code == 0, rotated.output
    assert "Re-encrypted 2 secrets" in rotated.output
    assert read_value("from-first") == VALUE
    assert read_value("from-second") == "two-" + VALUE


def test_key_files_open_to_others_are_refused(store: StoreBuilder, home: Path) -> None:
    invoke_with(VALUE, "secret", "set", "api-token")
    open_file = home.parent / "open.key"
    open_file.write_bytes(generate_key())
    open_file.chmod(0o644)
    refused = invoke("secret", "rotate-key", "--new-key-file", str(open_file))
    assert_one_line_error(refused, f"chmod 600 {open_file}")

    (home / "secret.key").chmod(0o640)
    assert_one_line_error(invoke_with("x-value", "secret", "set", "more"), "chmod 600", "mode 0640")


def test_rotate_key_refuses_to_run_through_a_server(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADWATER_API_URL", "http://127.0.0.1:9/api")
    assert_one_line_error(invoke("secret", "rotate-key"), "without HEADWATER_API_URL")


def test_config_view_never_shows_the_secret_key(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = generate_key().decode()
    monkeypatch.setenv("HEADWATER_SECRET_KEY", key)
    monkeypatch.setenv("HEADWATER_SECRET_KEY_FILE", str(home / "other.key"))
    shown = invoke("config", "view")
    assert shown.exit_code == 0, shown.output
    assert key not in shown.output
    assert "HEADWATER_SECRET_KEY " in shown.output
    assert str(home / "other.key") in shown.output
    reset_settings()
    from headwater.settings import get_settings

    assert key not in repr(get_settings())
