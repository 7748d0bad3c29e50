"""The variables page in Chromium: create, edit and delete through the dialogs (checked
through the API), the API's refusals shown in the form, filters, escaped values."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.ui.conftest import Ui

pytestmark = pytest.mark.timeout(120)


def _variable(ui: Ui, name: str) -> dict[str, Any] | None:
    return ui.find(f"/variables/{name}")


def test_create_edit_and_delete_through_the_ui(ui: Ui, page: Page) -> None:
    page.goto(f"{ui.url}/variables")
    page.get_by_test_id("new-variable").click()
    dialog = page.locator("dialog#variable-new")
    dialog.get_by_label("Name").fill("ui_targets")
    dialog.get_by_label("Value (JSON)").fill('{"region": "eu-west-1", "buckets": ["raw"]}')
    dialog.get_by_label("Tags").fill("etl, ui")
    dialog.get_by_role("button", name="Create").click()

    expect(dialog).to_be_hidden()
    row = page.locator('tr[data-variable="ui_targets"]')
    expect(row).to_contain_text('"region": "eu-west-1"')
    expect(row.locator(".tag")).to_have_text(["etl", "ui"])
    created = _variable(ui, "ui_targets")
    assert created is not None
    assert created["value"] == {"region": "eu-west-1", "buckets": ["raw"]}
    assert created["tags"] == ["etl", "ui"]

    row.get_by_role("button", name="Edit").click()
    edit = page.locator("dialog#variable-edit")
    expect(edit.get_by_label("Name")).to_have_value("ui_targets")
    expect(edit.get_by_label("Value (JSON)")).to_have_value(
        '{\n  "region": "eu-west-1",\n  "buckets": [\n    "raw"\n  ]\n}'
    )
    edit.get_by_label("Value (JSON)").fill("[1, 2, 3]")
    edit.get_by_label("Tags").fill("prod")
    edit.get_by_role("button", name="Save").click()
    expect(edit).to_be_hidden()
    expect(row).to_contain_text("1,")
    edited = _variable(ui, "ui_targets")
    assert edited is not None
    assert (edited["value"], edited["tags"]) == ([1, 2, 3], ["prod"])

    page.once("dialog", lambda question: question.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert _variable(ui, "ui_targets") is None


def test_refusals_are_shown_in_the_form(ui: Ui, page: Page) -> None:
    ui.api("PUT", "/variables/ui_taken", json={"value": 1})
    page.allowed_errors += ["status of 409", "status of 422"]  # the browser logs refusals
    page.goto(f"{ui.url}/variables")
    page.get_by_test_id("new-variable").click()
    dialog = page.locator("dialog#variable-new")
    error = dialog.locator("[data-form-error]")

    dialog.get_by_label("Name").fill("Batch Size")
    dialog.get_by_label("Value (JSON)").fill("500")
    dialog.get_by_role("button", name="Create").click()
    expect(error).to_contain_text("may only contain lowercase letters")
    expect(error).to_contain_text("batch_size")

    dialog.get_by_label("Name").fill("ui_taken")
    dialog.get_by_role("button", name="Create").click()
    expect(error).to_contain_text("ui_taken")
    expect(dialog).to_be_visible()

    # Not JSON: said next to the field, and nothing is sent.
    dialog.get_by_label("Name").fill("ui_not_json")
    dialog.get_by_label("Value (JSON)").fill("{oops")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.locator('[data-error-for="value"]')).to_contain_text("Not valid JSON")
    assert _variable(ui, "ui_not_json") is None

    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    taken = _variable(ui, "ui_taken")
    assert taken is not None and taken["value"] == 1


def test_filters_narrow_the_list(ui: Ui, page: Page) -> None:
    ui.api("PUT", "/variables/ui_alpha", json={"value": "a", "tags": ["blue"]})
    ui.api("PUT", "/variables/ui_beta", json={"value": "b", "tags": ["green"]})
    page.goto(f"{ui.url}/variables")
    page.get_by_label("Name contains").fill("alpha")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{ui.url}/variables?name=alpha&tag=")
    expect(page.locator("tr[data-variable]")).to_have_count(1)
    expect(page.locator('tr[data-variable="ui_alpha"]')).to_be_visible()

    page.goto(f"{ui.url}/variables?tag=green")
    expect(page.locator("tr[data-variable]")).to_have_count(1)
    expect(page.locator('tr[data-variable="ui_beta"]')).to_be_visible()

    page.goto(f"{ui.url}/variables?name=nothing-like-this")
    expect(page.locator("#variables-list")).to_contain_text("No variable matches")


def test_values_are_escaped(app_client: Any) -> None:
    empty = app_client.get("/variables")
    assert empty.status_code == 200
    assert "headwater variable set" in empty.text

    value = {"html": "<script>alert(1)</script>", "img": "<img src=x onerror=alert(1)>"}
    app_client.post(
        "/api/variables", json={"name": "xss", "value": value, "tags": ["<b>tag</b>"]}
    ).raise_for_status()
    html = app_client.get("/variables").text
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "<b>tag</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;tag&lt;/b&gt;" in html
