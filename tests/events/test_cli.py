"""`headwater event ls` and `headwater event emit`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from headwater.cli.app import create_app
from headwater.client import api as client_api


def _forget_clients() -> None:
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def fresh_clients(embedded: str) -> Iterator[None]:
    yield
    _forget_clients()


def invoke(*args: str) -> Result:
    _forget_clients()
    return CliRunner().invoke(create_app(), list(args), prog_name="headwater")


def test_emit_then_list_events(embedded: str) -> None:
    emitted = invoke(
        "event",
        "emit",
        "customer.signup",
        "--resource-id",
        "customer.42",
        "--label",
        "plan=pro",
        "--payload",
        '{"email": "a@example.com"}',
    )
    assert emitted.exit_code == 0, emitted.output
    assert "Emitted 'customer.signup'" in emitted.output
    invoke("event", "emit", "invoice.paid", "--resource-id", "invoice.1")

    listed = invoke("event", "ls", "--event", "customer.*", "--since", "1h", "--json")
    assert listed.exit_code == 0, listed.output
    [item] = json.loads(listed.output)
    assert item["resource"] == {"headwater.resource.id": "customer.42", "plan": "pro"}
    assert item["payload"] == {"email": "a@example.com"}

    table = invoke("event", "ls", "--limit", "5")
    assert "invoice.paid" in table.output and "customer.42" in table.output
    assert "2 of 2 events" in table.output


def test_bad_payload_and_since_are_one_line_errors(embedded: str) -> None:
    bad = invoke("event", "emit", "x", "--resource-id", "r", "--payload", "{nope")
    assert bad.exit_code == 1
    assert "--payload" in bad.output
    since = invoke("event", "ls", "--since", "yesterday")
    assert since.exit_code != 0
    assert "--since" in since.output
