"""`serve` and `run_deployment` as users call them: against a server, and on the embedded store."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater import flow
from headwater.client.api import _clients
from headwater.engine.recorder import close_recorder
from headwater.settings import reset_settings

from .conftest import FLOWS, Stack, eventually


@pytest.fixture
def remote(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """This process's SDK points at the stack's server."""
    for key, value in stack.env.items():
        if key.startswith("HEADWATER_"):
            monkeypatch.setenv(key, value)
    close_recorder()
    reset_settings()
    _clients.clear()
    yield stack
    close_recorder()
    reset_settings()
    _clients.clear()


@flow
def parent(deployment: str) -> str:
    from headwater.deployments import run_deployment

    return str(run_deployment(deployment, parameters={"tag": "child"}, timeout=60).id)


def test_run_deployment_waits_for_the_end_and_links_a_subflow(remote: Stack) -> None:
    from headwater.deployments import run_deployment

    remote.deploy("quick")
    remote.start_worker()

    run = run_deployment("quick/quick", parameters={"n": 4}, timeout=60)
    child_id = parent("quick/quick")

    assert run.state.is_completed(), run.state
    assert run.parameters == {"tag": "x", "n": 4}  # as the flow saw them: with defaults
    child = remote.flow_run(child_id)
    assert child["state_type"] == "COMPLETED"
    assert child["parent_flow_run_id"] is not None
    assert remote.flow_run(child["parent_flow_run_id"])["flow_name"] == "parent"


def test_run_deployment_with_timeout_zero_returns_the_scheduled_run(remote: Stack) -> None:
    from headwater.deployments import run_deployment

    remote.deploy("quick")
    run = run_deployment("quick/quick", timeout=0, idempotency_key="once")
    again = run_deployment("quick/quick", timeout=0, idempotency_key="once")

    assert run.state.type.value == "SCHEDULED"
    assert again.id == run.id


def test_run_deployment_names_what_is_wrong(remote: Stack) -> None:
    from headwater.deployments import run_deployment
    from headwater.exceptions import ObjectNotFound

    with pytest.raises(ObjectNotFound, match="flow-name/deployment-name"):
        run_deployment("quick", timeout=0)
    with pytest.raises(ObjectNotFound, match="headwater deployment ls"):
        run_deployment("quick/missing", timeout=0)


def test_serve_without_a_server_uses_the_embedded_store(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "marks").mkdir(parents=True)
    (project / "flows.py").write_text(FLOWS)
    home = tmp_path / "home"
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_HOME=str(home), E2E_MARKS=str(project / "marks"))
    log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen(
        [sys.executable, "flows.py", "embedded"],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        script = (
            "from headwater.deployments import run_deployment\n"
            "run = run_deployment('quick/embedded', parameters={'n': 5}, timeout=60)\n"
            "print(run.state.type.value)\n"
        )
        deadline = time.monotonic() + 60
        while True:  # until serve has registered its deployment
            result = subprocess.run(
                [sys.executable, "-c", script],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert result.stdout.strip() == "COMPLETED", (
            result.stderr + (tmp_path / "serve.log").read_text()
        )
        assert list((project / "marks").glob("quick-*"))
    finally:
        serving.send_signal(signal.SIGINT)
        serving.wait(30)
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "from headwater.client.api import get_client\n"
            "print(get_client().request('GET', '/deployments/name/quick/embedded')['paused'])",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.stdout.strip() == "True", check.stderr  # paused when serving stopped
    eventually(lambda: serving.poll() is not None)


def test_flow_deploy_registers_a_deployment_of_this_file_on_a_pool(remote: Stack) -> None:
    deployment_id = parent.deploy(
        "from-code",
        work_pool_name="etl",
        cron="0 2 * * *",
        parameters={"deployment": "quick/quick"},
        tags=["code"],
    )

    found = remote.request("GET", "/deployments/name/parent/from-code")
    assert found["id"] == deployment_id
    assert found["entrypoint"].endswith("test_serve.py:parent")
    assert found["work_pool_name"] == "etl"
    assert found["parameters"] == {"deployment": "quick/quick"}
    assert found["parameter_schema"]["required"] == ["deployment"]
    assert [s["schedule"]["cron"] for s in found["schedules"]] == ["0 2 * * *"]
    with pytest.raises(Exception, match="has no parameter"):
        parent.deploy("bad", work_pool_name="etl", parameters={"nope": 1})
