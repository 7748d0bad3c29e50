"""The flow-run list in Chromium: filters that narrow the rows and live in the URL,
pages, live updates, and names shown as text."""

from __future__ import annotations

import re
import urllib.parse
import warnings
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.ui.conftest import Ui

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(120)

XSS = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def runs(ui: Ui) -> dict[str, Any]:
    """Real runs: etl completed and failed, upstream tagged `nightly`, a run with a
    hostile name, and a run of a deployment (Scheduled: no worker in this module)."""
    ui.python(
        f"""
        from headwater import tags
        from flows import etl, upstream

        etl.with_options(flow_run_name="list-ok")()
        try:
            etl.with_options(flow_run_name="list-broken")(fail=True)
        except ValueError:
            pass
        with tags("nightly", "finance"):
            upstream.with_options(flow_run_name="list-nightly")()
        upstream.with_options(flow_run_name={XSS!r})()
        """
    )
    deployment = ui.stack.deploy("quick", "list-deployment")
    scheduled = ui.stack.run(deployment)
    found = {run["name"]: run for run in ui.api("GET", "/flow_runs")["items"]}
    return {**found, "deployment": deployment, "scheduled": scheduled}


def _names(page: Page) -> list[str]:
    return page.get_by_test_id("run-link").all_inner_texts()


def _no_dialogs(page: Page) -> list[str]:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return dialogs


def test_rows_link_to_runs_flows_and_deployments(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.goto(ui.url + "/flow-runs")

    broken = page.locator(f'[data-testid="run-row"][data-id="{runs["list-broken"]["id"]}"]')
    expect(broken.get_by_role("link", name="list-broken")).to_have_attribute(
        "href", f"/flow-runs/{runs['list-broken']['id']}"
    )
    expect(broken.get_by_role("link", name="etl")).to_have_attribute(
        "href", f"/flows/{runs['list-broken']['flow_id']}"
    )
    expect(broken).to_contain_text("Failed")
    scheduled = page.locator(f'[data-testid="run-row"][data-id="{runs["scheduled"]["id"]}"]')
    expect(scheduled.get_by_role("link", name="list-deployment")).to_have_attribute(
        "href", f"/deployments/{runs['deployment']['id']}"
    )
    nightly = page.locator(f'[data-testid="run-row"][data-id="{runs["list-nightly"]["id"]}"]')
    assert sorted(nightly.locator(".tag").all_inner_texts()) == ["finance", "nightly"]
    expect(page.get_by_test_id("count-completed")).to_contain_text("3")
    expect(page.get_by_test_id("count-failed")).to_contain_text("1")


def test_state_filter_narrows_the_rows_and_survives_a_reload(
    ui: Ui, page: Page, runs: dict[str, Any]
) -> None:
    page.goto(ui.url + "/flow-runs")
    form = page.get_by_test_id("run-filters")
    form.get_by_label("Failed").check()
    form.get_by_label("Scheduled").check()
    form.get_by_role("button", name="Apply").click()

    expect(page).to_have_url(f"{ui.url}/flow-runs?state_type=SCHEDULED&state_type=FAILED")
    expect(page.get_by_test_id("run-row")).to_have_count(2)
    assert sorted(_names(page)) == sorted(["list-broken", runs["scheduled"]["name"]])
    page.reload()
    expect(page.get_by_test_id("run-row")).to_have_count(2)
    expect(form.get_by_label("Failed")).to_be_checked()
    expect(form.get_by_label("Completed")).not_to_be_checked()


def test_flow_deployment_and_tag_filters(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.goto(ui.url + "/flow-runs")
    form = page.get_by_test_id("run-filters")
    form.get_by_label("Flow").select_option("etl")
    form.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{ui.url}/flow-runs?flow_name=etl")
    expect(page.get_by_test_id("run-row")).to_have_count(2)
    assert sorted(_names(page)) == ["list-broken", "list-ok"]

    page.goto(ui.url + "/flow-runs")
    form.get_by_label("Deployment").select_option(label="quick / list-deployment")
    form.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{ui.url}/flow-runs?deployment_id={runs['deployment']['id']}")
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    assert _names(page) == [runs["scheduled"]["name"]]

    page.goto(ui.url + "/flow-runs")
    page.get_by_test_id("tag-input").fill("nightly")
    form.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(f"{ui.url}/flow-runs?tag=nightly")
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    assert _names(page) == ["list-nightly"]
    page.reload()
    expect(form.get_by_label("Tag", exact=True)).to_have_value("nightly")
    expect(page.get_by_test_id("run-row")).to_have_count(1)


def test_a_time_range_is_typed_in_local_time_and_goes_to_the_url_in_utc(
    ui: Ui, browser: Any, runs: dict[str, Any]
) -> None:
    context = browser.new_context(timezone_id="America/New_York")  # UTC-5 in January
    try:
        page = context.new_page()
        page.goto(ui.url + "/flow-runs")
        form = page.get_by_test_id("run-filters")
        form.get_by_label("Since").fill("2000-01-01T00:00:00")
        form.get_by_label("Until").fill("2000-01-02T00:00:00")
        form.get_by_role("button", name="Apply").click()

        expect(page).to_have_url(
            f"{ui.url}/flow-runs?since=2000-01-01T05:00:00Z&until=2000-01-02T05:00:00Z"
        )
        expect(page.get_by_text("No flow run matches these filters.")).to_be_visible()
        # The fields show the times as typed, in local time, read back from the URL.
        expect(form.get_by_label("Since")).to_have_value(re.compile(r"^2000-01-01T00:00(:00)?$"))

        page.goto(ui.url + "/flow-runs?since=2000-01-01T00:00:00Z")
        expect(page.get_by_test_id("run-row").first).to_be_visible()
        page.goto(ui.url + "/flow-runs?since=not-a-time")
        expect(page.get_by_test_id("filter-error")).to_contain_text(
            "since 'not-a-time' is not a time"
        )
    finally:
        context.close()


def test_pages(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    total = ui.api("GET", "/flow_runs/counts")["total"]
    page.goto(ui.url + "/flow-runs?limit=2")
    pages = page.locator(".pagination")
    expect(pages).to_contain_text(f"1\N{EN DASH}2 of {total}")
    first = _names(page)

    pages.get_by_role("link", name="Older").click()

    expect(page).to_have_url(f"{ui.url}/flow-runs?limit=2&offset=2")
    expect(pages).to_contain_text(f"3\N{EN DASH}4 of {total}")
    expect(page.get_by_test_id("run-row")).to_have_count(2)
    assert not set(_names(page)) & set(first)
    pages.get_by_role("link", name="Newer").click()
    expect(page).to_have_url(f"{ui.url}/flow-runs?limit=2&offset=0")
    assert _names(page) == first


def test_new_runs_and_state_changes_appear_without_reloading(
    ui: Ui, page: Page, runs: dict[str, Any]
) -> None:
    page.goto(ui.url + "/flow-runs?flow_name=live")
    expect(page.locator(".live-dot.on").first).to_be_attached()
    page.evaluate("window.notReloaded = true")

    created = ui.api("POST", "/flow_runs", json={"flow_name": "live", "name": "list-live"})
    row = page.locator(f'[data-testid="run-row"][data-id="{created["id"]}"]')
    expect(row).to_contain_text("Pending")

    ui.api("POST", f"/flow_runs/{created['id']}/set_state", json={"type": "RUNNING"})
    expect(row).to_contain_text("Running")
    expect(page.get_by_test_id("count-running")).to_contain_text("1")
    assert page.evaluate("window.notReloaded") is True


def test_a_hostile_name_is_text(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    dialogs = _no_dialogs(page)
    page.goto(ui.url + "/flow-runs?flow_name=upstream")

    link = page.get_by_role("link", name=XSS)
    expect(link).to_have_text(XSS)
    expect(link).to_have_attribute("href", f"/flow-runs/{runs[XSS]['id']}")
    page.goto(ui.url + "/flow-runs?" + urllib.parse.urlencode({"tag": XSS}))
    expect(page.get_by_test_id("run-filters").get_by_label("Tag", exact=True)).to_have_value(XSS)
    assert dialogs == []


def test_the_list_escapes_and_keeps_bad_filters_on_the_page(app_client: TestClient) -> None:
    app_client.post(
        "/api/flow_runs", json={"flow_name": "f" + XSS, "name": XSS, "tags": [XSS]}
    ).raise_for_status()

    listed = app_client.get("/flow-runs")
    tagged = app_client.get("/flow-runs", params={"tag": XSS, "flow_name": "f" + XSS})
    invalid = app_client.get("/flow-runs", params={"state_type": "NOPE"})

    assert listed.headers["server-timing"].startswith("app;dur=")
    for response in (listed, tagged):
        assert response.status_code == 200
        assert XSS not in response.text
        assert response.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2
        assert 'data-testid="run-row"' in response.text
    assert invalid.status_code == 200
    assert 'data-testid="filter-error"' in invalid.text
    assert "state_type &#39;NOPE&#39; is not a state type" in invalid.text
