"""The actions of automation firings: performed once, recorded, retried, taken back after a crash.

Firings and their action rows are inserted as the automations service writes
them; objects (deployments, pools, flow runs) are made through the API; the
actions run through `run_pending_actions` on SQLite and PostgreSQL.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.server.automations.actions import INTERRUPTED, run_pending_actions
from headwater.server.automations.context import template_context
from headwater.server.database import Database
from headwater.settings import Settings
from headwater.store.tables import automation, automation_action, automation_firing, event

from .conftest import MakeClient, TestClient


class Env:
    """An in-process API, the same store as a `Database`, and the executor's settings."""

    def __init__(self, client: TestClient, db: Database, settings: Settings) -> None:
        self.client, self.db, self.settings = client, db, settings

    def run(self, now: float | None = None, **options: Any) -> int:
        return run_pending_actions(
            self.db, time.time() if now is None else now, settings=self.settings, **options
        )

    def fire(
        self,
        actions: list[dict[str, Any]],
        *,
        event: dict[str, Any] | None = None,
        events: list[dict[str, Any]] | None = None,
        name: str = "on-failure",
    ) -> tuple[uuid.UUID, list[uuid.UUID]]:
        """An automation that fired once with these actions; (its id, the action ids)."""
        now = time.time()
        if event is None:
            event = signup("someone@example.com")
        automation_id, firing_id = uuid.uuid4(), uuid.uuid4()
        action_ids = [uuid.uuid4() for _ in actions]
        context = {
            "event": event,
            "events": events if events is not None else ([event] if event else []),
            "automation": {"id": str(automation_id), "name": name, "description": None},
            "firing": {"id": str(firing_id), "occurred": now, "trigger_id": "0", "state": "T"},
            "labels": {},
        }
        with self.db.write() as conn:
            conn.execute(
                sa.insert(automation).values(
                    id=automation_id,
                    name=name,
                    description=None,
                    enabled=True,
                    trigger={"type": "event", "expect": ["x"]},
                    actions=actions,
                    actions_on_trigger=[],
                    actions_on_resolve=[],
                    tags=[],
                    created=now,
                    updated=now,
                )
            )
            conn.execute(
                sa.insert(automation_firing).values(
                    id=firing_id,
                    automation_id=automation_id,
                    trigger_id="0",
                    state="TRIGGERED",
                    bucket_key="",
                    triggering_event_id=None,
                    context=context,
                    occurred=now,
                )
            )
            conn.execute(
                sa.insert(automation_action),
                [
                    {
                        "id": action_id,
                        "firing_id": firing_id,
                        "automation_id": automation_id,
                        "position": position,
                        "action": action,
                        "state": "PENDING",
                        "attempts": 0,
                        "next_attempt": now,
                        "result": None,
                        "error": None,
                        "created": now,
                        "updated": now,
                    }
                    for position, (action_id, action) in enumerate(
                        zip(action_ids, actions, strict=True)
                    )
                ],
            )
        return automation_id, action_ids

    def action(self, action_id: uuid.UUID) -> dict[str, Any]:
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(automation_action).where(automation_action.c.id == action_id)
            ).mappings()
            return dict(row.one())

    def events(self, name_prefix: str = "headwater.automation.action.") -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(event)
                .where(event.c.event.startswith(name_prefix))
                .order_by(event.c.occurred)
            ).mappings()
            return [dict(row) for row in rows]


def make_env(make_client: MakeClient, database_url: str, tmp_path: Path) -> Iterator[Env]:
    """The `env` fixture's body (shared with the other automation action test modules)."""
    client = make_client()
    db = Database(database_url, pool_size=2)
    settings = Settings(
        home=tmp_path / "home",
        database_url=database_url,
        server_ui_url="https://headwater.example.com/",
        server_automations_allowed_hosts="127.0.0.1",
    )
    yield Env(client, db, settings)
    db.dispose()


@pytest.fixture
def env(make_client: MakeClient, database_url: str, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(make_client, database_url, tmp_path)


SCHEMA = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"},
        "emails": {"type": "array", "items": {"type": "string"}},
        "label": {"type": "string"},
    },
    "required": ["count"],
}


def deploy(client: TestClient, name: str = "onboard", **fields: Any) -> dict[str, Any]:
    client.post("/work_pools", json={"name": "etl", "type": "process"})
    body = {
        "name": name,
        "flow_name": "signup",
        "work_pool_name": "etl",
        "parameter_schema": SCHEMA,
        **fields,
    }
    response = client.post("/deployments", json=body)
    assert response.status_code in (200, 201), response.text
    found: dict[str, Any] = response.json()
    return found


def run_of(client: TestClient, deployment_id: str) -> dict[str, Any]:
    response = client.post(
        f"/deployments/{deployment_id}/create_flow_run", json={"parameters": {"count": 1}}
    )
    assert response.status_code == 201, response.text
    found: dict[str, Any] = response.json()
    return found


def run_event(run: dict[str, Any], state: str = "Failed") -> dict[str, Any]:
    """The event a flow run's state change writes, as a firing's context holds it."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": time.time(),
        "event": f"headwater.flow-run.{state}",
        "resource": {
            "headwater.resource.id": f"headwater.flow-run.{run['id']}",
            "headwater.resource.name": run["name"],
        },
        "related": [
            {
                "headwater.resource.id": f"headwater.deployment.{run['deployment_id']}",
                "headwater.resource.role": "deployment",
            }
        ],
        "payload": {},
    }


def signup(email: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": time.time(),
        "event": "customer.signup",
        "resource": {"headwater.resource.id": f"customer.{email}"},
        "related": [],
        "payload": {"email": email},
    }


def runs_of(client: TestClient, deployment_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client.get(
        "/flow_runs", params={"deployment_id": deployment_id}
    ).json()["items"]
    return items


# -- run-deployment --------------------------------------------------------------------------


def test_run_deployment_makes_one_run_with_typed_parameters_even_after_a_crash(env: Env) -> None:
    deployment = deploy(env.client)
    events = [signup(f"user{i}@example.com") for i in range(3)]
    action = {
        "type": "run-deployment",
        "deployment": "signup/onboard",
        "parameters": {
            "count": "{{ events | length }}",
            "emails": "{{ events | map(attribute='payload.email') | list }}",
            "label": "{{ events | length }} signups, first {{ event.payload.email }}",
        },
    }
    _, (action_id,) = env.fire([action], event=events[0], events=events)

    class Crash(BaseException):
        """The server process stops right after the run was created and committed."""

    def crash(_ids: Any) -> None:
        raise Crash

    with pytest.raises(Crash):
        env.run(publish=crash)
    assert env.action(action_id)["state"] == "RUNNING"
    assert len(runs_of(env.client, deployment["id"])) == 1

    woken: list[list[str]] = []
    assert env.run() == 0  # not stale yet: perhaps still running elsewhere
    assert env.run(time.time() + 120, publish=woken.append) == 1

    row = env.action(action_id)
    assert row["state"] == "COMPLETED", row["error"]
    assert row["attempts"] == 2
    runs = runs_of(env.client, deployment["id"])
    assert len(runs) == 1
    assert row["result"]["flow_run_id"] == runs[0]["id"]
    assert runs[0]["parameters"] == {
        "count": 3,
        "emails": ["user0@example.com", "user1@example.com", "user2@example.com"],
        "label": "3 signups, first user0@example.com",
    }
    assert runs[0]["state_type"] == "SCHEDULED"
    (completed,) = env.events()
    assert completed["event"] == "headwater.automation.action.completed"
    assert completed["payload"]["result"]["flow_run_id"] == runs[0]["id"]
    assert completed["related"][0]["headwater.resource.id"] == "customer.user0@example.com"


def test_run_deployment_wakes_workers_and_infers_the_deployment(env: Env) -> None:
    deployment = deploy(env.client)
    failed = run_of(env.client, deployment["id"])
    action = {"type": "run-deployment", "source": "inferred", "parameters": {"count": 7}}
    env.fire([action], event=run_event(failed))
    woken: list[list[str]] = []
    assert env.run(publish=woken.append) == 1
    runs = runs_of(env.client, deployment["id"])
    assert len(runs) == 2
    new = next(run for run in runs if run["id"] != failed["id"])
    assert new["parameters"] == {"count": 7}
    assert woken == [[uuid.UUID(new["id"]).hex]]


def test_run_deployment_fails_at_once_when_the_deployment_or_parameters_are_wrong(
    env: Env,
) -> None:
    deploy(env.client)
    _, (missing, invalid, template) = env.fire(
        [
            {"type": "run-deployment", "deployment": "signup/nope"},
            {"type": "run-deployment", "deployment": "signup/onboard", "parameters": {"x": 1}},
            {
                "type": "run-deployment",
                "deployment": "signup/onboard",
                "parameters": {"count": "{{ event.payload.nope.deeper }}"},
            },
        ],
        event=signup("a@example.com"),
    )
    assert env.run() == 3
    rows = [env.action(action_id) for action_id in (missing, invalid, template)]
    assert [row["state"] for row in rows] == ["FAILED"] * 3
    assert [row["attempts"] for row in rows] == [1, 1, 1]
    assert "No deployment named 'signup/nope'" in rows[0]["error"]
    assert "count" in rows[1]["error"]  # required parameter missing
    assert "failed to render" in rows[2]["error"]
    failed = env.events()
    assert [e["event"] for e in failed] == ["headwater.automation.action.failed"] * 3
    assert failed[0]["payload"]["error"] == rows[0]["error"]
    assert failed[0]["payload"]["action_type"] == "run-deployment"


# -- pause and resume ------------------------------------------------------------------------


def test_pause_and_resume_deployment_work_pool_queue_and_automation(env: Env) -> None:
    deployment = deploy(env.client)
    env.client.post("/work_pools/etl/queues", json={"name": "urgent"})
    other_id, _ = env.fire([{"type": "do-nothing"}], name="other")
    _, ids = env.fire(
        [
            {"type": "pause-deployment", "deployment_id": deployment["id"]},
            {"type": "pause-work-pool", "work_pool": "etl"},
            {"type": "pause-work-queue", "work_pool": "etl", "work_queue": "urgent"},
            {"type": "pause-automation", "automation": "other"},
        ]
    )
    assert env.run() == 5  # the other automation's do-nothing too
    assert all(env.action(i)["state"] == "COMPLETED" for i in ids)
    assert env.client.get(f"/deployments/{deployment['id']}").json()["paused"] is True
    assert env.client.get("/work_pools/etl").json()["paused"] is True
    assert env.client.get("/work_pools/etl/queues/urgent").json()["paused"] is True
    with env.db.read() as conn:
        enabled = conn.execute(sa.select(automation.c.enabled).where(automation.c.id == other_id))
        assert enabled.scalar() is False

    env.fire(
        [
            {"type": "resume-deployment", "deployment": "signup/onboard"},
            {"type": "resume-work-pool", "source": "inferred"},
            {"type": "resume-work-queue", "work_pool": "etl", "work_queue": "urgent"},
            {"type": "resume-automation", "automation_id": str(other_id)},
        ],
        event=run_event(run_of(env.client, deployment["id"])),
        name="resumer",
    )
    assert env.run() == 4
    assert env.client.get(f"/deployments/{deployment['id']}").json()["paused"] is False
    assert env.client.get("/work_pools/etl").json()["paused"] is False
    assert env.client.get("/work_pools/etl/queues/urgent").json()["paused"] is False
    with env.db.read() as conn:
        enabled = conn.execute(sa.select(automation.c.enabled).where(automation.c.id == other_id))
        assert enabled.scalar() is True


def test_an_action_waits_for_the_one_before_it(env: Env) -> None:
    _, (first, second) = env.fire(
        [
            {"type": "call-webhook", "url": "http://127.0.0.1:9/unreachable", "timeout": 1},
            {"type": "do-nothing"},
        ]
    )
    now = time.time()
    assert env.run(now) == 1  # the webhook fails transiently; do-nothing waits for its retry
    assert env.action(first)["state"] == "PENDING"
    assert env.action(second)["state"] == "PENDING"
    assert env.run(now + 6) == 1
    assert env.run(now + 60) == 2
    assert env.action(first)["state"] == "FAILED"
    assert "gave up after 3 attempts" in env.action(first)["error"]
    assert env.action(second)["state"] == "COMPLETED"


# -- flow runs -------------------------------------------------------------------------------


def _state(client: TestClient, run_id: str) -> tuple[str, str, str | None]:
    run = client.get(f"/flow_runs/{run_id}").json()
    return run["state_type"], run["state_name"], run["state_message"]


def test_cancel_suspend_resume_and_change_the_state_of_the_event_flow_run(env: Env) -> None:
    deployment = deploy(env.client)
    cancelled, suspended, changed = (run_of(env.client, deployment["id"]) for _ in range(3))
    env.fire([{"type": "cancel-flow-run"}], event=run_event(cancelled, "Late"), name="a")
    env.fire([{"type": "suspend-flow-run"}], event=run_event(suspended, "Late"), name="b")
    env.fire(
        [
            {
                "type": "change-flow-run-state",
                "state": "FAILED",
                "name": "TimedOut",
                "message": "{{ flow_run.name }} was late for {{ automation.name }}",
            }
        ],
        event=run_event(changed, "Late"),
        name="c",
    )
    assert env.run() == 3
    assert _state(env.client, cancelled["id"])[:2] == ("CANCELLED", "Cancelled")
    assert _state(env.client, suspended["id"])[:2] == ("PAUSED", "Suspended")
    assert _state(env.client, changed["id"]) == (
        "FAILED",
        "TimedOut",
        f"{changed['name']} was late for c",
    )

    _, (resume_id,) = env.fire(
        [{"type": "resume-flow-run"}], event=run_event(suspended, "Suspended"), name="d"
    )
    assert env.run() == 1
    assert env.action(resume_id)["result"]["state_type"] == "SCHEDULED"
    assert _state(env.client, suspended["id"])[0] == "SCHEDULED"

    _, (again,) = env.fire([{"type": "cancel-flow-run"}], event=run_event(cancelled), name="e")
    env.run()
    assert env.action(again)["state"] == "FAILED"
    assert "already CANCELLED" in env.action(again)["error"]


def test_a_running_flow_run_is_not_suspended_from_outside(env: Env) -> None:
    deployment = deploy(env.client)
    running = run_of(env.client, deployment["id"])
    env.client.post(f"/flow_runs/{running['id']}/set_state", json={"type": "RUNNING"})

    _, (action_id,) = env.fire(
        [{"type": "suspend-flow-run"}], event=run_event(running, "Running"), name="s"
    )
    env.run()

    action = env.action(action_id)
    assert action["state"] == "FAILED"
    assert "suspend_flow_run()" in action["error"]
    assert "cancel-flow-run" in action["error"]
    assert _state(env.client, running["id"])[0] == "RUNNING"


def test_a_flow_run_action_without_a_flow_run_in_the_event_fails_clearly(env: Env) -> None:
    _, (action_id,) = env.fire([{"type": "cancel-flow-run"}], event=signup("x@example.com"))
    env.run()
    row = env.action(action_id)
    assert row["state"] == "FAILED"
    assert "customer.signup on customer.x@example.com" in row["error"]
    assert "names no flow run" in row["error"]


# -- templates -------------------------------------------------------------------------------


def test_template_context_has_the_flow_run_flow_deployment_and_pool(env: Env) -> None:
    deployment = deploy(env.client)
    run = run_of(env.client, deployment["id"])
    with env.db.read() as conn:
        context = template_context(conn, {"event": run_event(run)}, env.settings)
    assert context["flow_run"]["name"] == run["name"]
    assert context["flow_run"]["parameters"] == {"count": 1}
    assert context["flow_run"]["state_type"] == "SCHEDULED"
    assert context["flow_run"]["url"] == f"https://headwater.example.com/flow-runs/{run['id']}"
    assert context["flow"]["name"] == "signup"
    assert context["deployment"]["name"] == "onboard"
    assert context["deployment"]["url"].endswith(f"/deployments/{deployment['id']}")
    assert context["work_pool"]["name"] == "etl"
    assert context["event"]["event"] == "headwater.flow-run.Failed"


# -- call-webhook ----------------------------------------------------------------------------


class Receiver:
    """A real HTTP server in a thread; answers with `status` and records each request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length).decode(),
                    }
                )
                self.send_response(receiver.status)
                for key, value in receiver.headers.items():
                    self.send_header(key, value)
                body = b"ok " * 1000
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_call_webhook_sends_the_rendered_payload_to_a_real_server(
    env: Env, receiver: Receiver
) -> None:
    deployment = deploy(env.client)
    run = run_of(env.client, deployment["id"])
    _, (action_id,) = env.fire(
        [
            {
                "type": "call-webhook",
                "url": f"http://127.0.0.1:{receiver.port}/hook/{{{{ flow.name }}}}",
                "headers": {"X-Run": "{{ flow_run.name }}"},
                "payload": '{"run": {{ flow_run.name | tojson }}, "url": "{{ flow_run.url }}"}',
            }
        ],
        event=run_event(run),
    )
    assert env.run() == 1
    row = env.action(action_id)
    assert row["state"] == "COMPLETED", row["error"]
    (request,) = receiver.requests
    assert request["path"] == "/hook/signup"
    assert json.loads(request["body"]) == {
        "run": run["name"],
        "url": f"https://headwater.example.com/flow-runs/{run['id']}",
    }
    assert request["headers"]["X-Run"] == run["name"]
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["headers"]["Headwater-Action-Id"] == str(action_id)
    assert row["result"]["status_code"] == 200
    assert len(row["result"]["body"]) == 1024


def test_call_webhook_retries_a_5xx_and_never_follows_a_redirect(
    env: Env, receiver: Receiver
) -> None:
    receiver.status = 503
    _, (action_id,) = env.fire(
        [{"type": "call-webhook", "url": f"http://127.0.0.1:{receiver.port}/a"}]
    )
    now = time.time()
    env.run(now)
    row = env.action(action_id)
    assert (row["state"], row["attempts"]) == ("PENDING", 1)
    assert "answered 503" in row["error"] and "trying again in 5 s" in row["error"]
    receiver.status, receiver.headers = 302, {"Location": "http://169.254.169.254/latest"}
    env.run(now + 6)
    row = env.action(action_id)
    assert row["state"] == "FAILED"
    assert "redirects are not followed" in row["error"]
    assert len(receiver.requests) == 2  # the redirect's target was never asked


def test_call_webhook_refuses_loopback_unless_allowed(env: Env, receiver: Receiver) -> None:
    env.settings = Settings(
        home=env.settings.home, database_url=env.settings.database_url
    )  # nothing allowed
    _, ids = env.fire(
        [
            {"type": "call-webhook", "url": f"http://127.0.0.1:{receiver.port}/"},
            {"type": "call-webhook", "url": f"http://localhost:{receiver.port}/"},
            {"type": "call-webhook", "url": "http://169.254.169.254/latest/meta-data/"},
            {"type": "call-webhook", "url": "file:///etc/passwd"},
        ]
    )
    assert env.run() == 4
    errors = [env.action(i)["error"] for i in ids]
    assert all(env.action(i)["state"] == "FAILED" for i in ids)
    assert "loopback" in errors[0] and "HEADWATER_SERVER_AUTOMATIONS_ALLOWED_HOSTS" in errors[0]
    assert "localhost" in errors[1] and "loopback" in errors[1]
    assert "link-local" in errors[2]
    assert "only http and https" in errors[3]
    assert receiver.requests == []


def test_an_interrupted_webhook_is_not_sent_again(env: Env, receiver: Receiver) -> None:
    _, (action_id,) = env.fire(
        [{"type": "call-webhook", "url": f"http://127.0.0.1:{receiver.port}/"}]
    )
    now = time.time()
    with env.db.write() as conn:  # a process took it, then stopped while sending
        conn.execute(
            sa.update(automation_action)
            .where(automation_action.c.id == action_id)
            .values(state="RUNNING", attempts=1, updated=now)
        )
    assert env.run(now + 120) == 0
    row = env.action(action_id)
    assert (row["state"], row["error"]) == ("FAILED", INTERRUPTED)
    assert receiver.requests == []
    (failed,) = env.events()
    assert failed["payload"]["error"] == INTERRUPTED
