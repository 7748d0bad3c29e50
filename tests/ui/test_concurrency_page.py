"""The concurrency limits page in Chromium: create, change, deactivate, reset and delete
through the UI (checked through the API), slots taken and the leases holding them, and
the tab of task-run tag limits."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.ui.conftest import Ui

pytestmark = pytest.mark.timeout(120)


def _limit(ui: Ui, name: str) -> dict[str, Any] | None:
    return ui.find(f"/concurrency_limits/{name}")


def test_create_change_reset_and_delete_through_the_ui(ui: Ui, page: Page) -> None:
    page.goto(f"{ui.url}/concurrency-limits")
    page.get_by_test_id("new-limit").click()
    dialog = page.locator("dialog#limit-new")
    dialog.get_by_label("Name").fill("ui-database")
    dialog.get_by_label("Slots").fill("3")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_be_hidden()
    row = page.locator('tr[data-limit="ui-database"]')
    expect(row.get_by_test_id("slots")).to_have_text("0 / 3")
    created = _limit(ui, "ui-database")
    assert created is not None
    assert (created["limit"], created["active"], created["slot_decay_per_second"]) == (3, True, 0)

    row.get_by_role("button", name="Edit").click()
    edit = page.locator("dialog#limit-edit")
    expect(edit.get_by_label("Slots")).to_have_value("3")
    expect(edit.get_by_label("Active")).to_be_checked()
    edit.get_by_label("Slots").fill("5")
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_be_hidden()
    expect(row.get_by_test_id("slots")).to_have_text("0 / 5")
    assert (_limit(ui, "ui-database") or {})["limit"] == 5

    row.get_by_role("button", name="Deactivate").click()
    expect(row).to_contain_text("inactive")
    assert (_limit(ui, "ui-database") or {})["active"] is False
    row.get_by_role("button", name="Activate").click()
    expect(row).not_to_contain_text("inactive")
    assert (_limit(ui, "ui-database") or {})["active"] is True

    # Two slots held by a run: the bar, and the lease with a link to its holder.
    run_id = "0192f1f4-0000-7000-8000-000000000001"
    ui.api(
        "POST",
        "/concurrency_limits/acquire",
        json={
            "names": ["ui-database"],
            "slots": 2,
            "holder": {"host": "h1", "flow_run_id": run_id},
        },
    )
    page.reload()
    expect(row.get_by_test_id("slots")).to_have_text("2 / 5")
    expect(row.get_by_role("meter")).to_have_attribute("aria-valuenow", "2.0")
    leases = page.locator("tr.leases-row")
    leases.get_by_text("1 lease holding slots").click()
    expect(leases.get_by_role("link", name=run_id[:18])).to_have_attribute(
        "href", f"/flow-runs/{run_id}"
    )
    expect(leases).to_contain_text("host=h1")

    page.once("dialog", lambda question: question.accept())
    row.get_by_role("button", name="Reset").click()
    expect(row.get_by_test_id("slots")).to_have_text("0 / 5")
    assert (_limit(ui, "ui-database") or {})["active_slots"] == 0
    expect(page.locator("tr.leases-row")).to_have_count(0)

    page.once("dialog", lambda question: question.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert _limit(ui, "ui-database") is None


def test_tag_limits_tab_and_refusals(ui: Ui, page: Page) -> None:
    ui.api("POST", "/concurrency_limits", json={"name": "tag:ui-gpu", "limit": 1})
    ui.api("POST", "/concurrency_limits", json={"name": "ui-api", "limit": 10})
    page.allowed_errors += ["status of 409", "status of 422"]
    page.goto(f"{ui.url}/concurrency-limits")
    expect(page.locator('tr[data-limit="ui-api"]')).to_be_visible()
    tag_row = page.locator('tr[data-limit="tag:ui-gpu"]')
    expect(tag_row).to_contain_text("task runs tagged ui-gpu")

    page.get_by_role("link", name="Task-run tag limits").click()
    expect(page).to_have_url(f"{ui.url}/concurrency-limits?kind=tag")
    expect(tag_row).to_be_visible()
    expect(page.locator('tr[data-limit="ui-api"]')).to_have_count(0)

    page.get_by_test_id("new-limit").click()
    dialog = page.locator("dialog#limit-new")
    expect(dialog.get_by_label("Name")).to_have_value("tag:")
    dialog.get_by_label("Name").fill("tag:ui-gpu")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.locator("[data-form-error]")).to_contain_text("tag:ui-gpu")

    dialog.get_by_label("Name").fill("a/b")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.locator("[data-form-error]")).to_contain_text("contains '/'")
    assert (_limit(ui, "tag:ui-gpu") or {})["limit"] == 1


def test_escaped_names_and_empty_state(app_client: Any) -> None:
    empty = app_client.get("/concurrency-limits")
    assert empty.status_code == 200
    assert "headwater concurrency-limit create" in empty.text

    name = "<img src=x onerror=alert(1)>"  # no "/": limit names appear in URL paths
    app_client.post("/api/concurrency_limits", json={"name": name, "limit": 2}).raise_for_status()
    html = app_client.get("/concurrency-limits").text
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
