"""Screenshots of the UI's main pages, for a reviewer: `make screenshots` (or
`python -m tests.ui.screenshots OUTDIR`).

Starts `headwater server start` on a fresh store in a temporary directory, makes real
runs (a fan-out ETL with a subflow and artifacts, a failing flow, a paused one, a
deployment run by a worker), variables, a secret, a concurrency limit, an automation and
events, then saves PNGs of each page in light and dark mode and two on a narrow screen.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Stack, _stack
from tests.ui.conftest import CHROMIUM, Ui

SEED = """
import time
from headwater import flow, task, get_run_logger, pause_flow_run
from headwater.artifacts import (
    create_link_artifact, create_markdown_artifact, create_progress_artifact,
    create_table_artifact,
)


@task
def extract(source: str) -> list[int]:
    time.sleep(0.15)
    get_run_logger().info("extracted %s", source)
    return list(range(len(source) * 3))


@task(retries=1, retry_delay_seconds=0.05)
def transform(rows: list[int]) -> list[int]:
    time.sleep(0.25)
    return [r * 2 for r in rows]


@task
def load(batches: list[list[int]]) -> int:
    time.sleep(0.1)
    return sum(len(b) for b in batches)


@flow
def publish_report(total: int) -> None:
    create_markdown_artifact(
        f"# Nightly load\\n\\nLoaded **{total}** rows from 3 sources.\\n\\n"
        "| source | rows |\\n|---|---|\\n| orders | 18 |\\n| users | 15 |\\n| events | 18 |",
        key="nightly-report",
        description="Rows loaded per source",
    )
    create_table_artifact(
        [{"source": "orders", "rows": 18}, {"source": "users", "rows": 15}], key="row-counts"
    )
    create_link_artifact("https://example.com/dashboards/nightly", "Nightly dashboard")
    create_progress_artifact(100.0, key="backfill-progress")


@flow(log_prints=True)
def etl(sources: list[str] = ["orders", "users", "events"]) -> int:
    extracted = extract.map(sources)
    transformed = [transform.submit(e) for e in extracted]
    total = load([t.result() for t in transformed])
    print(f"loaded {total} rows")
    publish_report(total)
    return total


@flow
def broken(path: str = "s3://raw/2026-11-21.csv") -> None:
    get_run_logger().warning("file %s looks empty", path)
    raise ValueError(f"the input file {path} is empty")


for _ in range(3):
    etl()
try:
    broken()
except ValueError:
    pass
"""

PAUSE = """
from headwater import flow, pause_flow_run
from headwater.input import RunInput


class Approval(RunInput):
    approved: bool
    reviewer: str
    note: str = ""


@flow
def approve_release(version: str = "2.4.0") -> None:
    answer = pause_flow_run(wait_for_input=Approval, timeout=3600)
    print(answer)


approve_release()
"""


def seed(ui: Ui) -> dict[str, Any]:
    """Real runs and resources on the server of `ui`; returns ids the pages need."""
    stack: Stack = ui.stack
    ui.python(SEED, timeout=120)
    stack.start([sys.executable, "-c", PAUSE], "pause-flow")  # stays paused, waiting for its input
    deployment = stack.deploy(
        "quick",
        "hourly",
        schedules=[{"schedule": {"cron": "0 * * * *"}}],
        tags=["nightly", "team-data"],
        parameters={"tag": "scheduled", "n": 3},
    )
    stack.start_worker()
    run = stack.run(deployment, tag="by-hand", n=2)
    stack.wait_for_state(run["id"], "COMPLETED", timeout=60)
    stack.request("POST", "/variables", json={"name": "batch_size", "value": 500})
    stack.request("POST", "/variables", json={"name": "regions", "value": ["eu", "us"]})
    stack.request("PUT", "/secrets/warehouse-password", json={"value": "s3cr3t-value"})
    stack.request("POST", "/concurrency_limits", json={"name": "warehouse", "limit": 4})
    stack.request(
        "POST",
        "/automations",
        json={
            "name": "rerun on files landed",
            "trigger": {"type": "event", "expect": ["files.landed"], "posture": "Reactive"},
            "actions": [{"type": "run-deployment", "deployment_id": deployment["id"]}],
        },
    )
    stack.request(
        "POST",
        "/events",
        json=[
            {
                "event": "files.landed",
                "resource": {"headwater.resource.id": "bucket.raw/2026-11-21.csv"},
                "payload": {"size": 1024},
            }
        ],
    )
    runs = stack.request("GET", "/flow_runs", params={"limit": 50})["items"]
    failed = next(r for r in runs if r["state_type"] == "FAILED")
    etl = next(
        r
        for r in runs
        if r["name"]
        and r["state_type"] == "COMPLETED"
        and r["parent_flow_run_id"] is None
        and r["deployment_id"] is None
    )
    deadline = time.monotonic() + 30
    while not any(r["state_type"] == "PAUSED" for r in runs):
        if time.monotonic() > deadline:
            raise AssertionError("the pausing flow did not pause: " + stack.logs())
        time.sleep(0.2)
        runs = stack.request("GET", "/flow_runs", params={"limit": 50})["items"]
    paused = next(r for r in runs if r["state_type"] == "PAUSED")
    return {"etl": etl, "failed": failed, "paused": paused, "deployment": deployment}


def pages(ids: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("dashboard", "/"),
        ("flow-runs", "/flow-runs"),
        ("flow-run", f"/flow-runs/{ids['etl']['id']}"),
        ("flow-run-failed", f"/flow-runs/{ids['failed']['id']}"),
        ("flow-run-paused", f"/flow-runs/{ids['paused']['id']}"),
        ("flows", "/flows"),
        ("deployments", "/deployments"),
        ("deployment", f"/deployments/{ids['deployment']['id']}"),
        ("work-pools", "/work-pools"),
        ("work-pool", "/work-pools/etl"),
        ("automations", "/automations"),
        ("automation-new", "/automations/new"),
        ("events", "/events"),
        ("artifacts", "/artifacts"),
        ("variables", "/variables"),
        ("secrets", "/secrets"),
        ("concurrency-limits", "/concurrency-limits"),
    ]


def shoot(ui: Ui, out: Path, ids: dict[str, Any]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        for scheme in ("light", "dark"):
            context = browser.new_context(
                viewport={"width": 1360, "height": 900}, color_scheme=scheme
            )
            page = context.new_page()
            for name, path in pages(ids):
                page.goto(ui.url + path, wait_until="load")
                page.wait_for_timeout(400)  # live regions connect, charts settle
                target = out / f"{name}-{scheme}.png"
                page.screenshot(path=str(target), full_page=True)
                made.append(target)
            context.close()
        narrow = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
        page = narrow.new_page()
        for name, path in pages(ids)[:3]:
            page.goto(ui.url + path, wait_until="load")
            page.wait_for_timeout(400)
            target = out / f"{name}-narrow.png"
            page.screenshot(path=str(target), full_page=True)
            made.append(target)
        browser.close()
    return made


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "screenshots").resolve()
    with tempfile.TemporaryDirectory(prefix="headwater-screens-") as tmp:
        path = Path(tmp)
        with _stack(f"sqlite:///{path / 'headwater.db'}", path) as stack:
            ui = Ui(stack)
            made = shoot(ui, out, seed(ui))
    for target in made:
        print(target)
    print(f"{len(made)} screenshots in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
