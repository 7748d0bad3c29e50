"""send-notification delivered for real: to a local SMTP server (aiosmtpd) and a local HTTP
receiver (apprise json://), with rendered text, URLs kept in secrets, and readable failures."""

from __future__ import annotations

import email
import email.policy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import MakeClient
from .helpers import free_port
from .test_automation_actions import Env, Receiver, deploy, make_env, run_event, run_of


@pytest.fixture
def env(make_client: MakeClient, database_url: str, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(make_client, database_url, tmp_path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


class Mailbox:
    """A real SMTP server on 127.0.0.1 (plain SMTP, no TLS) collecting what it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                mailbox.envelopes.append(envelope)
                mailbox.messages.append(
                    email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
                )
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def url(self, **query: str) -> str:
        params = "&".join(f"{k}={v}" for k, v in {"from": "headwater@example.com", **query}.items())
        return f"mailto://127.0.0.1:{self.port}?{params}"

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    server = Mailbox()
    yield server
    server.close()


def _text(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_notification_reaches_a_real_smtp_server_with_the_rendered_text(
    env: Env, mailbox: Mailbox
) -> None:
    deployment = deploy(env.client)
    run = run_of(env.client, deployment["id"])
    env.client.post(
        f"/flow_runs/{run['id']}/set_state",
        json={"type": "FAILED", "message": "disk full", "force": True},
    )
    _, (action_id,) = env.fire(
        [
            {
                "type": "send-notification",
                "url": mailbox.url(to="ops@example.com"),
                "subject": "{{ flow.name }}/{{ deployment.name }}: {{ flow_run.name }} failed",
                "body": "{{ flow_run.name }} failed: {{ flow_run.state_message }} — "
                "{{ flow_run.url }}",
            }
        ],
        event=run_event(run),
    )
    assert env.run() == 1
    row = env.action(action_id)
    assert row["state"] == "COMPLETED", row["error"]
    assert row["result"]["delivered"] == [0]
    (message,) = mailbox.messages
    assert message["Subject"] == f"signup/onboard: {run['name']} failed"
    assert mailbox.envelopes[0].rcpt_tos == ["ops@example.com"]
    link = f"https://headwater.example.com/flow-runs/{run['id']}"
    assert _text(message).strip() == f"{run['name']} failed: disk full — {link}"
    (completed,) = env.events()
    assert completed["event"] == "headwater.automation.action.completed"


def test_urls_from_a_secret_reach_smtp_and_a_json_receiver(
    env: Env, mailbox: Mailbox, receiver: Receiver
) -> None:
    urls = [mailbox.url(to="a@example.com"), f"json://127.0.0.1:{receiver.port}/notify"]
    stored = env.client.put("/secrets/alerts", json={"value": json.dumps(urls)})
    assert stored.status_code in (200, 201), stored.text
    _, (action_id,) = env.fire(
        [
            {
                "type": "send-notification",
                "secret": "alerts",
                "subject": "{{ events | length }} signups",
                "body": "first: {{ event.payload.email }}",
            }
        ],
        event={
            "event": "customer.signup",
            "resource": {"headwater.resource.id": "customer.1"},
            "payload": {"email": "x@example.com"},
        },
    )
    assert env.run() == 1
    row = env.action(action_id)
    assert row["state"] == "COMPLETED", row["error"]
    assert row["result"]["destinations"] == [
        f"mailto://127.0.0.1:{mailbox.port}/…",
        (f"json://127.0.0.1:{receiver.port}/…"),
    ]
    assert mailbox.messages[0]["Subject"] == "1 signups"
    (request,) = receiver.requests
    assert request["path"] == "/notify"
    posted = json.loads(request["body"])
    assert (posted["title"], posted["message"]) == ("1 signups", "first: x@example.com")


def test_smtp_server_down_fails_after_retries_with_a_readable_error(env: Env) -> None:
    port = free_port()  # nothing listens there
    url = f"mailto://alerts:hunter2secret@127.0.0.1:{port}?from=h@example.com&to=o@example.com"
    _, (action_id,) = env.fire(
        [{"type": "send-notification", "url": url}],
        event=run_event(run_of(env.client, deploy(env.client)["id"])),
    )
    now = time.time()
    env.run(now)
    first = env.action(action_id)
    assert (first["state"], first["attempts"]) == ("PENDING", 1), first["error"]
    env.run(now + 6)
    env.run(now + 40)
    row = env.action(action_id)
    assert (row["state"], row["attempts"]) == ("FAILED", 3)
    error = row["error"]
    assert f"Notification not delivered to mailto://127.0.0.1:{port}/…" in error
    assert "Connection error" in error
    assert "gave up after 3 attempts" in error
    assert "hunter2secret" not in error and "alerts" not in error
    (failed,) = env.events()
    assert failed["event"] == "headwater.automation.action.failed"
    assert failed["payload"]["error"] == error


def test_a_bad_apprise_url_fails_at_once_without_showing_its_token(env: Env) -> None:
    _, (bad, refused, missing) = env.fire(
        [
            {"type": "send-notification", "url": "nosuchservice://t0ken-abcdef@host/x"},
            {"type": "send-notification", "url": "json://169.254.169.254/latest"},
            {"type": "send-notification", "secret": "absent"},
        ]
    )
    assert env.run() == 3
    row = env.action(bad)
    assert (row["state"], row["attempts"]) == ("FAILED", 1)
    assert row["error"].startswith("not an apprise URL: nosuchservice://…")
    assert "t0ken" not in row["error"]
    assert "link-local" in env.action(refused)["error"]
    assert "No secret named 'absent'" in env.action(missing)["error"]


def test_a_partly_delivered_notification_is_retried_only_where_it_failed(
    env: Env, mailbox: Mailbox
) -> None:
    down = free_port()
    urls = [mailbox.url(to="a@example.com"), f"json://127.0.0.1:{down}/"]
    _, (action_id,) = env.fire([{"type": "send-notification", "url": urls}])
    now = time.time()
    env.run(now)
    row = env.action(action_id)
    assert row["state"] == "PENDING"
    assert row["result"]["delivered"] == [0]
    env.run(now + 6)
    assert len(mailbox.messages) == 1  # not sent again
