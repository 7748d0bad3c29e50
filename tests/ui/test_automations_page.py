"""Automations in Chromium against a real server with its services: create one through
the form (checked through the API), see it fire on a real event with the outcome of its
actions, edit, pause, resume and delete it, and see the API's refusals in the form."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from tests.ui.conftest import Ui

pytestmark = pytest.mark.timeout(180)

XSS = "<script>alert(1)</script>"


def _automation(ui: Ui, name: str) -> dict[str, Any] | None:
    return ui.find(f"/automations/name/{name}")


def _create(ui: Ui, name: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "trigger": {"expect": [f"ui.{name}"]},
        "actions": [{"type": "do-nothing"}],
        **fields,
    }
    created: dict[str, Any] = ui.api("POST", "/automations", json=body)
    return created


def _count(ui: Ui) -> int:
    total: int = ui.api("GET", "/automations")["total"]
    return total


@pytest.fixture(scope="module")
def deployment(ui: Ui) -> dict[str, Any]:
    return ui.stack.deploy("quick", "ui-automations")


def test_create_through_the_form_then_it_fires(
    ui: Ui, page: Page, deployment: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/automations")
    page.get_by_test_id("new-automation").click()
    expect(page).to_have_url(f"{ui.url}/automations/new")

    page.get_by_test_id("name").fill("ui-ping")
    page.get_by_test_id("description").fill("Runs quick when pinged")
    page.get_by_test_id("expect").fill("ui.test.ping")
    page.get_by_test_id("match").fill("headwater.resource.id=pinger.*")
    page.get_by_test_id("threshold").fill("2")
    page.get_by_test_id("within").fill("60")
    page.get_by_test_id("add-action-type").select_option("run-deployment")
    page.get_by_test_id("add-action").click()
    card = page.locator('.action-card[data-action-type="run-deployment"]')
    card.locator("select").select_option(label="quick/ui-automations")
    card.locator("textarea").fill('{"tag": "{{ event.payload.tag }}"}')
    page.get_by_test_id("save").click()

    expect(page).to_have_url(re.compile(r"/automations/[0-9a-f-]{36}$"))
    expect(page.get_by_test_id("automation-title")).to_have_text("ui-ping")
    expect(page.get_by_test_id("trigger-text")).to_have_text(
        "When ui.test.ping occurs 2 times within 1 min on resources with "
        "headwater.resource.id = pinger.*"
    )
    expect(page.get_by_test_id("action-texts")).to_contain_text(
        "Run deployment quick/ui-automations with parameters"
    )
    created = _automation(ui, "ui-ping")
    assert created is not None
    assert created["description"] == "Runs quick when pinged"
    assert created["enabled"] is True
    trigger = created["trigger"]
    assert trigger["expect"] == ["ui.test.ping"]
    assert trigger["match"] == {"headwater.resource.id": "pinger.*"}
    assert (trigger["threshold"], trigger["within"], trigger["posture"]) == (2, 60, "Reactive")
    assert created["actions"] == [
        {"type": "do-nothing"},
        {
            "type": "run-deployment",
            "source": "selected",
            "deployment_id": deployment["id"],
            "deployment": None,
            "parameters": {"tag": "{{ event.payload.tag }}"},
            "job_variables": None,
        },
    ]

    # Two pings fire it; the firing shows up on the open page, with each action's outcome.
    ping = {"event": "ui.test.ping", "resource": {"headwater.resource.id": "pinger.1"}}
    ui.api("POST", "/events", json=[{**ping, "payload": {"tag": "a"}}, ping])
    firing = page.get_by_test_id("firing-row")
    expect(firing).to_have_count(1, timeout=20_000)
    expect(firing.get_by_test_id("action-state")).to_have_text(
        ["completed", "completed"], timeout=20_000
    )
    expect(firing.locator('a[href^="/events/"]')).to_have_text("ui.test.ping")
    expect(firing.locator('a[href^="/flow-runs/"]')).to_have_count(1)

    page.goto(f"{ui.url}/automations")
    row = page.get_by_test_id("automation-row").filter(has_text="ui-ping")
    expect(row).to_contain_text("When ui.test.ping occurs 2 times")
    expect(row).to_contain_text("completed")


def test_edit_changes_what_the_api_returns(ui: Ui, page: Page) -> None:
    created = _create(ui, "ui-edit-me", trigger={"expect": ["ui.edit"], "threshold": 3})
    page.goto(f"{ui.url}/automations/{created['id']}")
    page.get_by_test_id("edit").click()
    expect(page).to_have_url(f"{ui.url}/automations/{created['id']}/edit")
    expect(page.get_by_test_id("name")).to_have_value("ui-edit-me")
    expect(page.get_by_test_id("threshold")).to_have_value("3")
    expect(page.get_by_test_id("expect")).to_have_value("ui.edit")

    page.get_by_test_id("name").fill("ui-edited")
    page.get_by_test_id("threshold").fill("5")
    page.get_by_test_id("within").fill("30")
    page.get_by_test_id("save").click()

    expect(page).to_have_url(f"{ui.url}/automations/{created['id']}")
    expect(page.get_by_test_id("automation-title")).to_have_text("ui-edited")
    edited = ui.api("GET", f"/automations/{created['id']}")
    assert edited["name"] == "ui-edited"
    assert (edited["trigger"]["threshold"], edited["trigger"]["within"]) == (5, 30)
    assert edited["actions"] == [{"type": "do-nothing"}]


def test_a_trigger_the_form_cannot_show_is_edited_as_json(ui: Ui, page: Page) -> None:
    trigger = {
        "type": "compound",
        "require": "any",
        "triggers": [{"expect": ["ui.a"]}, {"expect": ["ui.b"]}],
    }
    created = _create(ui, "ui-compound", trigger=trigger)
    page.goto(f"{ui.url}/automations/{created['id']}")
    expect(page.get_by_test_id("trigger-text")).to_have_text(
        "When any of these fire: (When ui.a occurs); (When ui.b occurs)"
    )
    page.get_by_test_id("edit").click()
    editor = page.get_by_test_id("trigger-json")
    expect(editor).to_be_visible()
    expect(editor).to_have_value(re.compile('"type": "compound"'))
    editor.fill(editor.input_value().replace('"any"', '"all"'))
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("trigger-text")).to_contain_text("When all of these fire")
    assert ui.api("GET", f"/automations/{created['id']}")["trigger"]["require"] == "all"


def test_pause_and_resume_from_the_page_and_the_list(ui: Ui, page: Page) -> None:
    created = _create(ui, "ui-pausable")
    page.goto(f"{ui.url}/automations/{created['id']}")
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("automation-status")).to_have_text("Paused")
    assert ui.api("GET", f"/automations/{created['id']}")["enabled"] is False
    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("automation-status")).to_have_text("Enabled")
    assert ui.api("GET", f"/automations/{created['id']}")["enabled"] is True

    page.goto(f"{ui.url}/automations?name=ui-pausable")
    switch = page.get_by_role("switch", name="Enabled: ui-pausable")
    expect(switch).to_be_checked()
    switch.click()
    expect(page.get_by_role("row").filter(has_text="ui-pausable")).to_contain_text("Off")
    assert ui.api("GET", f"/automations/{created['id']}")["enabled"] is False
    page.goto(f"{ui.url}/automations?name=ui-pausable&enabled=off")
    expect(page.get_by_role("switch", name="Enabled: ui-pausable")).not_to_be_checked()
    page.get_by_role("switch", name="Enabled: ui-pausable").click()
    expect(page.get_by_role("row").filter(has_text="ui-pausable")).to_contain_text("On")
    assert ui.api("GET", f"/automations/{created['id']}")["enabled"] is True


def test_invalid_json_and_refused_triggers_create_nothing(ui: Ui, page: Page) -> None:
    page.allowed_errors += ["status of 422", "status of 409"]  # the browser logs refusals
    _create(ui, "ui-taken")
    before = _count(ui)
    page.goto(f"{ui.url}/automations/new")
    page.get_by_test_id("name").fill("ui-invalid")
    page.get_by_test_id("trigger-json-tab").click()
    page.get_by_test_id("trigger-json").fill('{"expect": ["x"],')
    page.get_by_test_id("save").click()
    expect(page.get_by_test_id("trigger-error")).to_contain_text("The trigger is not valid JSON")
    expect(page.get_by_test_id("form-errors")).to_be_visible()

    # The server's own refusal, with the field it is about.
    page.get_by_test_id("trigger-json").fill('{"posture": "Proactive", "expect": ["x"]}')
    page.get_by_test_id("save").click()
    errors = page.get_by_test_id("form-errors")
    expect(errors).to_contain_text("trigger.event")
    expect(errors).to_contain_text("a Proactive trigger needs `within`")
    expect(page.get_by_test_id("trigger-error")).to_contain_text("needs `within`")

    # An action naming a deployment that does not exist, shown on that action.
    page.get_by_test_id("trigger-json").fill('{"expect": ["x"]}')
    page.get_by_test_id("actions-json-tab").click()
    page.get_by_test_id("actions-json").fill(
        '[{"type": "run-deployment", "deployment": "nope/missing"}]'
    )
    page.get_by_test_id("save").click()
    expect(errors).to_contain_text("no deployment 'nope/missing'")

    page.get_by_test_id("actions-json").fill('[{"type": "do-nothing"}]')
    page.get_by_test_id("name").fill("ui-taken")
    page.get_by_test_id("save").click()
    expect(errors).to_contain_text("ui-taken")
    expect(page).to_have_url(f"{ui.url}/automations/new")
    assert _count(ui) == before
    assert _automation(ui, "ui-invalid") is None


def test_delete_asks_then_removes_it(ui: Ui, page: Page) -> None:
    created = _create(ui, "ui-delete-me")
    page.goto(f"{ui.url}/automations/{created['id']}")
    page.once("dialog", lambda question: question.accept())
    page.get_by_test_id("delete").click()
    expect(page).to_have_url(f"{ui.url}/automations")
    assert _automation(ui, "ui-delete-me") is None


def test_script_in_a_name_is_shown_as_text(ui: Ui, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    created = _create(ui, f"ui-{XSS}", description=XSS, trigger={"expect": [XSS]})
    page.goto(f"{ui.url}/automations?name=alert")
    expect(page.get_by_test_id("automation-name")).to_have_text(f"ui-{XSS}")
    page.get_by_test_id("automation-name").click()
    expect(page.get_by_test_id("automation-title")).to_have_text(f"ui-{XSS}")
    expect(page.get_by_test_id("trigger-text")).to_contain_text(XSS)
    page.goto(f"{ui.url}/automations/{created['id']}/edit")
    expect(page.get_by_test_id("name")).to_have_value(f"ui-{XSS}")
    expect(page.get_by_test_id("expect")).to_have_value(XSS)
    assert dialogs == []


def test_the_deployment_fails_preset_fires_on_a_real_failed_run(ui: Ui, page: Page) -> None:
    etl = ui.stack.deploy("etl", "ui-nightly")
    page.goto(f"{ui.url}/automations/new")
    page.get_by_test_id("name").fill("ui-nightly-failed")
    page.get_by_label("Deployment for the presets").select_option(label="etl/ui-nightly")
    page.get_by_test_id("preset-deployment-failed").click()
    expect(page.get_by_test_id("expect")).to_have_value(
        "headwater.flow-run.Failed\nheadwater.flow-run.Crashed"
    )
    page.get_by_test_id("save").click()
    expect(page).to_have_url(re.compile(r"/automations/[0-9a-f-]{36}$"))
    created = _automation(ui, "ui-nightly-failed")
    assert created is not None
    assert created["trigger"]["match_related"] == {
        "headwater.resource.role": "deployment",
        "headwater.resource.id": f"headwater.deployment.{etl['id']}",
    }

    ui.stack.start_worker()
    good = ui.stack.run(etl)
    bad = ui.stack.run(etl, fail=True)
    ui.stack.wait_for_state(good["id"], "COMPLETED", "FAILED")
    ui.stack.wait_for_state(bad["id"], "FAILED", "COMPLETED")

    firing = page.get_by_test_id("firing-row")
    expect(firing).to_have_count(1, timeout=20_000)
    expect(firing.locator('a[href^="/events/"]')).to_have_text("headwater.flow-run.Failed")
    expect(firing.locator(f'a[href="/flow-runs/{bad["id"]}"]')).to_be_visible()
    expect(firing.get_by_test_id("action-state")).to_have_text(["completed"])


def test_pages_escape_names_and_404_for_unknown_ids(app_client: TestClient) -> None:
    body = {
        "name": XSS,
        "description": XSS,
        "trigger": {"expect": [XSS], "match": {XSS: XSS}},
        "actions": [{"type": "call-webhook", "url": "https://example.com/" + XSS}],
    }
    created = app_client.post("/api/automations", json=body)
    assert created.status_code == 201, created.text
    automation_id = created.json()["id"]
    for path in (
        "/automations",
        f"/automations/{automation_id}",
        f"/automations/{automation_id}/edit",
    ):
        shown = app_client.get(path)
        assert shown.status_code == 200, path
        assert XSS not in shown.text, path
        assert (
            "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text or "\\u003cscript" in shown.text
        )
    assert app_client.get(f"/automations/{uuid.uuid4()}").status_code == 404
    assert app_client.get("/automations/not-an-id/edit").status_code == 404
