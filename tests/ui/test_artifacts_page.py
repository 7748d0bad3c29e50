"""The artifacts pages in Chromium, on artifacts published by a real flow run: each type
rendered (markup in markdown and tables shown as text, unsafe links not clickable,
progress as a bar), links to the runs, versions of a key, and the filters."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Dialog, Page, expect
from tests.ui.conftest import Ui

pytestmark = pytest.mark.timeout(120)

MARKDOWN = "# Nightly report\n\n<script>alert(1)</script> and <img src=x onerror=alert(1)> done"

PUBLISH = f"""
import json

from headwater import flow, task
from headwater.artifacts import (
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
)


@task
def tabulate() -> str:
    return str(create_table_artifact(
        [{{"region": "<b>eu</b>", "sales": 12}}, {{"region": "us", "sales": 30}}],
        key="ui-sales",
        description="Sales per *region*",
    ))


@flow(name="ui-artifacts")
def publish() -> dict:
    ids = {{
        "old_report": str(create_markdown_artifact("# Yesterday", key="ui-report")),
        "report": str(create_markdown_artifact({MARKDOWN!r}, key="ui-report")),
        "table": tabulate(),
        "evil_link": str(create_link_artifact("javascript:alert(1)", link_text="click me")),
        "link": str(create_link_artifact("https://example.com/docs", link_text="the docs")),
        "image": str(create_image_artifact("https://example.com/chart.png", key="ui-chart")),
        "progress": str(create_progress_artifact(42.0, key="ui-load")),
    }}
    return ids


print(json.dumps(publish()))
"""


@pytest.fixture(scope="module")
def published(ui: Ui) -> Iterator[dict[str, Any]]:
    """The ids of the artifacts one flow run published, and of the run ("flow_run")."""
    ids: dict[str, Any] = json.loads(ui.python(PUBLISH).strip().splitlines()[-1])
    report = ui.api("GET", f"/artifacts/{ids['report']}")
    ids["flow_run"] = report["flow_run_id"]
    ids["task_run"] = ui.api("GET", f"/artifacts/{ids['table']}")["task_run_id"]
    assert ids["flow_run"] and ids["task_run"]
    yield ids


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """Messages of the alert()s the page opened (there should be none)."""
    opened: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return opened


def test_markdown_shows_markup_as_text(
    ui: Ui, page: Page, published: dict[str, Any], dialogs: list[str]
) -> None:
    page.goto(f"{ui.url}/artifacts/{published['report']}")
    body = page.locator("#artifact-content .artifact")
    expect(body.get_by_role("heading", name="Nightly report")).to_be_visible()
    expect(body).to_contain_text("<script>alert(1)</script> and <img src=x onerror=alert(1)>")
    assert body.locator("script").count() == 0
    assert body.locator("img").count() == 0
    assert page.locator("[onerror]").count() == 0
    assert dialogs == []

    details = page.locator("aside")
    expect(details.get_by_test_id("flow-run-link")).to_have_attribute(
        "href", f"/flow-runs/{published['flow_run']}"
    )
    expect(details).to_contain_text("ui-artifacts")

    versions = page.locator("#artifact-versions")
    expect(versions).to_contain_text("Versions of ui-report (2)")
    expect(versions.locator("tbody tr")).to_have_count(2)
    expect(versions.locator("tr.current")).to_contain_text("Nightly report")
    versions.locator("tbody tr").nth(1).get_by_role("link").first.click()
    expect(page).to_have_url(f"{ui.url}/artifacts/{published['old_report']}")
    expect(page.locator("#artifact-content")).to_contain_text("Yesterday")


def test_table_cells_are_escaped(ui: Ui, page: Page, published: dict[str, Any]) -> None:
    page.goto(f"{ui.url}/artifacts/{published['table']}")
    table = page.locator("#artifact-content table")
    expect(table.locator("th")).to_have_text(["region", "sales"])
    expect(table.locator("tbody tr").first.locator("td")).to_have_text(["<b>eu</b>", "12"])
    assert table.locator("b").count() == 0
    expect(page.locator("#artifact-content")).to_contain_text("Sales per region")
    expect(page.get_by_test_id("task-run-link")).to_have_attribute(
        "href", f"/task-runs/{published['task_run']}"
    )


def test_links_images_and_progress(
    ui: Ui, page: Page, published: dict[str, Any], dialogs: list[str]
) -> None:
    page.goto(f"{ui.url}/artifacts/{published['evil_link']}")
    content = page.locator("#artifact-content")
    expect(content).to_contain_text("javascript:alert(1)")
    expect(content).to_contain_text("not a safe link")
    assert content.locator("a").count() == 0
    content.get_by_text("javascript:alert(1)").click()
    assert dialogs == []

    page.goto(f"{ui.url}/artifacts/{published['link']}")
    expect(
        page.locator("#artifact-content").get_by_role("link", name="the docs")
    ).to_have_attribute("href", "https://example.com/docs")

    page.route("https://example.com/**", lambda route: route.abort())
    page.allowed_errors.append("ERR_FAILED")  # the image's host is not reached in tests
    page.goto(f"{ui.url}/artifacts/{published['image']}")
    expect(page.locator("#artifact-content img")).to_have_attribute(
        "src", "https://example.com/chart.png"
    )

    page.goto(f"{ui.url}/artifacts/{published['progress']}")
    bar = page.locator("#artifact-content [role=progressbar]")
    expect(bar).to_have_attribute("aria-valuenow", re.compile(r"^42(\.0)?$"))
    expect(bar.locator("span")).to_have_attribute("style", re.compile(r"width: 42(\.0)?%"))
    expect(page.locator("#artifact-content")).to_contain_text("42%")


def test_list_links_runs_and_filters_narrow_it(
    ui: Ui, page: Page, published: dict[str, Any]
) -> None:
    page.goto(f"{ui.url}/artifacts")
    rows = page.locator("tr[data-artifact-row]")
    expect(rows).to_have_count(7)
    report = page.locator(f'tr[data-artifact-row="{published["report"]}"]')
    expect(report.get_by_role("link", name="ui-report")).to_have_attribute(
        "href", f"/artifacts/{published['report']}"
    )
    expect(report.locator(".preview-text")).to_have_text(
        "# Nightly report <script>alert(1)</script> and <img src=x onerror=alert(1)> done"
    )
    run_link = report.locator(f'a[href="/flow-runs/{published["flow_run"]}"]')
    expect(run_link).to_be_visible()
    table = page.locator(f'tr[data-artifact-row="{published["table"]}"]')
    expect(table).to_contain_text("2 rows x 2 columns")
    expect(table.locator(f'a[href="/task-runs/{published["task_run"]}"]')).to_be_visible()
    progress = page.locator(f'tr[data-artifact-row="{published["progress"]}"]')
    expect(progress).to_contain_text("42%")

    page.get_by_label("Type").select_option("link")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{ui.url}/artifacts?key=&type=link")
    expect(rows).to_have_count(2)
    expect(page.locator(".tag.type-link")).to_have_count(2)

    page.goto(f"{ui.url}/artifacts")
    page.get_by_label("Key", exact=True).fill("ui-report")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    page.get_by_label("Latest version of each key only").check()
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(f"{ui.url}/artifacts?key=ui-report&type=&latest_only=true")
    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute("data-artifact-row", published["report"])

    page.goto(f"{ui.url}/artifacts?key=Not%20A%20Key")
    expect(page.get_by_role("alert")).to_contain_text("Artifact key 'Not A Key' is invalid")
    expect(page.locator("#artifacts-list")).to_contain_text("No artifact matches")


def test_server_side_escaping_and_missing_artifacts(app_client: Any) -> None:
    empty = app_client.get("/artifacts")
    assert empty.status_code == 200
    assert "create_markdown_artifact" in empty.text

    created = app_client.post(
        "/api/artifacts",
        json={
            "type": "markdown",
            "key": "xss",
            "data": "<script>alert(1)</script>",
            "description": "<img src=x onerror=alert(1)>",
        },
    )
    created.raise_for_status()
    for path in ("/artifacts", f"/artifacts/{created.json()['id']}"):
        html = app_client.get(path).text
        assert "<script>alert(1)" not in html
        assert "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    assert app_client.get("/artifacts/not-an-id").status_code == 404
    assert app_client.get("/artifacts/0192f1f4-0000-7000-8000-000000000001").status_code == 404
