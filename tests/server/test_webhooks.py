"""Webhooks: managed under /api/webhooks; `POST /hooks/<slug>` turns a request into an
event through the webhook's sandboxed template, optionally signed with HMAC."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from headwater.server.database import Database
from headwater.store import tables

from .conftest import MakeClient, TestClient
from .helpers import listen_to_every_event

HOOKS = "http://testserver"
SECRET = "whsec-7f3a9c1e-do-not-leak"

#: A template using every part of the request.
TEMPLATE = """{
  "event": "shop.{{ body.kind }}",
  "resource": {
    "headwater.resource.id": "shop.customer.{{ body.customer.id }}",
    "headwater.resource.name": "{{ body.customer.name }}"
  },
  "related": [{"headwater.resource.id": "shop.region.{{ query.region }}",
               "headwater.resource.role": "region"}],
  "payload": {
    "method": "{{ method }}",
    "agent": "{{ headers['user-agent'] }}",
    "tags": {{ query.tag | tojson }},
    "items": {{ body['items'] | tojson }},
    "hook": "{{ webhook.name }}",
    "year": {{ now.year }}
  }
}"""

#: The simplest useful template: the event's name from the body, the rest fixed.
SIMPLE = (
    '{"event": "ping.{{ body.name }}", "resource": {"headwater.resource.id": "pinger"}, '
    '"payload": {"body": {{ body | tojson }}, "raw": {{ raw_body | tojson }}}}'
)


def create(client: TestClient, name: str = "shop", **fields: Any) -> dict[str, Any]:
    fields.setdefault("template", SIMPLE)
    answer = client.post("/webhooks", json={"name": name, **fields})
    assert answer.status_code == 201, answer.text
    item: dict[str, Any] = answer.json()
    return item


def hook(client: TestClient, url: str, **options: Any) -> Any:
    options.setdefault("json", {"name": "a"})
    return client.post(HOOKS + url, **options)


def events(database_url: str) -> list[dict[str, Any]]:
    database = Database(database_url)
    try:
        with database.read() as conn:
            rows = conn.execute(sa.select(tables.event).order_by(tables.event.c.received))
            return [dict(row._mapping) for row in rows]
    finally:
        database.dispose()


def inbox(database_url: str) -> set[uuid.UUID]:
    database = Database(database_url)
    try:
        with database.read() as conn:
            return set(conn.execute(sa.select(tables.event_inbox.c.event_id)).scalars())
    finally:
        database.dispose()


def signature(secret: str, body: bytes, timestamp: str | None = None) -> str:
    """Computed here independently of the server's code, as a sender would."""
    message = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


# -- managing webhooks -----------------------------------------------------------------------


def test_create_list_read_update_rotate_delete(client: TestClient) -> None:
    created = create(client, "github-push", description="Pushes to main", template=TEMPLATE)
    assert created["name"] == "github-push"
    assert created["description"] == "Pushes to main"
    assert created["enabled"] is True and created["signed"] is False
    assert created["signing_secret"] is None
    assert len(created["slug"]) >= 40
    assert created["url"] == "/hooks/" + created["slug"]
    create(client, "alerts")
    create(client, "zebra")

    listed = client.get("/webhooks", params={"limit": 2})
    assert listed.status_code == 200
    assert [item["name"] for item in listed.json()["items"]] == ["alerts", "github-push"]
    assert listed.json()["total"] == 3
    named = client.get("/webhooks", params={"name_contains": "push"}).json()
    assert [item["name"] for item in named["items"]] == ["github-push"]

    by_id = client.get(f"/webhooks/{created['id']}").json()
    by_name = client.get("/webhooks/name/github-push").json()
    assert by_id == by_name
    assert by_id["template"] == TEMPLATE

    changed = client.patch(
        f"/webhooks/{created['id']}",
        json={"description": None, "enabled": False, "template": SIMPLE},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["description"] is None
    assert changed.json()["enabled"] is False
    assert changed.json()["template"] == SIMPLE
    assert changed.json()["slug"] == created["slug"]

    rotated = client.post(f"/webhooks/{created['id']}/rotate")
    assert rotated.status_code == 200
    assert rotated.json()["slug"] != created["slug"]
    assert rotated.json()["url"] == "/hooks/" + rotated.json()["slug"]
    assert client.get(f"/webhooks/{created['id']}").json()["slug"] == rotated.json()["slug"]

    assert client.delete(f"/webhooks/{created['id']}").status_code == 204
    gone = client.get(f"/webhooks/{created['id']}")
    assert gone.status_code == 404
    assert str(created["id"]) in gone.json()["message"]
    missing = client.get("/webhooks/name/github-push")
    assert missing.status_code == 404
    assert "No webhook named 'github-push'" in missing.json()["message"]
    assert client.delete(f"/webhooks/{created['id']}").status_code == 404
    assert client.post(f"/webhooks/{created['id']}/rotate").status_code == 404


def test_bad_management_requests_name_the_problem(client: TestClient) -> None:
    create(client, "taken")
    again = client.post("/webhooks", json={"name": "taken", "template": SIMPLE})
    assert again.status_code == 409
    assert "'taken' already exists" in again.json()["message"]
    bad_name = client.post("/webhooks", json={"name": "Bad Name", "template": SIMPLE})
    assert bad_name.status_code == 422
    assert "lowercase letters" in bad_name.json()["message"]
    both = client.post(
        "/webhooks",
        json={
            "name": "both",
            "template": SIMPLE,
            "signing_secret": SECRET,
            "generate_signing_secret": True,
        },
    )
    assert both.status_code == 422
    assert "not both" in both.json()["message"]
    assert SECRET not in both.text
    short = client.post(
        "/webhooks", json={"name": "short", "template": SIMPLE, "signing_secret": "abc"}
    )
    assert short.status_code == 422
    assert "signing_secret" in short.json()["message"]
    assert client.get("/webhooks/not-a-uuid").status_code == 422


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ('{"event": "x", "resource": {{ body | nosuchfilter }}}', "nosuchfilter"),
        ('{"event": "x" {% if %}', "does not parse"),
        ("{{ ''.__class__ }}", "not allowed"),
        ('{"event": "{{ body.__class__.__mro__ }}", "resource": {}}', "not allowed"),
        ("just text", "did not render JSON"),
        ('["event", "resource"]', "JSON object"),
        ('{"resource": {"headwater.resource.id": "a"}}', "event: Field required"),
        ('{"event": "a", "resource": {"headwater.resource.id": "a"}, "payloads": {}}', "payloads"),
    ],
)
def test_template_errors_at_create_are_422(client: TestClient, template: str, problem: str) -> None:
    answer = client.post("/webhooks", json={"name": "bad", "template": template})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["body", "template"]
    assert problem in answer.json()["message"], answer.json()["message"]
    assert client.get("/webhooks").json()["total"] == 0

    item = create(client, "good")
    changed = client.patch(f"/webhooks/{item['id']}", json={"template": template})
    assert changed.status_code == 422
    assert problem in changed.json()["message"]
    assert client.get(f"/webhooks/{item['id']}").json()["template"] == SIMPLE


def test_templates_that_use_request_values_pass_the_create_check(client: TestClient) -> None:
    template = (
        '{"id": "{{ headers["x-github-delivery"] }}", '
        '"event": "github.{{ headers["x-github-event"] }}", '
        '"resource": {"headwater.resource.id": "github.repo.{{ body.repository.full_name }}"}, '
        '"payload": {"commits": {{ body.commits | length }}, '
        '"first": {{ (body.commits | first or {}).get("id", "") | tojson }}, '
        '"count": {{ body.count | int + 1 }}, '
        '"heads": [{% for c in body.commits %}"{{ c.id }}"{% if not loop.last %},'
        "{% endif %}{% endfor %}]}}"
    )
    created = client.post("/webhooks", json={"name": "github", "template": template})
    assert created.status_code == 201, created.text


# -- receiving requests ----------------------------------------------------------------------


def test_post_stores_the_rendered_event_in_the_store_and_inbox(
    client: TestClient, database_url: str
) -> None:
    listen_to_every_event(client)
    item = create(client, "shop", template=TEMPLATE)
    body = {"kind": "signup", "customer": {"id": 42, "name": "Ada"}, "items": [1, "two"]}
    answer = client.post(
        HOOKS + item["url"],
        params=[("region", "eu"), ("tag", "a"), ("tag", "b")],
        json=body,
        headers={"User-Agent": "shop-backend/1.0"},
    )
    assert answer.status_code == 202, answer.text
    event_id = uuid.UUID(answer.json()["event_id"])
    assert answer.json()["event"] == "shop.signup"

    (row,) = events(database_url)
    assert row["id"] == event_id
    assert row["event"] == "shop.signup"
    assert row["resource_id"] == "shop.customer.42"
    assert row["resource"] == {
        "headwater.resource.id": "shop.customer.42",
        "headwater.resource.name": "Ada",
    }
    assert row["related"] == [
        {"headwater.resource.id": "shop.region.eu", "headwater.resource.role": "region"},
        {
            "headwater.resource.id": f"headwater.webhook.{item['id']}",
            "headwater.resource.role": "webhook",
            "headwater.resource.name": "shop",
        },
    ]
    assert row["payload"] == {
        "method": "POST",
        "agent": "shop-backend/1.0",
        "tags": ["a", "b"],
        "items": [1, "two"],
        "hook": "shop",
        "year": time.gmtime().tm_year,
    }
    assert abs(row["received"] - time.time()) < 30
    assert abs(row["occurred"] - row["received"]) < 5
    assert inbox(database_url) == {event_id}

    put = client.put(HOOKS + item["url"], json=body)
    assert put.status_code == 202
    assert len(events(database_url)) == 2


def test_form_text_and_json_bodies_in_the_context(client: TestClient, database_url: str) -> None:
    item = create(client, "ping")
    form = hook(client, item["url"], json=None, data={"name": "form", "x": "1"})
    assert form.status_code == 202, form.text
    text = client.post(
        HOOKS + item["url"], content=b"hello there", headers={"Content-Type": "text/plain"}
    )
    assert text.status_code == 202, text.text
    vendor = client.post(
        HOOKS + item["url"],
        content=b'{"name": "vendor"}',
        headers={"Content-Type": "application/vnd.api+json; charset=utf-8"},
    )
    assert vendor.status_code == 202, vendor.text

    stored = events(database_url)
    assert [row["event"] for row in stored] == ["ping.form", "ping.", "ping.vendor"]
    assert stored[0]["payload"] == {"body": {"name": "form", "x": "1"}, "raw": "name=form&x=1"}
    assert stored[1]["payload"] == {"body": "hello there", "raw": "hello there"}
    assert stored[2]["payload"]["body"] == {"name": "vendor"}


def test_unknown_disabled_rotated_deleted_and_malformed_slugs_get_the_same_404(
    client: TestClient, database_url: str
) -> None:
    disabled = create(client, "off", enabled=False)
    rotated = create(client, "rotated")
    client.post(f"/webhooks/{rotated['id']}/rotate")
    deleted = create(client, "deleted")
    client.delete(f"/webhooks/{deleted['id']}")
    live = create(client, "live")

    answers = [
        hook(client, disabled["url"]),
        hook(client, rotated["url"]),
        hook(client, deleted["url"]),
        hook(client, "/hooks/" + "A" * 43),
        hook(client, "/hooks/not%20a%20slug%00"),
        hook(client, "/hooks/" + "x" * 500),
    ]
    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert {answer.text for answer in answers} == {answers[0].text}
    assert "No webhook at this address" in answers[0].json()["message"]
    assert {answer.headers["content-length"] for answer in answers} == {
        answers[0].headers["content-length"]
    }
    assert events(database_url) == []

    # GET is not a way to send events, for any slug (crawlers and link previews use it).
    assert client.get(HOOKS + live["url"]).status_code == 405
    assert client.get(HOOKS + "/hooks/" + "A" * 43).status_code == 405
    assert hook(client, live["url"]).status_code == 202
    enabled = client.patch(f"/webhooks/{disabled['id']}", json={"enabled": True})
    assert enabled.status_code == 200
    assert hook(client, disabled["url"]).status_code == 202


def test_request_and_template_problems_are_400_naming_them(
    client: TestClient, database_url: str
) -> None:
    item = create(
        client,
        "strict",
        template=(
            '{"event": "n.{{ body.count + 1 }}", '
            '"resource": {"headwater.resource.id": "{{ body.id }}"}, '
            '"payload": {"v": {{ body.value }}}}'
        ),
    )
    failing = hook(client, item["url"], json={"count": "abc", "id": "r", "value": 1})
    assert failing.status_code == 400
    assert "failed to render" in failing.json()["message"]
    assert "TypeError" in failing.json()["message"]

    not_json = hook(client, item["url"], json={"count": 1, "id": "r", "value": "x y"})
    assert not_json.status_code == 400
    assert "did not render JSON" in not_json.json()["message"]

    no_id = hook(client, item["url"], json={"count": 1, "id": "", "value": 1})
    assert no_id.status_code == 400
    assert "invalid event" in no_id.json()["message"]
    assert "headwater.resource.id" in no_id.json()["message"]

    bad_body = client.post(
        HOOKS + item["url"], content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert bad_body.status_code == 400
    assert "not valid JSON" in bad_body.json()["message"]

    assert events(database_url) == []
    ok = hook(client, item["url"], json={"count": 1, "id": "r", "value": 1})
    assert ok.status_code == 202, ok.text
    assert [row["event"] for row in events(database_url)] == ["n.2"]


def test_an_event_id_from_the_request_makes_retries_count_once(
    client: TestClient, database_url: str
) -> None:
    listen_to_every_event(client)
    item = create(
        client,
        "deliveries",
        template=(
            '{"id": "{{ headers["x-delivery"] }}", "event": "delivered", '
            '"resource": {"headwater.resource.id": "sender"}}'
        ),
    )
    delivery = str(uuid.uuid4())
    for _ in range(2):
        answer = hook(client, item["url"], headers={"X-Delivery": delivery})
        assert answer.status_code == 202
        assert answer.json()["event_id"] == delivery
    assert [str(row["id"]) for row in events(database_url)] == [delivery]
    assert inbox(database_url) == {uuid.UUID(delivery)}


def test_the_request_body_limit_applies(make_client: MakeClient, database_url: str) -> None:
    client = make_client(request_max_bytes=2000)
    item = create(client, "small")
    big = hook(client, item["url"], json={"name": "x" * 5000})
    assert big.status_code == 413
    assert "2000 bytes" in big.json()["message"]
    assert events(database_url) == []


# -- signatures ------------------------------------------------------------------------------


def test_signed_webhooks_need_a_valid_signature(client: TestClient, database_url: str) -> None:
    item = create(client, "signed", signing_secret=SECRET)
    assert item["signed"] is True
    assert item["signing_secret"] is None  # given by the user: not echoed
    url = HOOKS + item["url"]
    body = json.dumps({"name": "a"}).encode()
    json_type = {"Content-Type": "application/json"}

    def post(headers: dict[str, str], content: bytes = body) -> Any:
        return client.post(url, content=content, headers={**json_type, **headers})

    good = post({"X-Headwater-Signature": signature(SECRET, body)})
    assert good.status_code == 202, good.text
    github = post({"X-Hub-Signature-256": signature(SECRET, body)})
    assert github.status_code == 202, github.text
    now = str(int(time.time()))
    stamped = post(
        {"X-Headwater-Signature": signature(SECRET, body, now), "X-Headwater-Timestamp": now}
    )
    assert stamped.status_code == 202, stamped.text

    missing = post({})
    assert missing.status_code == 401
    assert "requires signed requests" in missing.json()["message"]
    wrong_key = post({"X-Headwater-Signature": signature("another-secret", body)})
    assert wrong_key.status_code == 401
    assert "does not match" in wrong_key.json()["message"]
    tampered = post({"X-Headwater-Signature": signature(SECRET, body)}, content=b'{"name": "b"}')
    assert tampered.status_code == 401
    unstamped_signature = post(
        {"X-Headwater-Signature": signature(SECRET, body), "X-Headwater-Timestamp": now}
    )
    assert unstamped_signature.status_code == 401
    assert "<timestamp>.<body>" in unstamped_signature.json()["message"]
    old = str(int(time.time()) - 600)
    stale = post(
        {"X-Headwater-Signature": signature(SECRET, body, old), "X-Headwater-Timestamp": old}
    )
    assert stale.status_code == 401
    assert "300 s" in stale.json()["message"]
    garbage = post({"X-Headwater-Signature": signature(SECRET, body), "X-Headwater-Timestamp": "x"})
    assert garbage.status_code == 401
    assert "epoch seconds" in garbage.json()["message"]

    assert len(events(database_url)) == 3
    for answer in (missing, wrong_key, tampered, stale, garbage):
        assert SECRET not in answer.text

    # Removing the secret makes unsigned requests welcome again.
    unsigned = client.patch(f"/webhooks/{item['id']}", json={"signing_secret": None})
    assert unsigned.json()["signed"] is False
    assert post({}).status_code == 202


def test_a_generated_secret_is_shown_once_and_signs_requests(client: TestClient) -> None:
    created = client.post(
        "/webhooks", json={"name": "gen", "template": SIMPLE, "generate_signing_secret": True}
    )
    assert created.status_code == 201
    secret = created.json()["signing_secret"]
    assert isinstance(secret, str) and len(secret) >= 40
    assert created.json()["signed"] is True
    item = created.json()
    assert secret not in client.get(f"/webhooks/{item['id']}").text
    assert secret not in client.get("/webhooks").text
    body = b'{"name": "g"}'
    headers = {"Content-Type": "application/json"}
    url = HOOKS + item["url"]
    signed = client.post(
        url, content=body, headers={**headers, "X-Headwater-Signature": signature(secret, body)}
    )
    assert signed.status_code == 202

    # A new generated secret replaces the old one at once.
    regenerated = client.patch(f"/webhooks/{item['id']}", json={"generate_signing_secret": True})
    new_secret = regenerated.json()["signing_secret"]
    assert new_secret and new_secret != secret
    old = client.post(
        url, content=body, headers={**headers, "X-Headwater-Signature": signature(secret, body)}
    )
    assert old.status_code == 401
    new = client.post(
        url,
        content=body,
        headers={**headers, "X-Headwater-Signature": signature(new_secret, body)},
    )
    assert new.status_code == 202


def test_the_signing_secret_is_never_shown_nor_stored_in_clear(
    client: TestClient, database_url: str
) -> None:
    item = create(client, "quiet", signing_secret=SECRET)
    answers = [
        client.get("/webhooks"),
        client.get(f"/webhooks/{item['id']}"),
        client.get("/webhooks/name/quiet"),
        client.patch(f"/webhooks/{item['id']}", json={"description": "d"}),
        client.post(f"/webhooks/{item['id']}/rotate"),
        client.patch(f"/webhooks/{item['id']}", json={"signing_secret": SECRET + "-2"}),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert SECRET not in answer.text
        assert answer.json().get("signing_secret") is None

    database = Database(database_url)
    try:
        with database.read() as conn:
            (row,) = conn.execute(sa.select(tables.webhook)).mappings()
    finally:
        database.dispose()
    assert SECRET not in str(dict(row))
    assert row["signing_secret"] and row["signing_key_id"]


def test_the_documented_templates_work(client: TestClient, database_url: str) -> None:
    document = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    github, form = re.findall(r"```jinja\n(.*?)```", document, re.DOTALL)
    orders = re.search(r"--template '(.*?)'\n", document, re.DOTALL)
    assert orders is not None
    delivery = str(uuid.uuid4())

    url = HOOKS + create(client, "github", template=github)["url"]
    push = {
        "ref": "refs/heads/main",
        "after": "abc123",
        "repository": {"full_name": "acme/etl"},
        "pusher": {"name": "ada"},
        "commits": [{"id": "a"}, {"id": "b"}],
    }
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery}
    assert client.post(url, json=push, headers=headers).status_code == 202
    ping = client.post(
        url,
        json={"zen": "Keep it simple.", "repository": {"full_name": "acme/etl"}},
        headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4())},
    )
    assert ping.status_code == 202, ping.text
    url = HOOKS + create(client, "orders", template=orders.group(1))["url"]
    assert client.post(url, json={"id": 42, "status": "paid", "total": 9.5}).status_code == 202
    url = HOOKS + create(client, "signups", template=form)["url"]
    signup = client.post(url + "?utm_source=blog", data={"email": "ada@example.com"})
    assert signup.status_code == 202, signup.text

    stored = {row["event"]: row for row in events(database_url)}
    assert stored["github.push"]["id"] == uuid.UUID(delivery)
    assert stored["github.push"]["resource"]["ref"] == "refs/heads/main"
    assert stored["github.push"]["payload"] == {"after": "abc123", "pusher": "ada", "commits": 2}
    assert stored["github.ping"]["resource_id"] == "github.repository.acme/etl"
    assert stored["order.paid"]["resource_id"] == "shop.order.42"
    assert stored["order.paid"]["payload"]["total"] == 9.5
    assert stored["signup.requested"]["payload"] == {
        "email": "ada@example.com",
        "plan": "free",
        "source": "blog",
    }
