"""The secrets page in Chromium: create, replace and delete through the dialogs, and a
secret's value never reaching the page: not in its HTML, not in any answer it received,
and never asked for (`/value`)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Response, expect
from tests.ui.conftest import Ui

pytestmark = pytest.mark.timeout(120)


class Traffic:
    """The URLs a page asked for and the text of every answer it got."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.bodies: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("response", self._answer)

    def _answer(self, response: Response) -> None:
        kind = response.headers.get("content-type", "")
        if response.request.method == "OPTIONS" or "event-stream" in kind:
            return
        if kind.startswith(("text/", "application/json", "application/javascript")):
            # A redirect, or an answer the page navigated away from, has no body to read.
            with contextlib.suppress(PlaywrightError):
                self.bodies.append(response.text())

    def contains(self, text: str) -> bool:
        return any(text in body for body in self.bodies)


def _value(ui: Ui, name: str) -> Any:
    return ui.api("GET", f"/secrets/{name}/value")["value"]


def test_create_replace_and_delete_without_showing_values(ui: Ui, page: Page) -> None:
    first, second = f"first-{uuid.uuid4().hex}", f"second-{uuid.uuid4().hex}"
    traffic = Traffic(page)
    page.goto(f"{ui.url}/secrets")
    page.get_by_test_id("new-secret").click()
    dialog = page.locator("dialog#secret-new")
    value_input = dialog.get_by_label("Value", exact=True)
    expect(value_input).to_have_attribute("type", "password")
    dialog.get_by_label("Name").fill("ui-token")
    value_input.fill(first)
    dialog.get_by_role("button", name="Save secret").click()

    expect(dialog).to_be_hidden()
    row = page.locator('tr[data-secret="ui-token"]')
    expect(row).to_be_visible()
    assert ui.api("GET", "/secrets/ui-token")["name"] == "ui-token"
    assert _value(ui, "ui-token") == first

    row.get_by_role("button", name="Replace value").click()
    replace = page.locator("dialog#secret-replace")
    expect(replace.get_by_label("Name")).to_have_value("ui-token")
    expect(replace.get_by_label("New value")).to_have_value("")
    replace.get_by_label("New value").fill(second)
    replace.get_by_role("button", name="Replace").click()
    expect(replace).to_be_hidden()
    assert _value(ui, "ui-token") == second

    page.reload()
    expect(row).to_be_visible()
    html = page.content()
    assert traffic.contains('data-secret="ui-token"'), "the page's answers were not recorded"
    for value in (first, second):
        assert value not in html
        assert not traffic.contains(value), "an answer the page received holds the value"
    assert not any("/value" in url for url in traffic.urls), traffic.urls

    page.once("dialog", lambda question: question.accept())
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    assert ui.stack.http.get("/secrets/ui-token").status_code == 404


def test_json_values_and_refusals(ui: Ui, page: Page) -> None:
    ui.api("PUT", "/secrets/ui-taken", json={"value": "x" * 8})
    page.allowed_errors += ["status of 409", "status of 422"]
    page.goto(f"{ui.url}/secrets")
    page.get_by_test_id("new-secret").click()
    dialog = page.locator("dialog#secret-new")

    dialog.get_by_label("Name").fill("ui-taken")
    dialog.get_by_label("Value", exact=True).fill("another-value")
    dialog.get_by_role("button", name="Save secret").click()
    expect(dialog.locator("[data-form-error]")).to_contain_text("ui-taken")
    assert _value(ui, "ui-taken") == "x" * 8  # not replaced by "New secret"

    dialog.get_by_label("Name").fill("Bad Name")
    dialog.get_by_role("button", name="Save secret").click()
    expect(dialog.locator("[data-form-error]")).to_contain_text("lowercase letters")
    expect(dialog.locator("[data-form-error]")).not_to_contain_text("another-value")

    dialog.get_by_label("Name").fill("ui-warehouse")
    dialog.get_by_label("Value", exact=True).fill('{"user": "etl", "password": "pw-123456"}')
    dialog.get_by_label("The value is JSON").check()
    dialog.get_by_role("button", name="Save secret").click()
    expect(dialog).to_be_hidden()
    assert _value(ui, "ui-warehouse") == {"user": "etl", "password": "pw-123456"}
    assert "pw-123456" not in page.content()


def test_empty_state_and_no_values_server_side(app_client: Any) -> None:
    empty = app_client.get("/secrets")
    assert empty.status_code == 200
    assert "headwater secret set" in empty.text

    app_client.put("/api/secrets/db-password", json={"value": "hunter2-<b>"}).raise_for_status()
    html = app_client.get("/secrets").text
    assert "db-password" in html
    assert "hunter2" not in html
