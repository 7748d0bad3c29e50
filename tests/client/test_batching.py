"""Runs against a server cost few requests, and every record arrives as the contract says."""

from __future__ import annotations

import json
from pathlib import Path

from tests.client.conftest import backend_for, make_batch
from tests.client.fake_server import FakeServer

from headwater import flow, get_run_logger, task
from headwater.client import open_backend
from headwater.client._backend import http_backend
from headwater.settings import Settings


def test_2000_sequential_tasks_take_few_requests_and_all_rows_arrive(remote: FakeServer) -> None:
    @task
    def step(i: int) -> int:
        return i

    @flow
    def many() -> int:
        for i in range(2000):
            step(i)
        get_run_logger().info("done")
        return 2000

    assert many() == 2000
    from headwater.engine.recorder import close_recorder

    close_recorder()
    assert len(remote.requests) < 100
    assert all(r.status == 200 for r in remote.requests)
    # One keep-alive connection carries them (two at most: the spool thread has none here).
    assert len({r.peer for r in remote.requests}) <= 2
    assert remote.count("flow_run", "state_type = 'COMPLETED'") == 1
    assert remote.count("task_run", "state_type = 'COMPLETED'") == 2000
    assert remote.count("state") == 3 * 2001
    assert remote.count("log", "message = 'done'") == 1


def test_parameters_tags_and_states_arrive_as_json_values(remote: FakeServer) -> None:
    @task(tags=["io"])
    def load(names: list[str]) -> int:
        return len(names)

    @flow
    def etl(names: list[str], limit: int = 3) -> int:
        return load(names)

    assert etl(["a", "b"]) == 2
    from headwater.engine.recorder import close_recorder

    close_recorder()
    ((parameters, state_type),) = remote.rows("SELECT parameters, state_type FROM flow_run")
    assert json.loads(parameters) == {"names": ["a", "b"], "limit": 3}
    assert state_type == "COMPLETED"
    ((tags,),) = remote.rows("SELECT tags FROM task_run")
    assert json.loads(tags) == ["io"]


def test_large_bodies_are_gzipped(server: FakeServer, home: Path) -> None:
    backend = backend_for(server.api_url, home, compress_min_bytes=65536)
    try:
        backend.write(make_batch(1000))
        backend.write(make_batch(2))
    finally:
        backend.close()
    large, small = server.requests
    assert large.gzip and large.rows == 1 + 1 + 1000 + 3001 + 1
    assert not small.gzip
    assert server.count("task_run") == 1002


def test_api_key_is_sent_as_bearer_token(server: FakeServer, home: Path) -> None:
    backend = backend_for(server.api_url, home, api_key="s3cret")
    try:
        backend.write(make_batch(1))
    finally:
        backend.close()
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer s3cret"


def test_values_json_cannot_hold_are_sent_as_their_repr(server: FakeServer, home: Path) -> None:
    batch = make_batch(1)
    (run_id, row), *_ = batch.flow_runs.items()
    batch.flow_runs[run_id] = (*row[:7], {"big": 2**70, "obj": object}, *row[8:])
    backend = backend_for(server.api_url, home)
    try:
        backend.write(batch)
    finally:
        backend.close()
    ((parameters,),) = server.rows("SELECT parameters FROM flow_run")
    assert json.loads(parameters) == {"big": 2**70, "obj": "<class 'object'>"}


def test_factory_picks_the_backend_from_settings(tmp_path: Path) -> None:
    embedded = open_backend(Settings(home=tmp_path))
    assert type(embedded).__name__ == "SQLiteWriter"
    local = http_backend(Settings(home=tmp_path, api_url="http://127.0.0.1:4200/api"))
    remote = http_backend(Settings(home=tmp_path, api_url="https://hw.example.com/api"))
    # Compression only pays across a network: not on loopback.
    assert local._sender._compress_min_bytes is None
    assert remote._sender._compress_min_bytes == 65536
    assert local.spool.directory.parent == tmp_path / "spool"
    assert local.spool.directory != remote.spool.directory
