"""Automations end to end: a real server and its services, real workers and flow processes,
a real SMTP server and webhook receiver. Each example of the issue fires exactly once per
qualifying situation, and never otherwise."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
from tests.server.helpers import headwater_command

from .conftest import Stack, eventually
from .receivers import http_receiver, smtp_server

#: How long "never otherwise" is watched for after the last expected firing.
QUIET = 2.0


def _mail_url(port: int) -> str:
    return f"mailto://127.0.0.1:{port}?from=headwater@example.com&to=ops@example.com&mode=insecure"


def _automation(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = stack.request("POST", "/automations", json=body)
    return found


def _firings(stack: Stack, automation: dict[str, Any]) -> list[dict[str, Any]]:
    page = stack.request("GET", f"/automations/{automation['id']}/firings", params={"limit": 200})
    items: list[dict[str, Any]] = page["items"]
    return items


def _emit(stack: Stack, name: str, resource_id: str, **payload: Any) -> None:
    event = {"event": name, "resource": {"headwater.resource.id": resource_id}, "payload": payload}
    stack.request("POST", "/events", json=[event])


def _runs_of(stack: Stack, deployment: dict[str, Any]) -> list[dict[str, Any]]:
    page = stack.request(
        "GET", "/flow_runs", params={"deployment_id": deployment["id"], "limit": 200}
    )
    items: list[dict[str, Any]] = page["items"]
    return items


def _stays(check: Callable[[], bool], seconds: float = QUIET) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check()
        time.sleep(0.1)


def test_a_failed_etl_run_sends_one_email_and_one_webhook_call(stack: Stack) -> None:
    etl = stack.deploy("etl")
    stack.start_worker()
    with smtp_server() as (port, mailbox), http_receiver() as (receiver, inbox):
        _automation(
            stack,
            {
                "name": "etl-failed",
                "trigger": {
                    "type": "event",
                    "expect": ["headwater.flow-run.Failed"],
                    "match_related": {
                        "headwater.resource.role": "flow",
                        "headwater.resource.name": "etl",
                    },
                },
                "actions": [
                    {
                        "type": "send-notification",
                        "url": _mail_url(port),
                        "subject": "{{ flow_run.name }} of {{ flow.name }} failed",
                        "body": "{{ flow_run.state_message }}\n{{ flow_run.url }}",
                    },
                    {
                        "type": "call-webhook",
                        "url": f"{receiver}/alerts",
                        "payload": '{"run": "{{ flow_run.id }}", '
                        '"state": "{{ flow_run.state_name }}"}',
                    },
                ],
            },
        )

        good = stack.run(etl)
        assert stack.wait_for_state(good["id"], "COMPLETED", "FAILED")["state_type"] == "COMPLETED"
        bad = stack.run(etl, fail=True)
        failed = stack.wait_for_state(bad["id"], "FAILED", "COMPLETED")
        assert failed["state_type"] == "FAILED"

        eventually(lambda: len(mailbox.messages) == 1 and len(inbox.requests) == 1)
        _stays(lambda: len(mailbox.messages) == 1 and len(inbox.requests) == 1)
        message = mailbox.messages[0]
        assert message["Subject"] == f"{failed['name']} of etl failed"
        body = mailbox.bodies()[0]
        assert "the input file is empty" in body
        assert bad["id"] in body  # the link to the run
        assert inbox.bodies() == [{"run": bad["id"], "state": "Failed"}]

        # A second failure is a second situation: one more of each.
        again = stack.run(etl, fail=True)
        stack.wait_for_state(again["id"], "FAILED")
        eventually(lambda: len(mailbox.messages) == 2 and len(inbox.requests) == 2)
        _stays(lambda: len(mailbox.messages) == 2 and len(inbox.requests) == 2)


def test_ten_signups_within_a_minute_run_onboard_with_their_emails(stack: Stack) -> None:
    onboard = stack.deploy("onboard")
    stack.start_worker()
    automation = _automation(
        stack,
        {
            "name": "onboard-signups",
            "trigger": {
                "type": "event",
                "expect": ["customer.signup"],
                "threshold": 10,
                "within": 60,
            },
            "actions": [
                {
                    "type": "run-deployment",
                    "deployment": "onboard/onboard",
                    "parameters": {
                        "emails": "{{ events | map(attribute='payload')"
                        " | map(attribute='email') | list }}"
                    },
                }
            ],
        },
    )

    for i in range(25):
        _emit(stack, "customer.signup", f"customer.{i}", email=f"user{i}@example.com")

    eventually(lambda: len(_runs_of(stack, onboard)) == 2)
    _stays(lambda: len(_runs_of(stack, onboard)) == 2)
    runs = sorted(_runs_of(stack, onboard), key=lambda run: run["created"])
    assert runs[0]["parameters"]["emails"] == [f"user{i}@example.com" for i in range(10)]
    assert runs[1]["parameters"]["emails"] == [f"user{i}@example.com" for i in range(10, 20)]
    for run in runs:
        assert stack.wait_for_state(run["id"], "COMPLETED", "FAILED")["state_type"] == "COMPLETED"
    assert len(stack.wait_for_mark("onboard-")) == 2
    firings = _firings(stack, automation)
    assert len(firings) == 2
    assert all(a["state"] == "COMPLETED" for f in firings for a in f["actions"]), firings


def test_a_nightly_run_not_done_in_time_is_reported_and_cancelled(stack: Stack) -> None:
    nightly = stack.deploy("nightly")
    stack.start_worker()
    with http_receiver() as (receiver, inbox):
        _automation(
            stack,
            {
                "name": "nightly-overdue",
                "trigger": {
                    "type": "event",
                    "posture": "Proactive",
                    "after": ["headwater.flow-run.Running"],
                    "expect": ["headwater.flow-run.Completed"],
                    "for_each": ["headwater.resource.id"],
                    "match_related": {
                        "headwater.resource.role": "deployment",
                        "headwater.resource.name": "nightly",
                    },
                    "within": 3,
                },
                "actions": [
                    {
                        "type": "send-notification",
                        "url": f"json://{receiver.removeprefix('http://')}/overdue",
                        "body": "{{ flow_run.name }} is overdue",
                    },
                    {"type": "cancel-flow-run"},
                ],
            },
        )

        on_time = stack.run(nightly, seconds=0.2)
        late = stack.run(nightly, seconds=120)
        assert stack.wait_for_state(on_time["id"], "COMPLETED")["state_type"] == "COMPLETED"
        cancelled = stack.wait_for_state(late["id"], "CANCELLED", "COMPLETED", timeout=30)
        assert cancelled["state_type"] == "CANCELLED"

        eventually(lambda: len(inbox.requests) == 1)
        _stays(lambda: len(inbox.requests) == 1)
        assert f"{late['name']} is overdue" in str(inbox.bodies()[0])


def test_merge_runs_once_upstream_completed_and_files_landed(stack: Stack) -> None:
    upstream = stack.deploy("upstream")
    land = stack.deploy("land")
    merge = stack.deploy("merge")
    stack.start_worker()
    _automation(
        stack,
        {
            "name": "merge-when-ready",
            "trigger": {
                "type": "compound",
                "require": "all",
                "within": 300,
                "triggers": [
                    {
                        "type": "event",
                        "expect": ["headwater.flow-run.Completed"],
                        "match_related": {
                            "headwater.resource.role": "flow",
                            "headwater.resource.name": "upstream",
                        },
                    },
                    {"type": "event", "expect": ["files.landed"]},
                ],
            },
            "actions": [{"type": "run-deployment", "deployment": "merge/merge"}],
        },
    )

    stack.wait_for_state(stack.run(upstream)["id"], "COMPLETED")
    _stays(lambda: _runs_of(stack, merge) == [], 1.0)  # half of the condition
    # `land` calls emit_event in its flow process; the event travels with its run records.
    stack.wait_for_state(stack.run(land)["id"], "COMPLETED")

    eventually(lambda: len(_runs_of(stack, merge)) == 1)
    _stays(lambda: len(_runs_of(stack, merge)) == 1)
    stack.wait_for_state(_runs_of(stack, merge)[0]["id"], "COMPLETED")

    # Files landing again without a new upstream run: nothing.
    stack.wait_for_state(stack.run(land)["id"], "COMPLETED")
    _stays(lambda: len(_runs_of(stack, merge)) == 1)


def test_a_webhook_request_runs_a_deployment(stack: Stack) -> None:
    quick = stack.deploy("quick")
    stack.start_worker()
    hook = stack.request(
        "POST",
        "/webhooks",
        json={
            "name": "ci",
            "template": '{"event": "ci.{{ body.status }}", '
            '"resource": {"headwater.resource.id": "ci.{{ body.pipeline }}"}, '
            '"payload": {"n": {{ body.n }}}}',
        },
    )
    _automation(
        stack,
        {
            "name": "ci-passed",
            "trigger": {"type": "event", "expect": ["ci.passed"]},
            "actions": [
                {
                    "type": "run-deployment",
                    "deployment": "quick/quick",
                    "parameters": {"tag": "{{ event.resource.id }}", "n": "{{ event.payload.n }}"},
                }
            ],
        },
    )
    root = stack.api_url.removesuffix("/api")

    assert httpx.post(f"{root}/hooks/{hook['slug']}", json={"status": "failed"}).status_code in (
        400,
        202,
    )
    response = httpx.post(
        f"{root}/hooks/{hook['slug']}", json={"status": "passed", "pipeline": "main", "n": 4}
    )
    assert response.status_code == 202, response.text
    assert httpx.post(f"{root}/hooks/not-a-hook", json={}).status_code == 404

    eventually(lambda: len(_runs_of(stack, quick)) == 1)
    run = _runs_of(stack, quick)[0]
    assert run["parameters"] == {"tag": "ci.main", "n": 4}
    assert stack.wait_for_state(run["id"], "COMPLETED")["state_type"] == "COMPLETED"
    _stays(lambda: len(_runs_of(stack, quick)) == 1, 1.0)


def _services(stack: Stack, label: str) -> subprocess.Popen[str]:
    return stack.start([*headwater_command(), "services", "start"], label)


def test_firings_are_exactly_once_with_two_services_processes_and_restarts(
    stack_without_services: Stack,
) -> None:
    stack = stack_without_services
    automation = _automation(
        stack,
        {
            "name": "every-third-order",
            "trigger": {"type": "event", "expect": ["shop.order"], "threshold": 3, "within": 600},
            "actions": [{"type": "do-nothing"}],
        },
    )
    first = _services(stack, "services-a")
    second = _services(stack, "services-b")

    for i in range(15):
        _emit(stack, "shop.order", f"order.{i}")
    eventually(lambda: len(_firings(stack, automation)) == 5)

    # The process holding the lease dies mid-stream; the other one takes over.
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    for i in range(15, 30):
        _emit(stack, "shop.order", f"order.{i}")
        time.sleep(0.02)
    eventually(lambda: len(_firings(stack, automation)) == 10, timeout=20)

    # Both stop; events arrive while no service runs; a new one catches up.
    second.send_signal(signal.SIGINT)
    second.wait(15)
    for i in range(30, 45):
        _emit(stack, "shop.order", f"order.{i}")
    _services(stack, "services-c")
    eventually(lambda: len(_firings(stack, automation)) == 15, timeout=20)
    _stays(lambda: len(_firings(stack, automation)) == 15)
