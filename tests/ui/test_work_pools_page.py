"""The work pool pages in Chromium: statuses, workers online, pausing pools and queues."""

from __future__ import annotations

import re
import time
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

#: A pool name with markup and the characters a URL path must quote (no "/": names are paths).
ODD = "odd <img src=x onerror=alert(1)> ?#&"


@pytest.fixture(scope="module")
def worker(ui: Ui) -> dict[str, Any]:
    """A worker of `etl`, once the server lists it online."""
    ui.stack.start_worker(name="pool-worker")
    deadline = time.monotonic() + 30
    while True:
        workers = ui.api("GET", "/work_pools/etl/workers")
        online = [w for w in workers if w["name"] == "pool-worker" and w["status"] == "ONLINE"]
        if online:
            return online[0]
        assert time.monotonic() < deadline, f"no worker online: {ui.stack.logs()}"
        time.sleep(0.2)


def test_list_shows_status_and_workers_online(ui: Ui, page: Page, worker: Any) -> None:
    ui.api("POST", "/work_pools", json={"name": "idle", "type": "process", "concurrency_limit": 4})
    page.goto(f"{ui.url}/work-pools")
    etl = page.get_by_test_id("pool-row").filter(has=page.get_by_role("link", name="etl"))
    expect(etl.get_by_role("link", name="etl")).to_have_attribute("href", "/work-pools/etl")
    expect(etl.get_by_test_id("pool-status")).to_have_text("Ready")
    expect(etl.locator("td").nth(3)).to_have_text("1")
    idle = page.get_by_test_id("pool-row").filter(has=page.get_by_role("link", name="idle"))
    expect(idle.get_by_test_id("pool-status")).to_have_text("Not ready")
    expect(idle.locator("td").nth(4)).to_have_text("4")


def test_detail_shows_the_worker_online(ui: Ui, page: Page, worker: Any) -> None:
    ui.stack.deploy("quick", "pooled")
    page.goto(f"{ui.url}/work-pools/etl")
    expect(page.get_by_test_id("pool-name")).to_have_text("etl")
    row = page.locator('[data-testid="worker-row"][data-worker="pool-worker"]')
    expect(row).to_contain_text("Online")
    expect(row.get_by_test_id("heartbeat")).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
    expect(page.get_by_test_id("workers-online")).to_have_text("1")
    expect(page.get_by_role("link", name="pooled")).to_be_visible()


def test_pause_and_resume_the_pool(ui: Ui, page: Page, worker: Any) -> None:
    page.goto(f"{ui.url}/work-pools/etl")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("pool-pause").click()
    expect(page.get_by_test_id("pool-status")).to_have_text("Paused")
    assert ui.api("GET", "/work_pools/etl")["paused"] is True

    page.get_by_test_id("pool-resume").click()
    expect(page.get_by_test_id("pool-status")).to_have_text("Ready")
    assert ui.api("GET", "/work_pools/etl")["paused"] is False


def test_pause_and_resume_a_queue(ui: Ui, page: Page) -> None:
    ui.api("POST", "/work_pools/etl/queues", json={"name": "urgent", "priority": 2})
    page.goto(f"{ui.url}/work-pools/etl")
    row = page.locator('[data-testid="queue-row"][data-queue="urgent"]')
    expect(row.locator("td").nth(1)).to_have_text("2")
    row.get_by_test_id("queue-pause").click()
    expect(row).to_contain_text("Paused")
    assert ui.api("GET", "/work_pools/etl/queues/urgent")["paused"] is True
    assert ui.api("GET", "/work_pools/etl/queues/default")["paused"] is False

    row.get_by_test_id("queue-resume").click()
    expect(row).to_contain_text("Open")
    assert ui.api("GET", "/work_pools/etl/queues/urgent")["paused"] is False


def test_workers_refresh_without_reload(ui: Ui, page: Page, worker: Any) -> None:
    page.clock.install()
    page.goto(f"{ui.url}/work-pools/etl")
    expect(page.locator('[data-worker="late-worker"]')).to_have_count(0)
    ui.api("POST", "/work_pools/etl/workers/heartbeat", json={"name": "late-worker"})
    page.clock.run_for(11_000)
    expect(page.locator('[data-worker="late-worker"]')).to_contain_text("Online")


def test_pool_named_with_markup_is_text(ui: Ui, page: Page) -> None:
    ui.api("POST", "/work_pools", json={"name": ODD, "type": "process"})
    page.on("dialog", lambda dialog: pytest.fail(f"a script ran: {dialog.message}"))
    page.goto(f"{ui.url}/work-pools")
    link = page.get_by_role("link", name=ODD, exact=True)
    expect(link).to_have_attribute("href", f"/work-pools/{urllib.parse.quote(ODD)}")
    link.click()
    expect(page.get_by_test_id("pool-name")).to_have_text(ODD)
    page.get_by_test_id("queue-pause").click()
    expect(page.get_by_test_id("queue-resume")).to_be_visible()
    queues = ui.api("GET", f"/work_pools/{urllib.parse.quote(ODD, safe='')}/queues")
    assert [q["paused"] for q in queues] == [True]


def test_missing_pool_is_a_404_page(app_client: TestClient) -> None:
    response = app_client.get("/work-pools/nowhere")
    assert response.status_code == 404
    assert "nowhere" in response.text
    assert "No work pools yet." in app_client.get("/work-pools").text
