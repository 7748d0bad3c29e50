"""A real `headwater server start` process, driven over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import uuid
from pathlib import Path

import httpx

from .helpers import run_batch, running_server

DOCS = Path(__file__).parents[2] / "docs" / "rest-api.md"


def test_records_round_trip_through_a_real_server(database_url: str, tmp_path: Path) -> None:
    body = run_batch(tasks=20, logs=5)
    run_id = str(uuid.UUID(body["flow_runs"][0]["id"]))
    with running_server(tmp_path / "home", database_url) as (base, _process):
        api = httpx.Client(base_url=base, timeout=30)
        assert api.get("/ready").json()["status"] == "ready"

        compressed = gzip.compress(json.dumps(body).encode())
        gzipped = {"content-type": "application/json", "content-encoding": "gzip"}
        first = api.post("/records", content=compressed, headers=gzipped)
        again = api.post("/records", json=body)

        assert first.status_code == again.status_code == 200
        assert first.json() == {
            "flows": 1,
            "flow_runs": 1,
            "task_runs": 20,
            "states": 61,
            "logs": 5,
            "events": 0,
        }
        assert api.get("/task_runs", params={"flow_run_id": run_id}).json()["total"] == 20
        assert api.get("/logs", params={"flow_run_id": run_id}).json()["total"] == 5
        assert api.get("/flow_runs/counts").json() == {"counts": {"RUNNING": 1}, "total": 1}

        done = api.post(f"/flow_runs/{run_id}/set_state", json={"type": "COMPLETED"})
        assert done.status_code == 200
        refused = api.post(f"/flow_runs/{run_id}/set_state", json={"type": "RUNNING"})
        assert refused.status_code == 409
        assert api.get(f"/flow_runs/{run_id}").json()["state_type"] == "COMPLETED"

        bad = api.post("/records", json={"task_runs": [{"id": "nope"}]})
        assert bad.status_code == 422
        assert ["body", "task_runs", 0, "id"] in [d["loc"] for d in bad.json()["detail"]]
        assert api.get(f"/flow_runs/{uuid.uuid4()}").status_code == 404


def test_an_api_key_protects_a_real_server(database_url: str, tmp_path: Path) -> None:
    with running_server(tmp_path / "home", database_url, HEADWATER_API_KEY="k3y") as (base, _):
        assert httpx.get(f"{base}/health").status_code == 200
        assert httpx.get(f"{base}/flow_runs").status_code == 401
        assert httpx.get(f"{base}/openapi.json").status_code == 401
        authorized = httpx.get(f"{base}/flow_runs", headers={"Authorization": "Bearer k3y"})
        assert authorized.status_code == 200


def test_the_curl_example_of_the_docs_records_a_completed_run(
    database_url: str, tmp_path: Path
) -> None:
    blocks = re.findall(r"```sh\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert len(blocks) == 1, "docs/rest-api.md should have exactly one ```sh example"
    with running_server(tmp_path / "home", database_url, HEADWATER_API_KEY="k3y") as (base, _):
        result = subprocess.run(
            ["bash", "-c", blocks[0]],
            env={"PATH": "/usr/bin:/bin", "HEADWATER_API_URL": base, "HEADWATER_API_KEY": "k3y"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr

        api = httpx.Client(base_url=base, headers={"Authorization": "Bearer k3y"})
        runs = api.get("/flow_runs", params={"flow_name": "nightly-backup"}).json()["items"]
        assert [(run["state_type"], run["state_message"]) for run in runs] == [
            ("COMPLETED", "backup done")
        ]
        run = runs[0]
        assert json.loads(result.stdout.strip().splitlines()[-1])["id"] == run["id"]
        tasks = api.get("/task_runs", params={"flow_run_id": run["id"]}).json()["items"]
        assert [(task["name"], task["state_type"]) for task in tasks] == [
            ("dump-db-0", "COMPLETED")
        ]
        history = api.get(f"/flow_runs/{run['id']}/states").json()
        assert [state["type"] for state in history] == ["PENDING", "RUNNING", "COMPLETED"]
        logs = api.get("/logs", params={"flow_run_id": run["id"]}).json()["items"]
        assert [line["message"] for line in logs] == ["dumped 42 tables"]
