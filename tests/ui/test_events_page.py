"""The event feed in Chromium: real events (sent through the API and made by a real flow
run) listed newest first, filters kept in the URL, new events arriving live, links to
the objects they are about, and names and payloads shown as text."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from tests.ui.conftest import Ui

pytestmark = pytest.mark.timeout(120)

XSS = "<script>alert(1)</script>"


def _event(name: str, resource_id: str, **fields: Any) -> dict[str, Any]:
    return {"event": name, "resource": {"headwater.resource.id": resource_id}, **fields}


def _send(ui: Ui, *events: dict[str, Any]) -> None:
    ui.api("POST", "/events", json=list(events))


def test_the_feed_lists_events_newest_first_with_a_chart(ui: Ui, page: Page) -> None:
    _send(
        ui,
        _event("ui.feed.first", "shop.order.1", occurred=time.time() - 3600),
        _event("ui.feed.second", "shop.order.2"),
    )
    page.goto(f"{ui.url}/events?event=ui.feed.*&since=2h")

    names = page.get_by_test_id("event-name")
    expect(names).to_have_text(["ui.feed.second", "ui.feed.first"])
    expect(page.get_by_test_id("events-total")).to_have_text("2")
    expect(page.locator("svg.event-histogram rect.bar").first).to_be_visible()


def test_a_real_run_links_to_its_flow_run_and_flow(ui: Ui, page: Page) -> None:
    ui.python(
        """
        from headwater import flow

        @flow(name="ui-events-flow")
        def ui_events_flow() -> int:
            return 1

        ui_events_flow()
        """
    )
    page.goto(f"{ui.url}/events?event=headwater.flow-run.Completed")

    row = page.get_by_test_id("event-row").first
    expect(row.get_by_test_id("event-name")).to_have_text("headwater.flow-run.Completed")
    run_link = row.locator('.event-line a[href^="/flow-runs/"]')
    expect(run_link).to_have_attribute("href", re.compile(r"^/flow-runs/[0-9a-f-]{36}$"))
    flow_link = row.locator('.related [data-role="flow"] a')
    expect(flow_link).to_have_text("ui-events-flow")
    expect(flow_link).to_have_attribute("href", re.compile(r"^/flows/[0-9a-f-]{36}$"))


def test_filters_narrow_the_feed_and_stay_in_the_url(ui: Ui, page: Page) -> None:
    _send(
        ui,
        _event("ui.filter.apple", "fruit.1"),
        _event("ui.filter.apple", "fruit.2"),
        _event("ui.filter.pear", "fruit.3"),
    )
    page.goto(f"{ui.url}/events")
    filters = page.get_by_test_id("event-filters")
    filters.get_by_label("Event name").fill("ui.filter.*")
    filters.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"event=ui\.filter\.\*"))
    expect(page.get_by_test_id("event-name")).to_have_count(3)

    filters.get_by_label("Resource id").fill("fruit.2, fruit.3")
    filters.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"resource_id=fruit\.2"))
    expect(page.get_by_test_id("event-name")).to_have_text(["ui.filter.pear", "ui.filter.apple"])

    # The URL alone gives the same feed: it can be shared.
    page.goto(page.url)
    expect(filters.get_by_label("Resource id")).to_have_value("fruit.2, fruit.3")
    expect(page.get_by_test_id("event-name")).to_have_count(2)

    filters.get_by_label("Since").fill("not a time")
    filters.get_by_role("button", name="Filter").click()
    expect(page.get_by_test_id("filter-error")).to_contain_text("'not a time' is not a time")


def test_pages_follow_the_api_next_offset(ui: Ui, page: Page) -> None:
    _send(ui, *(_event(f"ui.page.{n:02d}", f"page.{n}") for n in range(5)))
    page.goto(f"{ui.url}/events?event=ui.page.*&limit=2")
    names = page.get_by_test_id("event-name")
    expect(names).to_have_count(2)
    page.get_by_role("link", name="Older").click()
    expect(page).to_have_url(re.compile(r"offset=2"))
    expect(names).to_have_count(2)
    page.get_by_role("link", name="Older").click()
    expect(names).to_have_count(1)
    expect(page.get_by_role("link", name="Older")).to_have_count(0)
    page.get_by_role("link", name="Newer").click()
    expect(page).to_have_url(re.compile(r"offset=2"))


def test_new_events_appear_without_reloading(ui: Ui, page: Page) -> None:
    page.goto(f"{ui.url}/events?event=ui.live.*")
    expect(page.locator("[data-live-dot].on")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    _send(ui, _event("ui.live.arrived", "live.1", payload={"n": 1}))

    expect(page.get_by_test_id("event-name")).to_have_text(["ui.live.arrived"], timeout=15_000)
    expect(page.get_by_test_id("events-total")).to_have_text("1")
    assert page.evaluate("window.notReloaded") is True


def test_script_in_a_name_or_payload_is_shown_as_text(ui: Ui, page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    event_id = str(uuid.uuid4())
    _send(
        ui,
        {
            "id": event_id,
            "event": f"ui.xss.{XSS}",
            "resource": {"headwater.resource.id": "xss.1", "headwater.resource.name": XSS},
            "related": [{"headwater.resource.id": "xss.2", "headwater.resource.role": XSS}],
            "payload": {"note": XSS},
        },
    )
    page.goto(f"{ui.url}/events?event=ui.xss.*")
    row = page.get_by_test_id("event-row")
    expect(row.get_by_test_id("event-name")).to_have_text(f"ui.xss.{XSS}")
    expect(row.locator(".event-line .resource .name")).to_have_text(XSS)
    row.get_by_text("Payload").click()
    expect(row.get_by_test_id("event-payload")).to_contain_text(f'"note": "{XSS}"')

    row.get_by_test_id("event-name").click()
    expect(page).to_have_url(f"{ui.url}/events/{event_id}")
    expect(page.get_by_test_id("event-title")).to_have_text(f"ui.xss.{XSS}")
    expect(page.get_by_test_id("event-payload")).to_contain_text(XSS)
    assert page.locator("script:not([src]):not([type])").count() == 0
    assert dialogs == []


def test_an_unknown_event_is_a_404_page(app_client: TestClient) -> None:
    missing = app_client.get(f"/events/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert app_client.get("/events/not-an-id").status_code == 404


def test_a_bad_filter_is_shown_above_the_form(app_client: TestClient) -> None:
    page = app_client.get("/events", params={"event": "a*b"})
    assert page.status_code == 200
    assert "has a &#39;*&#39; before its end" in page.text
    assert "data-stream" not in page.text
