"""A server that requires an API key, in a real browser: sign in, work, sign out.

The browser never sees the key after signing in: its session cookie carries the pages'
API calls (reads, the live stream, and writes with the CSRF token).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from tests.server.helpers import running_server

KEY = "ui-test-key-7f3a"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def keyed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("keyed")
    with running_server(
        path / "home", f"sqlite:///{path / 'headwater.db'}", HEADWATER_API_KEY=KEY
    ) as (api_url, _process):
        yield api_url.removesuffix("/api")


def test_sign_in_work_and_sign_out(keyed_url: str, page: Page) -> None:
    page.goto(f"{keyed_url}/variables?name=batch")
    expect(page).to_have_url(f"{keyed_url}/login?next=%2Fvariables%3Fname%3Dbatch")

    page.allowed_errors.append("status of 401")  # the refused sign-in answers 401
    page.get_by_label("API key").fill("not-the-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That is not this server's API key.")

    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{keyed_url}/variables?name=batch")

    # A write from the page: the cookie and the page's CSRF token, no key.
    page.goto(f"{keyed_url}/variables")
    page.get_by_test_id("new-variable").click()
    dialog = page.locator("dialog#variable-new")
    dialog.get_by_label("Name").fill("batch_size")
    dialog.get_by_label("Value (JSON)").fill("500")
    dialog.get_by_role("button", name="Create").click()
    expect(page.locator('tr[data-variable="batch_size"]')).to_contain_text("500")
    answer = httpx.get(
        f"{keyed_url}/api/variables/batch_size", headers={"authorization": f"Bearer {KEY}"}
    )
    assert answer.json()["value"] == 500

    # The live stream of the runs list connects with the cookie too.
    page.goto(f"{keyed_url}/flow-runs")
    expect(page.locator("[data-live-dot]").first).to_have_class("live-dot on")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{keyed_url}/login")
    assert page.request.get(f"{keyed_url}/api/variables").status == 401
    page.goto(f"{keyed_url}/")
    expect(page).to_have_url(f"{keyed_url}/login?next=%2F")


def test_an_injected_inline_script_would_not_run(keyed_url: str, page: Page) -> None:
    """Escaping keeps markup out; should some get through, the page's policy stops it."""
    page.allowed_errors.append("Content Security Policy")
    page.goto(f"{keyed_url}/login")
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "window.injected = true";
            document.body.append(script);
        }"""
    )
    assert page.evaluate("window.injected === undefined")
