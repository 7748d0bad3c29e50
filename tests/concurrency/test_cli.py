"""`headwater concurrency-limit ...` on the embedded store and against a server."""

from __future__ import annotations

import json

from tests.cli.helpers import invoke, run_headwater

from headwater.client.api import get_client
from headwater.concurrency.sync import concurrency


def test_create_list_inspect_update_reset_delete(embedded: str) -> None:
    created = invoke("concurrency-limit", "create", "tag:db", "2")
    assert created.exit_code == 0, created.output
    assert "Created concurrency limit 'tag:db' with 2 slot(s)." in created.output
    rate = invoke("concurrency-limit", "create", "api", "10", "--slot-decay-per-second", "0.5")
    assert "freeing 0.5 slot(s) per second" in rate.output
    off = invoke("concurrency-limit", "create", "off", "1", "--inactive")
    assert "(inactive)" in off.output

    with concurrency("tag:db"):
        listed = invoke("concurrency-limit", "ls")
        assert listed.exit_code == 0, listed.output
        lines = listed.output.splitlines()
        assert lines[0].split() == ["Name", "Taken", "Limit", "Decay/s", "Active"]
        assert lines[1].split() == ["api", "0", "10", "0.5", "yes"]
        assert lines[2].split() == ["off", "0", "1", "-", "no"]
        assert lines[3].split() == ["tag:db", "1", "2", "-", "yes"]
        assert "3 of 3 limits." in listed.output

        inspected = invoke("concurrency-limit", "inspect", "tag:db")
        assert inspected.exit_code == 0, inspected.output
        assert "Slots taken        1" in inspected.output
        assert "pid=" in inspected.output  # the lease's holder
        document = json.loads(invoke("concurrency-limit", "inspect", "tag:db", "--json").output)
        assert document["name"] == "tag:db"
        assert document["leases"][0]["slots"] == 1

    as_json = json.loads(invoke("concurrency-limit", "ls", "--json").output)
    assert [item["name"] for item in as_json] == ["api", "off", "tag:db"]

    updated = invoke("concurrency-limit", "update", "tag:db", "--limit", "5", "--inactive")
    assert updated.exit_code == 0, updated.output
    assert "5 slot(s), no slot decay, inactive" in updated.output
    limit = get_client().request("GET", "/concurrency_limits/tag:db")
    assert (limit["limit"], limit["active"]) == (5, False)

    with concurrency("api", occupy=3):
        reset = invoke("concurrency-limit", "reset", "api")
        assert "0 of 10 slot(s) taken" in reset.output
        assert get_client().request("GET", "/concurrency_limits/api")["active_slots"] == 0

    deleted = invoke("concurrency-limit", "delete", "off")
    assert deleted.output.strip() == "Deleted concurrency limit 'off'."
    assert "off" not in invoke("concurrency-limit", "ls").output


def test_errors_are_one_line(embedded: str) -> None:
    invoke("concurrency-limit", "create", "db", "1")
    duplicate = invoke("concurrency-limit", "create", "db", "1")
    assert duplicate.exit_code == 1
    assert "A concurrency limit named 'db' already exists" in duplicate.output

    for args in (("inspect", "nope"), ("update", "nope", "--limit", "1"), ("reset", "nope")):
        result = invoke("concurrency-limit", *args)
        assert result.exit_code == 1
        assert result.output.strip() == (
            "No concurrency limit named 'nope'; create it with "
            "`headwater concurrency-limit create nope LIMIT`."
        )
    nothing = invoke("concurrency-limit", "update", "db")
    assert nothing.exit_code == 1
    assert "Nothing to change" in nothing.output
    slash = invoke("concurrency-limit", "create", "a/b", "1")
    assert slash.exit_code == 1
    assert len(slash.output.strip().splitlines()) == 1
    assert "contains '/'" in slash.output
    assert invoke("concurrency-limit", "ls").output.startswith("Name")


def test_empty_list(embedded: str) -> None:
    result = invoke("concurrency-limit", "ls")
    assert result.exit_code == 0
    assert "No concurrency limits" in result.output


def test_help_explains_tag_limits() -> None:
    result = invoke("concurrency-limit", "--help")
    assert "tag:TAG" in result.output
    assert "tag:TAG" in invoke("concurrency-limit", "create", "--help").output


def test_commands_against_a_server(remote: str) -> None:
    created = run_headwater("concurrency-limit", "create", "tag:db", "3")
    assert created.returncode == 0, created.stderr
    listed = run_headwater("concurrency-limit", "ls", "--json")
    assert [item["name"] for item in json.loads(listed.stdout)] == ["tag:db"]
    missing = run_headwater("concurrency-limit", "delete", "nope")
    assert missing.returncode == 1
    assert "No concurrency limit named 'nope'" in missing.stderr
