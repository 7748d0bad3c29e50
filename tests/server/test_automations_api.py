"""The automations API: create, list, read, replace, upsert by name, pause, delete, firings."""

from __future__ import annotations

import time
import uuid
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.schemas.events import Event
from headwater.server.automations.service import nudge
from headwater.server.database import Database
from headwater.server.repositories.events import insert_events
from headwater.store.tables import automation_action, automation_bucket, automation_firing

from .conftest import MakeClient, TestClient


def body(name: str = "etl-failed", **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "tell someone",
        "trigger": {
            "expect": ["headwater.flow-run.Failed"],
            "match_related": {"headwater.resource.role": "flow", "headwater.resource.name": "etl"},
        },
        "actions": [{"type": "do-nothing"}],
        "tags": ["ops"],
        **changes,
    }


def test_create_read_list_replace_pause_delete(client: TestClient) -> None:
    created = client.post("/automations", json=body())
    assert created.status_code == 201, created.text
    automation = created.json()
    assert automation["enabled"] is True
    assert automation["trigger"]["type"] == "event"  # `type` may be left out
    automation_id = automation["id"]

    assert client.get(f"/automations/{automation_id}").json()["name"] == "etl-failed"
    assert client.get("/automations/name/etl-failed").json()["id"] == automation_id

    client.post("/automations", json=body("other", tags=["dev"], enabled=False))
    names = lambda **q: [a["name"] for a in client.get("/automations", params=q).json()["items"]]  # noqa: E731
    assert names() == ["etl-failed", "other"]
    assert names(name_contains="etl") == ["etl-failed"]
    assert names(enabled=False) == ["other"]
    assert names(tags=["ops"]) == ["etl-failed"]
    page = client.get("/automations", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 2 and [a["name"] for a in page["items"]] == ["other"]

    replaced = client.put(f"/automations/{automation_id}", json=body(description="changed"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["description"] == "changed"
    assert replaced.json()["updated"] > automation["updated"]

    paused = client.patch(f"/automations/{automation_id}", json={"enabled": False})
    assert paused.json()["enabled"] is False
    resumed = client.patch(f"/automations/{automation_id}", json={"enabled": True})
    assert resumed.json()["enabled"] is True

    assert client.delete(f"/automations/{automation_id}").status_code == 204
    missing = client.get(f"/automations/{automation_id}")
    assert missing.status_code == 404
    assert f"No automation with id {automation_id}" in missing.json()["message"]
    assert client.delete(f"/automations/{automation_id}").status_code == 404


def test_a_taken_name_is_409_and_names_the_fix(client: TestClient) -> None:
    client.post("/automations", json=body())
    again = client.post("/automations", json=body())
    assert again.status_code == 409
    assert "'etl-failed' already exists" in again.json()["message"]
    assert "PUT /api/automations/name/etl-failed" in again.json()["message"]

    other = client.post("/automations", json=body("second")).json()
    renamed = client.put(f"/automations/{other['id']}", json=body("etl-failed"))
    assert renamed.status_code == 409


def test_put_by_name_creates_then_replaces(client: TestClient) -> None:
    first = client.put("/automations/name/nightly", json=body("nightly"))
    assert first.status_code == 201, first.text
    second = client.put("/automations/name/nightly", json=body("nightly", description="v2"))
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["description"] == "v2"
    mismatch = client.put("/automations/name/nightly", json=body("other"))
    assert mismatch.status_code == 422
    assert "'other'" in mismatch.json()["message"] and "'nightly'" in mismatch.json()["message"]
    assert client.get("/automations/name/nope").status_code == 404


def test_bad_bodies_are_422_with_the_reason(client: TestClient) -> None:
    no_actions = client.post("/automations", json=body(actions=[]))
    assert no_actions.status_code == 422
    assert "at least one action" in no_actions.text

    proactive = client.post(
        "/automations",
        json=body(trigger={"posture": "Proactive", "expect": ["x"], "within": 0}),
    )
    assert proactive.status_code == 422
    assert "within" in proactive.text

    bad_type = client.post("/automations", json=body(trigger={"type": "cron"}))
    assert bad_type.status_code == 422
    assert "'event', 'metric', 'compound' or 'sequence'" in bad_type.text

    assert client.get("/automations/not-a-uuid").status_code == 422
    assert client.patch(f"/automations/{uuid.uuid4()}", json={"enabled": False}).status_code == 404
    assert client.patch(f"/automations/{uuid.uuid4()}", json={"name": "x"}).status_code == 422


def test_actions_naming_missing_objects_are_refused(client: TestClient) -> None:
    missing = client.post(
        "/automations", json=body(actions=[{"type": "run-deployment", "deployment": "etl/nightly"}])
    )
    assert missing.status_code == 422
    message = missing.json()["message"]
    assert "actions[0] (run-deployment)" in message and "'etl/nightly'" in message
    assert "deploy it first" in message

    unnamed = client.post("/automations", json=body(actions=[{"type": "pause-deployment"}]))
    assert unnamed.status_code == 422
    assert "source: inferred" in unnamed.json()["message"]

    inferred = client.post(
        "/automations", json=body(actions=[{"type": "pause-deployment", "source": "inferred"}])
    )
    assert inferred.status_code == 201, inferred.text

    pool = client.post(
        "/automations",
        json=body("p", actions_on_trigger=[{"type": "pause-work-pool", "work_pool": "nope"}]),
    )
    assert pool.status_code == 422 and "no work pool 'nope'" in pool.json()["message"]

    itself = client.post(
        "/automations",
        json=body("self", actions=[{"type": "pause-automation", "automation": "self"}]),
    )
    assert itself.status_code == 201, itself.text


def test_firings_newest_first_with_actions(client: TestClient, database_url: str) -> None:
    automation_id = uuid.UUID(client.post("/automations", json=body()).json()["id"])
    db = Database(database_url)
    firing_ids = [uuid7(), uuid7()]
    with db.write() as conn:
        for i, firing_id in enumerate(firing_ids):
            conn.execute(
                sa.insert(automation_firing).values(
                    id=firing_id,
                    automation_id=automation_id,
                    trigger_id="0",
                    state="TRIGGERED",
                    bucket_key="[]",
                    triggering_event_id=None,
                    context={"labels": {}, "n": i},
                    occurred=1_700_000_000.0 + i,
                )
            )
            conn.execute(
                sa.insert(automation_action).values(
                    id=uuid7(),
                    firing_id=firing_id,
                    automation_id=automation_id,
                    position=0,
                    action={"type": "do-nothing"},
                    state="FAILED" if i else "COMPLETED",
                    attempts=1,
                    next_attempt=1_700_000_000.0,
                    result=None,
                    error="boom" if i else None,
                    created=1_700_000_000.0,
                    updated=1_700_000_001.0,
                )
            )
        conn.execute(
            sa.insert(automation_bucket).values(
                id=uuid7(),
                automation_id=automation_id,
                trigger_id="0",
                bucket_key="[]",
                start=0.0,
                end=1.0,
                count=1,
                data={},
                updated=0.0,
            )
        )
    firings = client.get(f"/automations/{automation_id}/firings").json()
    assert firings["total"] == 2
    newest = firings["items"][0]
    assert newest["id"] == str(firing_ids[1])
    assert newest["context"]["n"] == 1
    assert [(a["type"], a["state"], a["error"]) for a in newest["actions"]] == [
        ("do-nothing", "FAILED", "boom")
    ]
    assert client.get(f"/automations/{uuid.uuid4()}/firings").status_code == 404

    # Pausing starts the windows over; deleting removes the firings and their actions too.
    client.patch(f"/automations/{automation_id}", json={"enabled": False})
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(automation_bucket)).scalar() == 0
    client.delete(f"/automations/{automation_id}")
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(automation_firing)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(automation_action)).scalar() == 0
    db.dispose()


def test_the_server_with_services_runs_the_automations(
    make_client: MakeClient, database_url: str
) -> None:
    client = make_client(services=True)
    automation_id = client.post("/automations", json=body(trigger={"expect": ["ping"]})).json()[
        "id"
    ]
    db = Database(database_url)
    event = Event.model_validate({"event": "ping", "resource": {"headwater.resource.id": "a.b"}})
    with db.write() as conn:
        insert_events(conn, [event.to_row()])
    nudge()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        items = client.get(f"/automations/{automation_id}/firings").json()["items"]
        if items:
            break
        time.sleep(0.05)
    db.dispose()
    assert len(items) == 1
    assert items[0]["triggering_event_id"] == str(event.id)
    assert items[0]["context"]["event"]["event"] == "ping"
    assert [a["type"] for a in items[0]["actions"]] == ["do-nothing"]
