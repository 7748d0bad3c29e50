"""Browser sessions, sign-in and forgery protection (headwater.ui.security), in process.

These check what a browser and the CLI would each see: a keyed server sends browsers to
/login, a session cookie stands in for the API key, state-changing browser requests need
the page's CSRF token and this server's origin, and clients that are not browsers (the
CLI, the SDK, curl) are unaffected.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from headwater.server import create_app
from headwater.settings import Settings
from headwater.ui import mount
from headwater.ui.security import SESSION_COOKIE, new_session, session_keys

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

KEY = "correct-horse-battery-staple"
ORIGIN = "http://testserver"


@pytest.fixture
def keyed(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The UI on a server that requires the API key KEY."""
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    app = mount(create_app(settings, api_key=KEY))
    with TestClient(app, base_url=ORIGIN) as client:
        yield client


def _csrf(client: TestClient) -> str:
    page = client.get("/login").text
    found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page)
    assert found, page
    return found.group(1)


def _sign_in(client: TestClient, key: str = KEY, next_path: str = "/flow-runs") -> object:
    return client.post(
        "/login",
        content=f"api_key={key}&next={next_path}",
        headers={"content-type": "application/x-www-form-urlencoded", "origin": ORIGIN},
        follow_redirects=False,
    )


def test_pages_send_a_browser_without_a_session_to_sign_in(keyed: TestClient) -> None:
    response = keyed.get("/flow-runs?state_type=FAILED", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fflow-runs%3Fstate_type%3DFAILED"
    form = keyed.get("/login?next=/flow-runs").text
    assert 'name="api_key"' in form and 'value="/flow-runs"' in form


def test_a_wrong_key_is_refused_and_sets_no_cookie(keyed: TestClient) -> None:
    response = _sign_in(keyed, key="guess")
    assert response.status_code == 401
    assert "not this server's API key" in response.text
    assert SESSION_COOKIE not in response.cookies
    assert keyed.get("/api/flow_runs").status_code == 401


def test_signing_in_opens_the_api_to_the_browser_until_sign_out(keyed: TestClient) -> None:
    response = _sign_in(keyed)
    assert response.status_code == 303 and response.headers["location"] == "/flow-runs"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=604800" in cookie

    # The cookie stands in for the bearer header: reads work, also for live streams.
    assert keyed.get("/api/flow_runs").status_code == 200
    assert keyed.get("/flow-runs", follow_redirects=False).status_code != 303

    token = _csrf(keyed)
    keyed.post("/logout", headers={"origin": ORIGIN}, follow_redirects=False)
    keyed.cookies.clear()
    assert keyed.get("/api/flow_runs").status_code == 401
    assert token  # the token alone opens nothing
    refused = keyed.post(
        "/api/variables", json={"name": "x", "value": 1}, headers={"x-csrf-token": token}
    )
    assert refused.status_code in (401, 403)


def test_browser_writes_need_the_pages_csrf_token(keyed: TestClient) -> None:
    _sign_in(keyed)
    body = {"name": "threshold", "value": 3}
    missing = keyed.post("/api/variables", json=body, headers={"origin": ORIGIN})
    assert missing.status_code == 403
    assert "X-CSRF-Token" in missing.json()["message"]
    wrong = keyed.post(
        "/api/variables", json=body, headers={"origin": ORIGIN, "x-csrf-token": "0" * 64}
    )
    assert wrong.status_code == 403

    token = _csrf(keyed)
    created = keyed.post(
        "/api/variables", json=body, headers={"origin": ORIGIN, "x-csrf-token": token}
    )
    assert created.status_code == 201, created.text
    # Nothing was written by the refused attempts.
    listed = keyed.get("/api/variables").json()
    items = listed["items"] if isinstance(listed, dict) else listed
    assert [v["name"] for v in items] == ["threshold"]


def test_requests_from_another_origin_are_refused_even_with_the_token(
    keyed: TestClient,
) -> None:
    _sign_in(keyed)
    token = _csrf(keyed)
    response = keyed.post(
        "/api/variables",
        json={"name": "x", "value": 1},
        headers={"origin": "http://evil.example", "x-csrf-token": token},
    )
    assert response.status_code == 403
    assert "http://evil.example" in response.json()["message"]
    fetched = keyed.post(
        "/api/variables",
        json={"name": "x", "value": 1},
        headers={"sec-fetch-site": "cross-site", "x-csrf-token": token},
    )
    assert fetched.status_code == 403


def test_the_cli_with_its_bearer_header_needs_no_token(keyed: TestClient) -> None:
    response = keyed.post(
        "/api/variables",
        json={"name": "from-cli", "value": "yes"},
        headers={"authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 201, response.text


def test_sign_in_only_redirects_to_paths_of_this_server(keyed: TestClient) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = _sign_in(keyed, next_path=target)
        assert response.headers["location"] == "/", target


def test_sessions_end_when_the_key_changes_or_after_a_week(keyed: TestClient) -> None:
    other = session_keys("another-key", fallback=b"")
    keyed.cookies.set(SESSION_COOKIE, new_session(other))
    assert keyed.get("/flow-runs", follow_redirects=False).status_code == 303
    assert keyed.get("/api/flow_runs").status_code == 401

    ours = keyed.app.state.ui_keys  # type: ignore[attr-defined]
    keyed.cookies.set(SESSION_COOKIE, new_session(ours, now=1_000_000_000))
    assert keyed.get("/flow-runs", follow_redirects=False).status_code == 303
    keyed.cookies.set(SESSION_COOKIE, new_session(ours))
    assert keyed.get("/api/flow_runs").status_code == 200


def test_an_open_server_still_refuses_forged_browser_writes(app_client: TestClient) -> None:
    body = {"name": "v", "value": 1}
    evil = app_client.post("/api/variables", json=body, headers={"origin": "http://evil.example"})
    assert evil.status_code == 403
    no_token = app_client.post("/api/variables", json=body, headers={"origin": ORIGIN})
    assert no_token.status_code == 403
    token = app_client.app.state.ui_keys.csrf  # type: ignore[attr-defined]
    ok = app_client.post(
        "/api/variables", json=body, headers={"origin": ORIGIN, "x-csrf-token": token}
    )
    assert ok.status_code == 201, ok.text
    # Not a browser: no Origin, no cookie, no Sec-Fetch-Site.
    assert app_client.post("/api/variables", json={"name": "w", "value": 2}).status_code == 201
    # No sign-in on an open server.
    assert app_client.get("/login", follow_redirects=False).headers["location"] == "/"


def test_webhooks_take_posts_from_anywhere(keyed: TestClient) -> None:
    response = keyed.post("/hooks/no-such-slug", json={}, headers={"origin": "http://x.example"})
    assert response.status_code == 404  # the webhook's own answer, not the guard's 403
    assert "CSRF" not in response.text and "Cross-site" not in response.text


def test_pages_say_how_long_the_server_took(keyed: TestClient) -> None:
    response = keyed.get("/login")
    assert re.fullmatch(r"app;dur=\d+\.\d", response.headers["server-timing"])
    assert "server-timing" not in keyed.get("/api/health").headers


def test_pages_forbid_scripts_they_did_not_write_and_framing(keyed: TestClient) -> None:
    first, second = keyed.get("/login"), keyed.get("/login")
    policy = first.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy)
    assert nonce, policy
    assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    # The page's own inline script carries this response's nonce; the next page gets another.
    assert f'<script type="importmap" nonce="{nonce.group(1)}">' in first.text
    assert nonce.group(1) not in second.headers["content-security-policy"]
    assert first.headers["x-content-type-options"] == "nosniff"
