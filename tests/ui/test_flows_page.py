"""The flows pages in Chromium: the list with counts, a flow with its deployments and runs."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.ui.conftest import Ui

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(120)

XSS = "<script>alert('flow')</script>"


@pytest.fixture(scope="module")
def runs(ui: Ui) -> dict[str, Any]:
    """Two runs of `greet` (one failed), one of a flow named with markup, a deployment."""
    ui.python(
        f"""
        from headwater import flow

        @flow
        def greet(fail: bool = False) -> str:
            if fail:
                raise ValueError("no one to greet")
            return "hello"

        @flow(name={XSS!r})
        def sly() -> None:
            pass

        greet()
        greet(fail=True, return_state=True)
        sly()
        """
    )
    deployment = ui.stack.deploy("greet", "greet-daily")
    found: dict[str, Any] = ui.api("GET", "/flows/name/greet")
    return {"greet": found, "deployment": deployment}


def test_list_shows_counts_and_latest_run(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.goto(f"{ui.url}/flows")
    row = page.get_by_test_id("flow-row").filter(
        has=page.get_by_role("link", name="greet", exact=True)
    )
    expect(row.get_by_role("link", name="greet", exact=True)).to_have_attribute(
        "href", f"/flows/{runs['greet']['id']}"
    )
    expect(row.get_by_role("link", name="1", exact=True)).to_have_attribute(
        "href", "/deployments?flow_name=greet"
    )
    expect(row.get_by_role("link", name="2", exact=True)).to_have_attribute(
        "href", "/flow-runs?flow_name=greet"
    )
    expect(row).to_contain_text("Failed")  # the latest run's state

    page.goto(f"{ui.url}/flows?name=gre")
    expect(page.get_by_test_id("flow-row")).to_have_count(1)
    page.goto(f"{ui.url}/flows?name=nothing-like-this")
    expect(page.get_by_text("No flow's name contains")).to_be_visible()


def test_detail_shows_deployments_runs_and_counts(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.goto(f"{ui.url}/flows/{runs['greet']['id']}")
    expect(page.get_by_test_id("flow-name")).to_have_text("greet")
    expect(page.get_by_role("link", name="greet-daily")).to_have_attribute(
        "href", f"/deployments/{runs['deployment']['id']}"
    )
    rows = page.get_by_test_id("flow-run-row")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="Completed")).to_have_count(1)
    expect(rows.filter(has_text="Failed")).to_have_count(1)
    listed = ui.api("GET", "/flow_runs", params={"flow_name": "greet"})["items"]
    for run in listed:
        expect(page.get_by_role("link", name=run["name"], exact=True)).to_have_attribute(
            "href", f"/flow-runs/{run['id']}"
        )
    expect(page.locator("#flow-stats")).to_contain_text("2")


def test_detail_follows_new_runs_live(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.goto(f"{ui.url}/flows/{runs['greet']['id']}")
    expect(page.locator("[data-live-dot].on")).to_be_visible()
    run = ui.stack.run(runs["deployment"])
    # Scheduled runs wait for a worker: the page shows the run as it is created.
    expect(page.get_by_role("link", name=run["name"], exact=True)).to_be_visible(timeout=15_000)
    ui.api("DELETE", f"/flow_runs/{run['id']}")


def test_flow_named_with_markup_is_text(ui: Ui, page: Page, runs: dict[str, Any]) -> None:
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    page.goto(f"{ui.url}/flows")
    link = page.get_by_role("link", name=XSS, exact=True)
    expect(link).to_be_visible()
    link.click()
    expect(page.get_by_test_id("flow-name")).to_have_text(XSS)
    expect(page.get_by_test_id("flow-run-row")).to_have_count(1)


def test_missing_flow_is_a_404_page(app_client: TestClient) -> None:
    response = app_client.get("/flows/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "Not found" in response.text
    assert app_client.get("/flows/not-an-id").status_code == 422


def test_empty_list(app_client: TestClient) -> None:
    response = app_client.get("/flows")
    assert response.status_code == 200
    assert "No flows yet." in response.text
