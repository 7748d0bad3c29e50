"""UI fixtures: a real server with real runs, Debian's Chromium driven by Playwright, and
the app in process for the server-side checks.

- `ui` (one per test module): `headwater server start` on a fresh SQLite store, with
  services, a process work pool `etl` and the e2e project of flows (`tests.e2e.conftest`).
  `ui.url` is the UI's address, `ui.stack` the e2e `Stack` (deploy, run, workers...).
  `ui.python(code)` runs a script against the server, so tests make real runs.
- `page`: a fresh browser page; the test fails if the page logged a console error or
  raised an uncaught exception (list expected ones in `page.allowed_errors`).
- `app_client`: the API with the UI mounted, in process, on each database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import Stack, _stack

from headwater.server import create_app
from headwater.settings import Settings
from headwater.ui import mount

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CHROMIUM = "/usr/bin/chromium"


class Ui:
    """A running server for browser tests."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.url = stack.api_url.removesuffix("/api")
        self.api = stack.request

    def find(self, path: str) -> dict[str, Any] | None:
        """The API's answer to GET `path` (under /api), or None if it is a 404."""
        response = self.stack.http.get(path)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def python(self, code: str, *, timeout: float = 60, check: bool = True) -> str:
        """Run `code` in a new Python process pointed at the server; returns its output."""
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=self.stack.env,
            cwd=self.stack.project,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"script failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result.stdout


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    """A server with services on a fresh SQLite store, shared by the tests of a module."""
    path = tmp_path_factory.mktemp("ui")
    with _stack(f"sqlite:///{path / 'headwater.db'}", path) as stack:
        yield Ui(stack)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, for the whole session (one per xdist worker)."""
    if not os.path.exists(CHROMIUM):
        message = f"the UI's browser tests need Chromium at {CHROMIUM}: run 'make browser'"
        if os.environ.get("HEADWATER_TEST_REQUIRE_BROWSER"):
            pytest.fail(message)  # CI installs it: missing there is a failure, not a skip
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context; console errors and page errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.allowed_errors = []  # substrings of errors a test expects
    page.on(
        "console",
        lambda message: (
            errors.append(f"console: {message.text} at {message.location}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    yield page
    context.close()
    unexpected = [e for e in errors if not any(a in e for a in page.allowed_errors)]
    assert not unexpected, "the page logged errors:\n" + "\n".join(unexpected)


@pytest.fixture
def app_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The API with the UI mounted, in process, on a fresh store of each database."""
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    with TestClient(mount(create_app(settings)), base_url="http://testserver") as client:
        yield client
