"""Property-based: requests generated from the OpenAPI document never get a 5xx.

schemathesis generates requests for every operation of /api/openapi.json and
sends them to the app in process (SQLite). Examples are few per operation so
the whole run stays well under a minute; the store starts with a run in it.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from headwater.server import create_app
from headwater.settings import Settings

from .helpers import run_batch

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

# schemathesis reads the document when the module is collected (no database needed
# for that); the fixture below opens the database before the first request.
_HOME = Path(tempfile.mkdtemp(prefix="headwater-fuzz-"))
# Claims (long polls) are held open at most 0.2 s here, whatever `wait` is generated.
_APP = create_app(
    Settings(home=_HOME, database_url=f"sqlite:///{_HOME / 'fuzz.db'}"), claim_max_wait=0.2
)
# The live streams are left out: an endless response would only time out (they have
# their own tests in test_stream.py and tests/events/test_stream.py).
# Automation bodies (a recursive union of triggers) make hypothesis generate thousands of
# rejected examples per accepted one: minutes of CI for little; their validation has its own
# tests (test_automations_api.py).
schema = (
    schemathesis.openapi.from_asgi("/api/openapi.json", _APP)
    .exclude(path_regex=r"^/api/(events/)?stream$")
    .exclude(method=["POST", "PUT"], path_regex=r"^/api/automations(/name/[^/]+|/[^/]+)?$")
)


@pytest.fixture(scope="module", autouse=True)
def _started_app() -> Iterator[None]:
    with TestClient(_APP) as client:
        assert client.post("/api/records", json=run_batch(tasks=2)).status_code == 200
        yield
    shutil.rmtree(_HOME, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error(case: Any) -> None:
    response = case.call()
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )
