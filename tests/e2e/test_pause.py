"""Human-in-the-loop with a real server and worker: pause for typed input, suspend, resume."""

from __future__ import annotations

import subprocess
import time

from tests.server.helpers import headwater_command

from .conftest import Stack, alive

PAUSE_FLOWS = """
import os
import pathlib

from headwater import flow, pause_flow_run, runtime, suspend_flow_run, task
from headwater.input import RunInput

MARKS = pathlib.Path(os.environ["E2E_MARKS"])


class Approval(RunInput):
    approved: bool
    note: str = ""


@task
def prepare() -> str:
    return "prepared"


@flow
def gated() -> str:
    prepare()
    approval = pause_flow_run(wait_for_input=Approval, timeout=120, poll_interval=10)
    (MARKS / f"gated-{approval.approved}").write_text(approval.note)
    return f"approved={approval.approved}"


@flow
def suspendable() -> str:
    (MARKS / f"suspendable-start-{os.getpid()}").write_text(str(runtime.flow_run.run_count))
    approval = suspend_flow_run(wait_for_input=Approval, timeout=120)
    (MARKS / f"suspendable-{approval.approved}-{os.getpid()}").write_text(approval.note)
    return "done"
"""


def _deploy(stack: Stack, flow: str) -> dict[str, object]:
    (stack.project / "pause_flows.py").write_text(PAUSE_FLOWS)
    return stack.deploy(flow, entrypoint=f"pause_flows.py:{flow}")


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*headwater_command(), *args],
        env=stack.env,
        cwd=stack.project,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_deployment_run_pauses_for_typed_input_and_the_cli_resumes_it(stack: Stack) -> None:
    deployment = _deploy(stack, "gated")
    stack.start_worker()
    run = stack.run(deployment)

    paused = stack.wait_for_state(run["id"], "PAUSED", "FAILED", "CRASHED")
    assert paused["state_name"] == "Paused", paused["state_message"]
    refused = _cli(stack, "flow-run", "resume", run["id"], "--input", "approved=maybe")
    still = stack.flow_run(run["id"])
    resumed = _cli(
        stack, "flow-run", "resume", run["id"][:12], "--input", "approved=true", "-i", "note=ok"
    )
    started = time.monotonic()
    done = stack.wait_for_state(run["id"], "COMPLETED", "FAILED", "CRASHED")

    assert refused.returncode != 0
    assert "approved" in refused.stderr + refused.stdout
    assert still["state_type"] == "PAUSED"
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed" in resumed.stdout
    assert done["state_type"] == "COMPLETED", done["state_message"]
    assert time.monotonic() - started < 5  # the waiting process hears of the resume at once
    assert (stack.marks / "gated-True").read_text() == "ok"
    assert done["run_count"] == 1


def test_a_suspended_run_frees_its_worker_and_completes_after_resume(stack: Stack) -> None:
    deployment = _deploy(stack, "suspendable")
    quick = stack.deploy("quick")
    stack.start_worker("--limit", "1")
    run = stack.run(deployment)

    suspended = stack.wait_for_state(run["id"], "PAUSED", "FAILED", "CRASHED")
    assert suspended["state_name"] == "Suspended", suspended["state_message"]
    (first,) = stack.wait_for_mark("suspendable-start-")
    first_pid = int(first.name.rsplit("-", 1)[1])
    deadline = time.monotonic() + 20
    while alive(first_pid):
        assert time.monotonic() < deadline, "the suspended run's process did not exit"
        time.sleep(0.05)
    # The only slot of the worker is free: another deployment's run completes meanwhile.
    other = stack.run(quick)
    assert stack.wait_for_state(other["id"], "COMPLETED", "FAILED")["state_type"] == "COMPLETED"
    assert stack.flow_run(run["id"])["state_name"] == "Suspended"  # not Crashed on exit

    resumed = _cli(stack, "flow-run", "resume", run["id"], "--input-json", '{"approved": true}')
    done = stack.wait_for_state(run["id"], "COMPLETED", "FAILED", "CRASHED")

    assert resumed.returncode == 0, resumed.stderr
    assert "runs it again" in resumed.stdout
    assert done["state_type"] == "COMPLETED", done["state_message"]
    starts = sorted(stack.marks.glob("suspendable-start-*"))
    assert len(starts) == 2  # the flow ran again from the start, in a new process
    (finished,) = stack.marks.glob("suspendable-True-*")
    assert int(finished.name.rsplit("-", 1)[1]) != first_pid
    history = [
        (s["type"], s["name"]) for s in stack.request("GET", f"/flow_runs/{run['id']}/states")
    ]
    assert ("PAUSED", "Suspended") in history
    assert ("SCHEDULED", "Resuming") in history
