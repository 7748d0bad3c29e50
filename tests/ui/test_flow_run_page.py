"""The flow run page against a real server: real runs, a real worker, Chromium.

Runs are made by scripts (`ui.python`) or by deployments that the module's worker runs;
the flows live in `page_flows.py` in the server's project directory.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.server.sse import EventReader

from .conftest import Ui

PAGE_FLOWS = """
import os
import pathlib
import time

from pydantic import Field

from headwater import flow, get_run_logger, pause_flow_run, task
from headwater.artifacts import create_markdown_artifact
from headwater.input import RunInput

MARKS = pathlib.Path(os.environ["E2E_MARKS"])


@task
def extract(i: int) -> int:
    time.sleep(0.3)
    return i


@task
def double(x: int) -> int:
    return x * 2


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@flow
def child(n: int = 1) -> int:
    get_run_logger().info("child says %s", n)
    return n


@flow
def shapes(count: int = 3, note: str = "<b>bold</b>") -> int:
    log = get_run_logger()
    log.info("hello from shapes")
    log.warning("careful: disk almost full")
    doubled = double.map(extract.map(range(count)))
    result = total.submit(list(doubled))
    child(2)
    create_markdown_artifact(
        "# Report\\n\\n<script>alert('artifact')</script>\\n\\n[click me](javascript:alert(1))",
        key="report",
    )
    return result.result()


@flow(flow_run_name="<script>alert(1)</script>")
def named() -> None:
    get_run_logger().info("<img src=x onerror=alert(2)>")


@flow
def chatty() -> None:
    log = get_run_logger()
    log.info("chatty started")
    while not (MARKS / "chatty-go").exists():
        time.sleep(0.05)
    log.info("the line after the page opened")


@task
def load() -> str:
    if not (MARKS / "broken-fixed").exists():
        raise ValueError("the input file is empty")
    return "loaded"


@flow
def broken() -> str:
    return load()


class Approval(RunInput):
    approved: bool
    note: str = Field(default="", max_length=12)


@flow
def gated() -> str:
    approval = pause_flow_run(wait_for_input=Approval, timeout=120, poll_interval=10)
    (MARKS / f"gated-{approval.approved}").write_text(approval.note)
    return approval.note
"""


@pytest.fixture(scope="module")
def flows(ui: Ui) -> Iterator[Ui]:
    """The page's flows in the project, and a worker for the deployments' runs."""
    (ui.stack.project / "page_flows.py").write_text(PAGE_FLOWS)
    ui.stack.start_worker()
    yield ui


def _deploy(ui: Ui, flow: str) -> dict[str, Any]:
    return ui.stack.deploy(flow, entrypoint=f"page_flows.py:{flow}")


def _latest_run(ui: Ui, flow: str) -> dict[str, Any]:
    page = ui.api("GET", "/flow_runs", params={"flow_name": flow, "limit": 1})
    run: dict[str, Any] = page["items"][0]
    return run


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[0] + b[1] and b[0] < a[0] + a[1]


def _bar(page: Page, name: str) -> tuple[float, float]:
    rect = page.locator(f"svg.gantt a.row:has(text:text-is('{name}')) rect.bar")
    return float(rect.get_attribute("x") or 0), float(rect.get_attribute("width") or 0)


def test_a_finished_run_shows_its_parts(flows: Ui, page: Page) -> None:
    flows.python("from page_flows import shapes; shapes()")
    run = _latest_run(flows, "shapes")
    child = flows.api("GET", "/flow_runs", params={"parent_flow_run_id": run["id"]})["items"][0]

    page.goto(f"{flows.url}/flow-runs/{run['id']}")

    expect(page.get_by_test_id("run-name")).to_have_text(run["name"])
    expect(page.get_by_test_id("run-state")).to_have_text("Completed")
    expect(page.locator("#run-head a[href^='/flows/']")).to_have_text("shapes")
    expect(page.get_by_test_id("parameters")).to_contain_text('"note": "<b>bold</b>"')
    states = page.get_by_test_id("states")
    for name in ("Pending", "Running", "Completed"):
        expect(states.get_by_text(name, exact=True)).to_be_visible()

    # The timeline: one row per task run and subflow run, on one time axis.
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator("a.row-flow")).to_have_count(1)  # the run itself, first
    expect(timeline.locator("a.row-task")).to_have_count(7)  # 3 extract, 3 double, total
    subflow_row = timeline.locator("a.row-subflow")
    expect(subflow_row).to_have_count(1)
    expect(subflow_row).to_have_attribute("href", f"/flow-runs/{child['id']}")
    extracts = [_bar(page, f"extract-{i}") for i in range(3)]
    assert _overlap(extracts[0], extracts[1]) and _overlap(extracts[1], extracts[2])
    # `double` waited for its `extract` before it started: a lighter segment before its bar.
    waited = timeline.locator("a.row:has(text:text-is('double-0')) rect.wait")
    expect(waited).to_have_count(1)
    assert float(waited.get_attribute("x") or 0) < _bar(page, "double-0")[0]
    expect(timeline.locator("a.row:has(text:text-is('extract-0')) title")).to_contain_text(
        "Completed"
    )

    # The dependency graph: extract -> double -> total.
    graph = page.get_by_test_id("graph")
    expect(graph.locator("path.edge")).to_have_count(6)
    expect(graph.locator("a.node")).to_have_count(8)  # with the subflow call, linking to it
    expect(graph.locator(f"a.node[href='/flow-runs/{child['id']}']")).to_have_count(1)

    # Artifacts: markdown with raw HTML shows it as text; a javascript: link is no link.
    artifacts = page.locator("#run-artifacts")
    expect(artifacts.locator("h1")).to_have_text("Report")
    expect(artifacts).to_contain_text("<script>alert('artifact')</script>")
    expect(artifacts.locator("a[href^='javascript']")).to_have_count(0)
    expect(artifacts.get_by_role("link", name="click me")).to_have_count(0)

    # Logs: the level filter and the search hide lines, and the address keeps them.
    logs = page.locator("[data-log-lines]")
    hello = logs.locator(".log-line", has_text="hello from shapes")
    careful = logs.locator(".log-line", has_text="careful: disk almost full")
    expect(hello).to_be_visible()
    page.locator("[data-log-level]").select_option("WARNING")
    expect(hello).to_be_hidden()
    expect(careful).to_be_visible()
    assert "level=WARNING" in page.url
    page.locator("[data-log-level]").select_option("")
    page.locator("[data-log-search]").fill("HELLO FROM")
    expect(hello).to_be_visible()
    expect(careful).to_be_hidden()
    page.locator("[data-log-search]").fill("no line says this")
    expect(page.locator("[data-log-empty]")).to_be_visible()

    # The subflow's page links back to its parent.
    subflow_row.click()
    expect(page).to_have_url(f"{flows.url}/flow-runs/{child['id']}")
    expect(page.locator("#run-summary")).to_contain_text(run["name"])


def test_the_task_run_page_shows_its_inputs_and_links_back(flows: Ui, page: Page) -> None:
    run = _latest_run(flows, "shapes")
    tasks = flows.api("GET", "/task_runs", params={"flow_run_id": run["id"], "limit": 50})
    total = next(t for t in tasks["items"] if t["name"] == "total-0")

    page.goto(f"{flows.url}/flow-runs/{run['id']}")
    page.get_by_test_id("graph").locator(f"a.node[data-run-id='{total['id']}']").click()

    expect(page).to_have_url(f"{flows.url}/task-runs/{total['id']}")
    expect(page.get_by_test_id("run-name")).to_have_text("total-0")
    upstream = page.get_by_test_id("upstream")
    for i in range(3):
        expect(upstream.get_by_role("link", name=f"double-{i}")).to_be_visible()
    page.get_by_test_id("flow-run-link").click()
    expect(page).to_have_url(f"{flows.url}/flow-runs/{run['id']}")


def test_a_run_named_like_a_script_shows_as_text(flows: Ui, page: Page) -> None:
    flows.python("from page_flows import named; named()")
    run = _latest_run(flows, "named")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{flows.url}/flow-runs/{run['id'][:23]}")  # a short id is enough

    expect(page).to_have_url(f"{flows.url}/flow-runs/{run['id']}")
    expect(page.get_by_test_id("run-name")).to_have_text("<script>alert(1)</script>")
    expect(page.locator("[data-log-lines]")).to_contain_text("<img src=x onerror=alert(2)>")
    expect(page.locator("[data-log-lines] img")).to_have_count(0)
    assert page.title().startswith("<script>alert(1)</script>")
    assert dialogs == []


def test_logs_and_states_arrive_live(flows: Ui, page: Page) -> None:
    run = flows.stack.run(_deploy(flows, "chatty"))
    flows.stack.wait_for_state(run["id"], "RUNNING")

    page.goto(f"{flows.url}/flow-runs/{run['id']}")
    logs = page.locator("[data-log-lines]")
    expect(logs).to_contain_text("chatty started", timeout=15_000)
    expect(page.get_by_test_id("run-state")).to_have_text("Running")
    (flows.stack.marks / "chatty-go").touch()

    expect(logs).to_contain_text("the line after the page opened", timeout=15_000)
    expect(logs.locator(".log-line", has_text="the line after the page opened")).to_have_count(1)
    # The run ends: the header and the state history follow without a reload.
    expect(page.get_by_test_id("run-state")).to_have_text("Completed", timeout=20_000)
    expect(page.get_by_test_id("states").get_by_text("Completed", exact=True)).to_be_visible()
    expect(logs.locator(".log-line", has_text="chatty started")).to_have_count(1)


def test_the_live_stream_starts_after_the_lines_on_the_page(flows: Ui) -> None:
    """A page does not receive again, over the stream, the log lines it was rendered with."""
    (flows.stack.marks / "chatty-go").unlink(missing_ok=True)
    run = flows.stack.run(_deploy(flows, "chatty"))
    deadline = time.monotonic() + 30
    while "chatty started" not in [line["message"] for line in _logs(flows, run["id"])]:
        assert time.monotonic() < deadline, "no first log line"
        time.sleep(0.1)

    html = httpx.get(f"{flows.url}/flow-runs/{run['id']}", timeout=30).text
    found = re.search(r'data-stream-after="([^"]+)"', html)
    assert found, "the page gives no stream position"
    shown = _logs(flows, run["id"])
    assert len(shown) >= 2 and shown[-1]["message"] == "chatty started"
    with EventReader(
        flows.stack.api_url, flow_run_id=run["id"], kinds="logs", after=found.group(1)
    ) as reader:
        # The last line shown comes once more (a microsecond's margin; the page drops it by
        # id), the earlier ones not at all, then what is logged next.
        assert reader.next().data["id"] == shown[-1]["id"]
        (flows.stack.marks / "chatty-go").touch()
        assert reader.next().data["message"] == "the line after the page opened"
    flows.stack.wait_for_state(run["id"], "COMPLETED")


def _logs(ui: Ui, run_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ui.api("GET", "/logs", params={"flow_run_id": run_id})["items"]
    return items


def test_cancel_a_running_run(flows: Ui, page: Page) -> None:
    run = flows.stack.run(flows.stack.deploy("slow"))
    flows.stack.wait_for_mark(f"slow-started-{run['id']}")
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{flows.url}/flow-runs/{run['id']}")
    expect(page.get_by_test_id("retry")).to_have_count(0)
    page.get_by_test_id("cancel").click()

    expect(page.get_by_test_id("run-state")).to_have_text("Cancelled", timeout=30_000)
    expect(page.get_by_test_id("cancel")).to_have_count(0)
    assert flows.stack.flow_run(run["id"])["state_type"] == "CANCELLED"


def test_retry_a_failed_run(flows: Ui, page: Page) -> None:
    run = flows.stack.run(_deploy(flows, "broken"))
    flows.stack.wait_for_state(run["id"], "FAILED", "COMPLETED", "CRASHED", timeout=60)
    page.on("dialog", lambda dialog: dialog.accept())

    page.goto(f"{flows.url}/flow-runs/{run['id']}")
    expect(page.get_by_test_id("run-state")).to_have_text("Failed")
    result = page.locator("#run-result")
    expect(result.get_by_role("link", name="load-0")).to_be_visible()
    expect(result.get_by_test_id("traceback").first).to_contain_text(
        "ValueError: the input file is empty"
    )
    expect(page.get_by_test_id("cancel")).to_have_count(0)
    (flows.stack.marks / "broken-fixed").touch()
    page.get_by_test_id("retry").click()

    expect(page.get_by_test_id("run-state")).to_have_text("Completed", timeout=60_000)
    expect(page.get_by_test_id("run-count")).to_have_text("2")
    assert flows.stack.flow_run(run["id"])["state_type"] == "COMPLETED"


def test_resume_a_paused_run_with_typed_input(flows: Ui, page: Page) -> None:
    run = flows.stack.run(_deploy(flows, "gated"))
    flows.stack.wait_for_state(run["id"], "PAUSED", "FAILED", "CRASHED", timeout=60)

    page.goto(f"{flows.url}/flow-runs/{run['id']}")
    expect(page.get_by_test_id("pause-note")).to_contain_text("waiting for input")
    page.get_by_test_id("resume").click()
    dialog = page.locator("#resume-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_label("approved").check()
    # The form lets a note through that the input model refuses: the server's answer shows
    # next to the field, and the run stays paused.
    page.allowed_errors.append("status of 422")  # the browser reports the refused request
    dialog.get_by_label("note").fill("far too long a note")
    dialog.get_by_test_id("resume-submit").click()
    expect(dialog.locator("[data-field='note'] .error")).to_contain_text("too long")
    assert flows.stack.flow_run(run["id"])["state_type"] == "PAUSED"
    dialog.get_by_label("note").fill("ship it")
    dialog.get_by_test_id("resume-submit").click()

    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("run-state")).to_have_text("Completed", timeout=30_000)
    expect(page.get_by_test_id("resume-input")).to_contain_text('"note": "ship it"')
    done = flows.stack.wait_for_state(run["id"], "COMPLETED", "FAILED", "CRASHED")
    assert done["state_type"] == "COMPLETED", done["state_message"]
    assert (flows.stack.marks / "gated-True").read_text() == "ship it"


def test_missing_and_malformed_ids_are_not_found(app_client: Any) -> None:
    created = app_client.post(
        "/api/flow_runs", json={"flow_name": "etl", "name": "<b>raw</b> & more"}
    ).json()

    shown = app_client.get(f"/flow-runs/{created['id']}")
    missing = app_client.get("/flow-runs/00000000-0000-7000-8000-000000000000")
    malformed = app_client.get("/flow-runs/not-a-run")
    no_task = app_client.get("/task-runs/00000000-0000-7000-8000-000000000000")

    assert shown.status_code == 200
    assert "&lt;b&gt;raw&lt;/b&gt; &amp; more" in shown.text
    assert "<b>raw</b>" not in shown.text
    assert missing.status_code == 404
    assert malformed.status_code == 404
    assert no_task.status_code == 404


def test_a_refresh_renders_only_what_it_asks_for(app_client: Any) -> None:
    created = app_client.post("/api/flow_runs", json={"flow_name": "etl"}).json()

    answer = app_client.get(
        f"/flow-runs/{created['id']}", headers={"x-headwater-refresh": "run-head,run-states"}
    )

    assert answer.status_code == 200
    assert 'id="run-head"' in answer.text and 'id="run-states"' in answer.text
    assert "data-log-lines" not in answer.text  # the logs were not read
