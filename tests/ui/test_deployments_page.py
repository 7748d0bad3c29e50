"""The deployments pages in Chromium: schedules and their next runs, parameters, "Run now"
through the generated form (client and server validation), pausing schedules, live runs."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from tests.ui.conftest import Ui

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.timeout(180)

#: What `@flow def quick(tag: str = "x", n: int = 1)` derives (flow.validator.json_schema()).
QUICK_SCHEMA = {
    "title": "Parameters",
    "type": "object",
    "properties": {
        "tag": {"title": "tag", "type": "string", "default": "x"},
        "n": {"title": "n", "type": "integer", "default": 1},
    },
}
#: And for `@flow def onboard(emails: list[str])`.
ONBOARD_SCHEMA = {
    "title": "Parameters",
    "type": "object",
    "properties": {"emails": {"title": "emails", "items": {"type": "string"}, "type": "array"}},
    "required": ["emails"],
}
XSS = "<script>alert('deployment')</script>"


@pytest.fixture(scope="module")
def quick(ui: Ui) -> Iterator[dict[str, Any]]:
    """A deployment of `quick` with defaults and an hourly schedule, and a worker for it."""
    deployment = ui.stack.deploy(
        "quick",
        "hourly",
        description="Counts **quickly**.",
        tags=["nightly"],
        parameters={"tag": "dflt", "n": 3},
        parameter_schema=QUICK_SCHEMA,
        schedules=[{"schedule": {"interval": 3600}}],
    )
    ui.stack.start_worker(name="deployments-worker")
    yield deployment


def _runs(ui: Ui, deployment: dict[str, Any], *states: str) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"deployment_id": deployment["id"], "limit": 100}
    if states:
        params["state_type"] = list(states)
    items: list[dict[str, Any]] = ui.api("GET", "/flow_runs", params=params)["items"]
    return items


def _scheduled(ui: Ui, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while not (runs := _runs(ui, deployment, "SCHEDULED")):
        assert time.monotonic() < deadline, "the scheduler made no runs"
        time.sleep(0.2)
    return runs


def test_list_links_flow_pool_and_schedule(ui: Ui, page: Page, quick: dict[str, Any]) -> None:
    page.goto(f"{ui.url}/deployments")
    row = page.get_by_test_id("deployment-row").filter(has_text="hourly")
    expect(row.get_by_role("link", name="hourly")).to_have_attribute(
        "href", f"/deployments/{quick['id']}"
    )
    expect(row.get_by_role("link", name="quick")).to_have_attribute(
        "href", f"/flows/{quick['flow_id']}"
    )
    expect(row.get_by_role("link", name="etl")).to_have_attribute("href", "/work-pools/etl")
    expect(row).to_contain_text("every 1h")
    expect(row).to_contain_text("Active")
    expect(row).to_contain_text("nightly")

    page.goto(f"{ui.url}/deployments?paused=true")
    expect(page.get_by_text("No deployment matches these filters.")).to_be_visible()


def test_detail_shows_parameters_schedule_and_scheduled_runs(
    ui: Ui, page: Page, quick: dict[str, Any]
) -> None:
    scheduled = _scheduled(ui, quick)
    page.goto(f"{ui.url}/deployments/{quick['id']}")
    expect(page.get_by_test_id("deployment-name")).to_have_text("hourly")
    expect(page.locator(".markdown strong")).to_have_text("quickly")  # the description as markdown
    expect(page.locator('[data-parameter="tag"]')).to_contain_text('"dflt"')
    expect(page.locator('[data-parameter="n"]')).to_contain_text("integer")
    expect(page.locator('[data-parameter="n"]')).to_contain_text("3")
    schedule = page.get_by_test_id("schedule-row")
    expect(schedule).to_contain_text("every 1h")
    expect(schedule.locator("time")).to_have_count(3)  # the next three times
    upcoming = page.get_by_test_id("upcoming-row")
    expect(upcoming.first).to_contain_text("Scheduled")
    expect(upcoming.first.get_by_role("link")).to_have_attribute(
        "href", f"/flow-runs/{scheduled[-1]['id']}"
    )


def test_run_now_runs_with_the_typed_parameters(ui: Ui, page: Page, quick: dict[str, Any]) -> None:
    # The run's page is tested on its own; here it only has to be where the dialog goes.
    page.route(re.compile(r"/flow-runs/[0-9a-f-]+$"), lambda route: route.fulfill(body="run"))
    page.goto(f"{ui.url}/deployments/{quick['id']}")
    page.get_by_test_id("run-now").click()
    dialog = page.locator("#run-dialog")
    expect(dialog).to_be_visible()
    # In the signature's order, prefilled with the deployment's defaults.
    expect(dialog.locator("[data-field]")).to_have_count(2)
    expect(dialog.locator("[data-field]").first).to_have_attribute("data-field", "tag")
    expect(dialog.get_by_label("tag")).to_have_value("dflt")
    dialog.get_by_label("tag").fill("from the UI <b>")
    dialog.get_by_label("n", exact=True).fill("7")
    dialog.get_by_test_id("run-submit").click()

    page.wait_for_url(re.compile(r"/flow-runs/[0-9a-f-]+$"))
    run_id = page.url.rsplit("/", 1)[1]
    run = ui.stack.wait_for_state(run_id, "COMPLETED", timeout=60)
    assert run["parameters"] == {"tag": "from the UI <b>", "n": 7}
    assert run["deployment_id"] == quick["id"]


def test_bad_values_show_next_to_the_field_and_make_no_run(
    ui: Ui, page: Page, quick: dict[str, Any]
) -> None:
    before = len(_runs(ui, quick))
    page.goto(f"{ui.url}/deployments/{quick['id']}")
    page.get_by_test_id("run-now").click()
    dialog = page.locator("#run-dialog")
    dialog.get_by_label("n", exact=True).fill("1.5")
    dialog.get_by_test_id("run-submit").click()
    field = dialog.locator('[data-field="n"]')
    expect(field.locator(".error")).to_have_text("1.5 is not a whole number")
    expect(field.locator("input")).to_have_attribute("aria-invalid", "true")
    expect(dialog).to_be_visible()
    assert len(_runs(ui, quick)) == before


def test_server_errors_show_next_to_the_field(ui: Ui, page: Page) -> None:
    onboard = ui.stack.deploy("onboard", parameter_schema=ONBOARD_SCHEMA)
    page.allowed_errors.append("422")  # the refused request, logged by the browser
    page.goto(f"{ui.url}/deployments/{onboard['id']}")
    page.get_by_test_id("run-now").click()
    dialog = page.locator("#run-dialog")
    dialog.locator('[data-field="emails"] textarea').fill("[1, 2]")  # JSON, but not strings
    dialog.get_by_test_id("run-submit").click()
    field = dialog.locator('[data-field="emails"]')
    expect(field.locator(".error")).to_have_text(
        "0: 1 is not of type 'string'; 1: 2 is not of type 'string'"
    )
    expect(dialog.locator("#run-error")).to_contain_text("Invalid parameters")
    assert _runs(ui, onboard) == []

    dialog.locator('[data-field="emails"] textarea').fill("")
    dialog.get_by_test_id("run-submit").click()
    expect(field.locator(".error")).to_have_text("emails is required")
    assert _runs(ui, onboard) == []


def test_pause_and_resume_schedules(ui: Ui, page: Page, quick: dict[str, Any]) -> None:
    page.goto(f"{ui.url}/deployments/{quick['id']}")
    page.get_by_test_id("pause").click()
    expect(page.get_by_test_id("deployment-status")).to_have_text("Paused")
    assert ui.api("GET", f"/deployments/{quick['id']}")["paused"] is True
    expect(page.locator("#schedules")).to_contain_text("paused: no runs are made")

    page.get_by_test_id("resume").click()
    expect(page.get_by_test_id("deployment-status")).to_have_text("Active")
    assert ui.api("GET", f"/deployments/{quick['id']}")["paused"] is False


def test_turn_one_schedule_off_and_on(ui: Ui, page: Page, quick: dict[str, Any]) -> None:
    page.goto(f"{ui.url}/deployments/{quick['id']}")
    page.get_by_test_id("schedule-off").click()
    expect(page.get_by_test_id("schedule-on")).to_be_visible()
    schedules = ui.api("GET", f"/deployments/{quick['id']}/schedules")
    assert [s["active"] for s in schedules] == [False]

    page.get_by_test_id("schedule-on").click()
    expect(page.get_by_test_id("schedule-off")).to_be_visible()
    schedules = ui.api("GET", f"/deployments/{quick['id']}/schedules")
    assert [s["active"] for s in schedules] == [True]


def test_recent_runs_update_live(ui: Ui, page: Page, quick: dict[str, Any]) -> None:
    page.goto(f"{ui.url}/deployments/{quick['id']}")
    expect(page.locator("[data-live-dot].on")).to_be_visible()
    run = ui.stack.run(quick, tag="live")
    row = page.locator(f'[data-testid="recent-row"][data-run-id="{run["id"]}"]')
    expect(row).to_contain_text("Completed", timeout=30_000)


def test_names_with_markup_are_text(ui: Ui, page: Page) -> None:
    deployment = ui.stack.deploy("quick", XSS, tags=[XSS], parameter_schema=QUICK_SCHEMA)
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    page.goto(f"{ui.url}/deployments")
    row = page.get_by_test_id("deployment-row").filter(has=page.get_by_text(XSS, exact=True))
    expect(row.get_by_role("link", name=XSS, exact=True)).to_have_count(2)  # name and tag
    page.goto(f"{ui.url}/deployments/{deployment['id']}")
    expect(page.get_by_test_id("deployment-name")).to_have_text(XSS)
    page.get_by_test_id("run-now").click()
    expect(page.locator("#run-dialog h2")).to_have_text(f"Run quick/{XSS}")


def test_missing_deployment_is_a_404_page(app_client: TestClient) -> None:
    response = app_client.get("/deployments/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert "Not found" in response.text
    assert "No deployments yet." in app_client.get("/deployments").text
    assert app_client.get("/deployments?paused=maybe").status_code == 422
