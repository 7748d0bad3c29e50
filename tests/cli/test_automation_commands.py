"""`headwater automation apply|ls|inspect|firings|pause|resume|delete` on a real store."""

from __future__ import annotations

import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from headwater.cli.app import create_app
from headwater.cli.automation_file import parse_duration
from headwater.client import api as client_api
from headwater.settings import reset_settings
from headwater.store import tables

from .helpers import StoreBuilder, assert_one_line_error
from .helpers import invoke as invoke_cli

#: The issue's four examples.
EXAMPLES = textwrap.dedent(
    """
    automations:
      - name: etl-failures
        description: Tell the team when any run of flow etl fails
        trigger:
          type: event
          expect: [headwater.flow-run.Failed]
          match_related:
            headwater.resource.role: flow
            headwater.resource.name: etl
        actions:
          - type: send-notification
            url: "json://hooks.example.com/etl-failures"
            subject: "Flow run {{ flow_run.name }} of etl failed"
            body: "{{ flow_run.state_message }} - {{ flow_run.url }}"
        tags: [etl]

      - name: signups
        trigger:
          type: event
          expect: [customer.signup]
          threshold: 10
          within: 1m
        actions:
          - type: run-deployment
            deployment: onboard/default
            parameters:
              emails: "{{ events | map(attribute='payload') | map(attribute='email') | list }}"

      - name: nightly-late
        trigger:
          type: event
          posture: Proactive
          after: [headwater.flow-run.Running]
          expect: [headwater.flow-run.Completed]
          for_each: [headwater.resource.id]
          match_related:
            headwater.resource.role: deployment
            headwater.resource.name: nightly
          within: 4h
        actions:
          - type: send-notification
            url: "json://hooks.example.com/nightly"
            body: "{{ flow_run.name }} has not completed by 06:00; cancelling it"
          - type: cancel-flow-run

      - name: merge-when-ready
        trigger:
          type: compound
          require: all
          within: 1h
          triggers:
            - type: event
              expect: [headwater.flow-run.Completed]
              match_related:
                headwater.resource.role: flow
                headwater.resource.name: upstream
            - type: event
              expect: [files.landed]
        actions:
          - type: run-deployment
            deployment: merge/default
    """
)


def forget_clients() -> None:
    with client_api._clients_lock:
        clients = list(client_api._clients.values())
        client_api._clients.clear()
    for client in clients:
        client.close()


@pytest.fixture(autouse=True)
def no_cached_clients() -> Iterator[None]:
    yield
    forget_clients()


def invoke(*args: str, stdin: str | None = None) -> Result:
    """`headwater ARGS` in this process (the embedded API client is kept between commands:
    building it for each one would cost more than the commands)."""
    if stdin is None:
        return invoke_cli(*args)
    reset_settings()
    return CliRunner().invoke(create_app(), list(args), input=stdin, prog_name="headwater")


def api(method: str, path: str, **options: Any) -> Any:
    reset_settings()
    return client_api.get_client().request(method, path, **options)


@pytest.fixture
def deployments(store: StoreBuilder) -> StoreBuilder:
    """The deployments the examples' actions name."""
    for flow_name in ("onboard", "merge"):
        api("POST", "/deployments", json={"name": "default", "flow_name": flow_name})
    return store


def write(tmp_path: Path, text: str, name: str = "automations.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def applied(result: Result) -> dict[str, str]:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    lines = [line for line in result.stdout.splitlines() if ": " in line]
    return dict(line.split(": ", 1) for line in lines)


def test_apply_creates_then_leaves_unchanged_then_updates(
    deployments: StoreBuilder, tmp_path: Path
) -> None:
    path = write(tmp_path, EXAMPLES)
    assert applied(invoke("automation", "apply", str(path))) == {
        "etl-failures": "created",
        "signups": "created",
        "nightly-late": "created",
        "merge-when-ready": "created",
    }
    stored = {item["name"]: item for item in api("GET", "/automations")["items"]}
    assert stored["signups"]["trigger"]["within"] == 60
    assert stored["nightly-late"]["trigger"]["within"] == 4 * 3600
    assert stored["merge-when-ready"]["trigger"]["within"] == 3600
    assert stored["etl-failures"]["tags"] == ["etl"]
    ids = {name: item["id"] for name, item in stored.items()}

    assert set(applied(invoke("automation", "apply", str(path))).values()) == {"unchanged"}

    write(tmp_path, EXAMPLES.replace("threshold: 10", "threshold: 20"))
    assert applied(invoke("automation", "apply", str(path))) == {
        "etl-failures": "unchanged",
        "signups": "updated",
        "nightly-late": "unchanged",
        "merge-when-ready": "unchanged",
    }
    signups = api("GET", "/automations/name/signups")
    assert signups["trigger"]["threshold"] == 20
    assert signups["id"] == ids["signups"]  # replaced in place, not re-created


def test_apply_dry_run_stores_nothing(deployments: StoreBuilder, tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLES)
    result = invoke("automation", "apply", str(path), "--dry-run")
    assert applied(result)["signups"] == "would be created"
    assert "nothing was stored" in result.stdout
    assert api("GET", "/automations")["total"] == 0


def test_apply_one_automation_at_the_top_level(store: StoreBuilder, tmp_path: Path) -> None:
    single = textwrap.dedent(
        """
        name: just-record
        trigger: {type: event, expect: [orders.late], threshold: 3, within: 90s}
        actions: [{type: do-nothing}]
        """
    )
    assert applied(invoke("automation", "apply", str(write(tmp_path, single)))) == {
        "just-record": "created"
    }
    assert api("GET", "/automations/name/just-record")["trigger"]["within"] == 90


def test_an_invalid_entry_applies_nothing_and_names_entry_and_field(
    deployments: StoreBuilder, tmp_path: Path
) -> None:
    broken = EXAMPLES.replace("within: 4h", "within: soon")
    result = invoke("automation", "apply", str(write(tmp_path, broken)))
    assert_one_line_error(
        result,
        "nothing applied",
        "automations[2] ('nightly-late')",
        "trigger.within",
        'text like "90s", "10m"',
    )
    assert api("GET", "/automations")["total"] == 0

    typo = EXAMPLES.replace("threshold: 10", "treshold: 10")
    result = invoke("automation", "apply", str(write(tmp_path, typo)))
    assert_one_line_error(result, "automations[1] ('signups')", "trigger.treshold", "unknown field")
    no_actions = "automations:\n  - name: idle\n    trigger: {type: event, expect: [x]}\n"
    result = invoke("automation", "apply", str(write(tmp_path, no_actions)))
    assert_one_line_error(result, "automations[0] ('idle')", "at least one action")
    assert api("GET", "/automations")["total"] == 0


def test_apply_refuses_duplicate_names_and_files_that_are_not_automations(
    store: StoreBuilder, tmp_path: Path
) -> None:
    entry = "  - {name: twice, trigger: {type: event}, actions: [{type: do-nothing}]}\n"
    result = invoke("automation", "apply", str(write(tmp_path, "automations:\n" + entry * 2)))
    assert_one_line_error(result, "automations[1] ('twice')", "also used by automations[0]")
    result = invoke("automation", "apply", str(write(tmp_path, "automations: [\n")))
    assert_one_line_error(result, "is not valid YAML")
    result = invoke("automation", "apply", str(write(tmp_path, "- 1\n- 2\n")))
    assert_one_line_error(result, "automations[0]", "is a mapping")
    result = invoke("automation", "apply", str(tmp_path / "missing.yaml"))
    assert_one_line_error(result, "Cannot read", "missing.yaml")
    assert api("GET", "/automations")["total"] == 0


def test_apply_reports_a_refusal_by_the_server(store: StoreBuilder, tmp_path: Path) -> None:
    # No deployment onboard/default here: the server refuses the run-deployment action.
    result = invoke("automation", "apply", str(write(tmp_path, EXAMPLES)))
    assert_one_line_error(result, "Automation 'signups' (automations[1]) was not applied")
    assert "etl-failures: created" in result.stdout


def test_durations() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("10m") == 600
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2d") == 172_800
    assert parse_duration("1.5h") == 5400
    assert parse_duration(45) == 45
    assert parse_duration("soon") == "soon"


def test_ls_inspect_pause_resume_delete(deployments: StoreBuilder, tmp_path: Path) -> None:
    assert "No automations" in invoke("automation", "ls").stdout
    applied(invoke("automation", "apply", str(write(tmp_path, EXAMPLES))))

    result = invoke("automation", "ls")
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert "10 x customer.signup within 1m" in rows["signups"]
    assert "run-deployment" in rows["signups"]
    assert "enabled" in rows["signups"]
    assert "4 of 4 automations" in result.stdout
    listed = json.loads(invoke("automation", "ls", "--json", "--tag", "etl").stdout)
    assert [item["name"] for item in listed] == ["etl-failures"]

    result = invoke("automation", "inspect", "nightly-late")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "proactive: fewer than 1 of headwater.flow-run.Completed within 4h" in out
    assert "after headwater.flow-run.Running" in out
    assert "1. send-notification" in out and "2. cancel-flow-run" in out
    assert "has not fired yet" in out

    assert invoke("automation", "pause", "signups").stdout == "Paused automation 'signups'.\n"
    assert api("GET", "/automations/name/signups")["enabled"] is False
    assert "paused" in invoke("automation", "ls").stdout
    signups_id = api("GET", "/automations/name/signups")["id"]
    assert invoke("automation", "resume", signups_id).exit_code == 0
    assert api("GET", "/automations/name/signups")["enabled"] is True

    result = invoke("automation", "delete", "signups", stdin="n\n")
    assert result.exit_code == 1
    assert api("GET", "/automations")["total"] == 4
    result = invoke("automation", "delete", "signups", stdin="y\n")
    assert result.exit_code == 0, result.stderr
    result = invoke("automation", "delete", "etl-failures", "--yes")
    assert result.stdout == "Deleted automation 'etl-failures'.\n"
    assert api("GET", "/automations")["total"] == 2


def test_unknown_automation_is_one_clear_line(store: StoreBuilder) -> None:
    for command in ("inspect", "pause", "resume", "firings"):
        result = invoke("automation", command, "nope")
        assert_one_line_error(result, "No automation named 'nope'", "headwater automation ls")
    result = invoke("automation", "delete", str(uuid.uuid4()), "--yes")
    assert_one_line_error(result, "No automation named")


def _record_firing(store: StoreBuilder, automation_id: str) -> None:
    """A firing with two actions, one completed and one failed, as the service records them."""
    now = time.time()
    firing_id = uuid.uuid4()
    engine = sa.create_engine(store.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                tables.automation_firing.insert().values(
                    id=firing_id,
                    automation_id=uuid.UUID(automation_id),
                    trigger_id="0",
                    state="TRIGGERED",
                    bucket_key="",
                    triggering_event_id=None,
                    context={},
                    occurred=now - 5,
                )
            )
            for position, (action, state, result, error) in enumerate(
                [
                    ({"type": "run-deployment"}, "COMPLETED", {"flow_run_id": "abc"}, None),
                    ({"type": "send-notification"}, "FAILED", None, "SMTP server refused"),
                ]
            ):
                conn.execute(
                    tables.automation_action.insert().values(
                        id=uuid.uuid4(),
                        firing_id=firing_id,
                        automation_id=uuid.UUID(automation_id),
                        position=position,
                        action=action,
                        state=state,
                        attempts=1,
                        next_attempt=now,
                        result=result,
                        error=error,
                        created=now - 5,
                        updated=now - 4,
                    )
                )
    finally:
        engine.dispose()


def test_firings_show_each_actions_outcome(deployments: StoreBuilder, tmp_path: Path) -> None:
    applied(invoke("automation", "apply", str(write(tmp_path, EXAMPLES))))
    automation_id = api("GET", "/automations/name/signups")["id"]
    assert "has not fired yet" in invoke("automation", "firings", "signups").stdout
    _record_firing(deployments, automation_id)

    result = invoke("automation", "firings", "signups")
    assert result.exit_code == 0, result.stderr
    assert "TRIGGERED" in result.stdout
    assert "run-deployment: COMPLETED" in result.stdout
    assert "send-notification: FAILED (SMTP server refused)" in result.stdout
    assert "1 of 1 firing." in result.stdout
    assert "send-notification: FAILED" in invoke("automation", "inspect", "signups").stdout

    firings = json.loads(invoke("automation", "firings", "signups", "--json").stdout)
    assert [a["state"] for a in firings[0]["actions"]] == ["COMPLETED", "FAILED"]
    shown = json.loads(invoke("automation", "inspect", automation_id, "--json").stdout)
    assert shown["name"] == "signups" and len(shown["firings"]) == 1
