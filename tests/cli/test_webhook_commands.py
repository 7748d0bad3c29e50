"""`headwater webhook ...`: create, ls, inspect, rotate, enable, disable, delete; and a
webhook created with the CLI against a real server receiving a signed request."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.server.helpers import running_server
from typer.testing import CliRunner, Result

from headwater.cli.app import create_app
from headwater.client import api as client_api
from headwater.settings import reset_settings
from headwater.store import tables

from .helpers import StoreBuilder, assert_one_line_error
from .helpers import invoke as invoke_cli

TEMPLATE = (
    '{"event": "ping.{{ body.name }}", "resource": {"headwater.resource.id": "pinger"}, '
    '"payload": {"from": "{{ headers["user-agent"] }}"}}'
)


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


def invoke(*args: str, stdin: str | None = None) -> Result:
    # The embedded API client is kept between commands (as cached per settings): making
    # one per command would cost the app's startup each time.
    if stdin is None:
        return invoke_cli(*args)
    reset_settings()
    return CliRunner().invoke(create_app(), list(args), input=stdin, prog_name="headwater")


def inspect(name: str) -> dict[str, Any]:
    result = invoke("webhook", "inspect", name)
    assert result.exit_code == 0, result.output
    item: dict[str, Any] = json.loads(result.output)
    return item


def test_create_ls_inspect_rotate_enable_disable_delete(
    store: StoreBuilder, tmp_path: Path
) -> None:
    created = invoke("webhook", "create", "pings", "--template", TEMPLATE, "--description", "d")
    assert created.exit_code == 0, created.output
    item = inspect("pings")
    assert created.output.strip() == (
        f"Created webhook 'pings': POST /hooks/{item['slug']} (on your server's address)"
    )
    assert item["url"] == f"/hooks/{item['slug']}"
    assert item["description"] == "d"
    assert item["template"] == TEMPLATE
    assert item["enabled"] is True and item["signed"] is False

    template_file = tmp_path / "github.j2"
    template_file.write_text(TEMPLATE.replace("ping.", "github."))
    from_file = invoke(
        "webhook", "create", "github", "--template-file", str(template_file), "--disabled"
    )
    assert from_file.exit_code == 0, from_file.output
    assert "(disabled)" in from_file.output
    from_stdin = invoke(
        "webhook",
        "create",
        "stdin",
        "--template-file",
        "-",
        "--signing-secret",
        "s" * 20,
        stdin=TEMPLATE,
    )
    assert from_stdin.exit_code == 0, from_stdin.output
    assert "s" * 20 not in from_stdin.output
    assert inspect("stdin")["signed"] is True
    assert inspect("github")["template"].startswith('{"event": "github.')

    listed = invoke("webhook", "ls")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == ["Name", "Enabled", "Signed", "URL"]
    assert lines[1].split() == ["github", "no", "no", inspect("github")["url"]]
    assert lines[2].split() == ["pings", "yes", "no", item["url"]]
    assert lines[3].split()[:3] == ["stdin", "yes", "yes"]
    assert "3 of 3 webhooks." in listed.output
    only = json.loads(invoke("webhook", "ls", "--name", "pin", "--json").output)
    assert [found["name"] for found in only] == ["pings"]

    rotated = invoke("webhook", "rotate", "pings")
    assert rotated.exit_code == 0, rotated.output
    new_slug = inspect("pings")["slug"]
    assert new_slug != item["slug"]
    assert f"/hooks/{new_slug}" in rotated.output
    assert "old URL answers 404" in rotated.output

    assert "Disabled webhook 'pings'" in invoke("webhook", "disable", "pings").output
    assert inspect("pings")["enabled"] is False
    enabled = invoke("webhook", "enable", "github")
    assert enabled.exit_code == 0
    assert f"Enabled webhook 'github': POST /hooks/{inspect('github')['slug']}" in enabled.output
    assert inspect("github")["enabled"] is True

    refused = invoke("webhook", "delete", "pings", stdin="n\n")
    assert refused.exit_code == 1
    assert inspect("pings")["name"] == "pings"
    deleted = invoke("webhook", "delete", "pings", "--yes")
    assert deleted.output.strip() == "Deleted webhook 'pings'."
    assert_one_line_error(invoke("webhook", "inspect", "pings"), "No webhook named 'pings'")
    assert "2 of 2 webhooks." in invoke("webhook", "ls").output


def test_generated_secret_is_printed_once_and_stored_encrypted(store: StoreBuilder) -> None:
    created = invoke(
        "webhook", "create", "signed", "--template", TEMPLATE, "--generate-signing-secret"
    )
    assert created.exit_code == 0, created.output
    match = re.search(
        r"Signing secret \(shown this once; keep it in the sender\): (\S+)", created.output
    )
    assert match, created.output
    secret = match.group(1)
    assert len(secret) >= 40
    assert secret not in invoke("webhook", "inspect", "signed").output
    assert secret not in invoke("webhook", "ls", "--json").output
    engine = sa.create_engine(store.url)
    try:
        with engine.connect() as conn:
            (row,) = conn.execute(sa.select(tables.webhook)).mappings()
    finally:
        engine.dispose()
    assert secret not in str(dict(row))


def test_errors_are_one_line(store: StoreBuilder, tmp_path: Path) -> None:
    assert_one_line_error(
        invoke("webhook", "create", "x"), "--template TEXT or --template-file PATH"
    )
    assert_one_line_error(
        invoke("webhook", "create", "x", "--template", TEMPLATE, "--template-file", "f"),
        "one of them",
    )
    assert_one_line_error(
        invoke("webhook", "create", "x", "--template-file", str(tmp_path / "missing.j2")),
        "cannot read",
        "missing.j2",
    )
    assert_one_line_error(
        invoke(
            "webhook",
            "create",
            "x",
            "--template",
            TEMPLATE,
            "--signing-secret",
            "s" * 20,
            "--generate-signing-secret",
        ),
        "not both",
    )
    assert_one_line_error(
        invoke("webhook", "create", "x", "--template", "{{ ''.__class__ }}"), "not allowed"
    )
    assert_one_line_error(
        invoke("webhook", "create", "Bad.Name", "--template", TEMPLATE), "'Bad.Name'"
    )
    assert invoke("webhook", "create", "x", "--template", TEMPLATE).exit_code == 0
    assert_one_line_error(
        invoke("webhook", "create", "x", "--template", TEMPLATE), "'x' already exists"
    )
    for command in ("inspect", "rotate", "enable", "disable", "delete"):
        assert_one_line_error(invoke("webhook", command, "nope"), "No webhook named 'nope'")
    assert "No webhooks." not in invoke("webhook", "ls").output


def test_against_a_server_prints_full_urls_that_accept_signed_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = f"sqlite:///{tmp_path / 'server.db'}"
    with running_server(tmp_path / "server-home", database_url) as (api_url, _):
        monkeypatch.setenv("HEADWATER_API_URL", api_url)
        created = invoke(
            "webhook", "create", "remote", "--template", TEMPLATE, "--generate-signing-secret"
        )
        assert created.exit_code == 0, created.output
        url_match = re.search(r"POST (http://\S+)", created.output)
        secret_match = re.search(r"Signing secret .*: (\S+)", created.output)
        assert url_match and secret_match, created.output
        url, secret = url_match.group(1), secret_match.group(1)
        described = inspect("remote")
        assert url == api_url.removesuffix("/api") + "/hooks/" + described["slug"]
        assert described["url"] == url
        assert "remote" in invoke("webhook", "ls").output and url in invoke("webhook", "ls").output

        body = b'{"name": "remote"}'
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "User-Agent": "cli-test"}
        unsigned = httpx.post(url, content=body, headers=headers)
        assert unsigned.status_code == 401
        answer = httpx.post(
            url, content=body, headers={**headers, "X-Headwater-Signature": signature}
        )
        assert answer.status_code == 202, answer.text

        event_id = answer.json()["event_id"]
        engine = sa.create_engine(database_url)
        try:
            with engine.connect() as conn:
                (row,) = conn.execute(sa.select(tables.event)).mappings()
        finally:
            engine.dispose()
        assert row["id"].hex == event_id.replace("-", "")
        assert row["event"] == "ping.remote"
        assert row["payload"] == {"from": "cli-test"}

        rotated = invoke("webhook", "rotate", "remote")
        assert rotated.exit_code == 0
        gone = httpx.post(
            url, content=body, headers={**headers, "X-Headwater-Signature": signature}
        )
        assert gone.status_code == 404
