"""Transient failures are retried with backoff; refused batches are kept, not retried forever."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from tests.client.conftest import RETRY_SECONDS, backend_for, make_batch, wait_until
from tests.client.fake_server import Answer, FakeServer

from headwater.client._transport import BACKOFF_BASE, BACKOFF_CAP, Sender


def test_503_is_retried_until_the_server_answers(server: FakeServer, home: Path) -> None:
    server.script.extend([Answer(503), Answer(503)])
    backend = backend_for(server.api_url, home, retry_seconds=10)
    try:
        backend.write(make_batch(5))
    finally:
        backend.close()
    assert [r.status for r in server.requests] == [503, 503, 200]
    assert server.count("task_run") == 5
    assert not backend.spool.pending()


def test_retry_after_of_a_429_is_honoured(server: FakeServer, home: Path) -> None:
    server.script.append(Answer(429, {"Retry-After": "1"}))
    backend = backend_for(server.api_url, home, retry_seconds=10)
    try:
        backend.write(make_batch(1))
    finally:
        backend.close()
    first, second = server.requests
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.95
    assert server.count("task_run") == 1


def test_retry_after_beyond_the_budget_spools_at_once_and_delivers_later(
    server: FakeServer, home: Path
) -> None:
    server.script.append(Answer(503, {"Retry-After": "2"}))
    backend = backend_for(server.api_url, home, retry_seconds=RETRY_SECONDS)
    try:
        backend.write(make_batch(3))
        assert server.count("task_run") == 0
        assert len(backend.spool.pending()) == 1
        # The delivery thread waits as asked, then delivers.
        wait_until(lambda: server.count("task_run") == 3, message="spool delivery")
        first, second = server.requests
        assert second.at - first.at >= 1.95
        wait_until(lambda: not backend.spool.pending(), message="an empty spool")
    finally:
        backend.close()


def test_invalid_batch_is_kept_in_rejected_and_logged_not_retried(
    server: FakeServer, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.reject = lambda payload: (
        "task name too long" if any(len(t["name"]) > 20 for t in payload["task_runs"]) else None
    )
    bad = make_batch(1)
    ((task_id, row),) = bad.task_runs.items()
    bad.task_runs[task_id] = (*row[:4], "x" * 50, *row[5:])
    backend = backend_for(server.api_url, home)
    try:
        with caplog.at_level(logging.ERROR, logger="headwater.client"):
            backend.write(bad)
        backend.write(make_batch(2))
    finally:
        backend.close()
    assert [r.status for r in server.requests] == [422, 200]
    assert server.count("task_run") == 2
    assert not backend.spool.pending()
    (kept,) = backend.spool.rejected_directory.glob("*.json")
    assert "x" * 50 in kept.read_text()
    assert "task name too long" in kept.with_suffix(".error.txt").read_text()
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "rejected" in record.getMessage()
    assert "HTTP 422" in record.getMessage()
    assert str(kept) in record.getMessage()


def test_a_refused_api_key_spools_rather_than_rejects(
    server: FakeServer, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.script.extend([Answer(401, body='{"detail": "bad key"}')] * 50)
    backend = backend_for(server.api_url, home, retry_seconds=0.2)
    try:
        with caplog.at_level(logging.WARNING, logger="headwater.client"):
            backend.write(make_batch(1))
        assert len(backend.spool.pending()) == 1
        assert not backend.spool.rejected_directory.exists()
        assert "HEADWATER_API_KEY" in caplog.text
        server.script.clear()  # the key is fixed
        wait_until(lambda: server.count("task_run") == 1, message="delivery after the fix")
    finally:
        backend.close()


def test_413_makes_requests_smaller_until_they_fit(server: FakeServer, home: Path) -> None:
    server.max_rows = 300
    backend = backend_for(server.api_url, home)
    try:
        backend.write(make_batch(400))
    finally:
        backend.close()
    accepted = server.accepted()
    assert all(r.rows <= 300 for r in accepted)
    assert sum(r.rows for r in accepted) == 1 + 1 + 400 + 1201 + 1
    assert server.count("task_run") == 400
    assert server.count("state") == 1201


def test_backoff_is_full_jitter_capped() -> None:
    sender = Sender("http://127.0.0.1:1/api")
    for attempt in range(12):
        delays = [sender.backoff(attempt) for _ in range(200)]
        ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # spread over the whole range, not a fixed step
    assert sender.backoff(0, retry_after=3.0) == 3.0
    # a delivery thread retrying for hours must not overflow
    assert 0 <= sender.backoff(5000) <= BACKOFF_CAP


def test_send_gives_up_at_its_deadline_without_a_server() -> None:
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    sender = Sender("http://127.0.0.1:1/api", sleep=sleep, clock=lambda: clock[0])
    try:
        answer = sender.send(b"{}", deadline=5.0)
    finally:
        sender.close()
    assert answer.verdict.value == "unavailable"
    assert "ConnectError" in answer.reason
    assert len(slept) >= 3 and sum(slept) <= 5.0
