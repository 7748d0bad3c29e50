"""The dashboard in Chromium: runs over time by state, failures and late runs needing
attention, work pools with their workers, live updates, and names shown as text."""

from __future__ import annotations

import datetime as dt
import re
import time
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
    """Real runs of the e2e flows (one completed, one failed, one with a hostile name),
    a run the services mark Late, and a worker of the pool `etl` online."""
    ui.python(
        f"""
        from flows import etl

        etl.with_options(flow_run_name="dash-ok")()
        etl.with_options(flow_run_name={XSS!r})()
        try:
            etl.with_options(flow_run_name="dash-broken")(fail=True)
        except ValueError:
            pass
        """
    )
    due = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
    late = ui.api(
        "POST",
        "/flow_runs",
        json={
            "flow_name": "etl",
            "name": "dash-late",
            "state": {"type": "SCHEDULED"},
            "expected_start_time": due,
        },
    )
    ui.stack.start_worker(name="dash-worker")
    deadline = time.monotonic() + 30
    while True:
        run = ui.api("GET", f"/flow_runs/{late['id']}")
        workers = ui.api("GET", "/work_pools/etl/workers")
        if run["state_name"] == "Late" and any(w["status"] == "ONLINE" for w in workers):
            break
        assert time.monotonic() < deadline, f"not Late or no worker: {run} {workers}"
        time.sleep(0.2)
    found = ui.api("GET", "/flow_runs", params={"flow_name": "etl", "limit": 50})["items"]
    return {run["name"]: run for run in found}


def _no_dialogs(page: Page) -> list[str]:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    return dialogs


def test_the_chart_counts_and_attention_show_the_runs(
    ui: Ui, page: Page, runs: dict[str, Any]
) -> None:
    dialogs = _no_dialogs(page)
    page.goto(ui.url + "/")

    chart = page.get_by_test_id("runs-chart")
    expect(chart).to_be_visible()
    expect(chart.locator('rect[data-state="COMPLETED"]').first).to_be_attached()
    expect(chart.locator('rect[data-state="FAILED"]')).to_have_count(1)
    expect(page.get_by_test_id("legend-completed")).to_contain_text("Completed 2")
    expect(page.get_by_test_id("legend-failed")).to_contain_text("Failed 1")
    expect(page.get_by_test_id("stat-failed")).to_contain_text("1")
    expect(page.get_by_test_id("stat-late")).to_contain_text("1")

    failures = page.get_by_test_id("failures")
    broken = failures.get_by_role("link", name="dash-broken")
    expect(broken).to_have_attribute("href", f"/flow-runs/{runs['dash-broken']['id']}")
    expect(failures.get_by_role("link", name="etl")).to_have_attribute(
        "href", f"/flows/{runs['dash-broken']['flow_id']}"
    )
    expect(failures).to_contain_text("the input file is empty")
    late = page.get_by_test_id("late-runs")
    expect(late.get_by_role("link", name="dash-late")).to_be_visible()
    expect(late).to_contain_text("Late")

    pool = page.get_by_test_id("pool").filter(has=page.get_by_role("link", name="etl"))
    expect(pool.get_by_role("link", name="etl")).to_have_attribute("href", "/work-pools/etl")
    expect(pool.get_by_test_id("pool-status")).to_have_text("Ready")
    expect(pool.get_by_test_id("worker")).to_contain_text("dash-worker")
    assert dialogs == []


def test_a_segment_links_to_its_runs(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.goto(ui.url + "/")
    page.get_by_test_id("runs-chart").locator('a:has(rect[data-state="FAILED"])').click()

    expect(page).to_have_url(re.compile(r"/flow-runs\?since=[^&]+&until=[^&]+&state_type=FAILED$"))
    expect(page.get_by_test_id("run-row")).to_have_count(1)
    expect(page.get_by_test_id("run-link")).to_have_text("dash-broken")


def test_the_window_is_in_the_url(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.goto(ui.url + "/")
    page.get_by_role("link", name="7d", exact=True).click()

    expect(page).to_have_url(f"{ui.url}/?window=7d")
    expect(page.locator("#chart-title")).to_have_text("Flow runs over the last 7d")
    expect(page.get_by_test_id("legend-failed")).to_contain_text("Failed 1")
    page.reload()
    expect(page.get_by_role("link", name="7d", exact=True)).to_have_attribute(
        "aria-current", "true"
    )


def test_a_failure_appears_without_reloading(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.goto(ui.url + "/")
    expect(page.locator(".live-dot.on").first).to_be_attached()
    page.evaluate("window.notReloaded = true")

    ui.api(
        "POST",
        "/flow_runs",
        json={"flow_name": "etl", "name": "dash-live-failure", "state": {"type": "FAILED"}},
    )

    expect(
        page.get_by_test_id("failures").get_by_role("link", name="dash-live-failure")
    ).to_be_visible()
    expect(page.get_by_test_id("legend-failed")).to_contain_text("Failed 2")
    assert page.evaluate("window.notReloaded") is True


def test_a_hostile_run_name_is_text(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    dialogs = _no_dialogs(page)
    failed = ui.api(
        "POST",
        "/flow_runs",
        json={"flow_name": "etl", "name": XSS + " failed", "state": {"type": "FAILED"}},
    )
    page.goto(ui.url + "/")

    link = page.get_by_test_id("failures").get_by_role("link", name=XSS + " failed")
    expect(link).to_have_attribute("href", f"/flow-runs/{failed['id']}")
    expect(link).to_have_text(XSS + " failed")
    assert page.locator("script:has-text('alert(1)')").count() == 0
    assert dialogs == []


def test_the_page_escapes_names_on_every_database(app_client: TestClient) -> None:
    app_client.post(
        "/api/flow_runs",
        json={"flow_name": "x" + XSS, "name": XSS, "state": {"type": "CRASHED"}},
    ).raise_for_status()

    response = app_client.get("/")

    assert response.status_code == 200
    assert response.headers["server-timing"].startswith("app;dur=")
    assert XSS not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert 'data-state="CRASHED"' in response.text


def test_an_empty_server_has_a_calm_dashboard(app_client: TestClient) -> None:
    response = app_client.get("/?window=1h")

    assert response.status_code == 200
    assert "No flow runs in the last 1h." in response.text
    assert "No failed or crashed runs." in response.text
    assert "No work pools yet." in response.text
