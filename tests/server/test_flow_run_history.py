"""`GET /api/flow_runs/history`: runs per time bucket and state type (the dashboard's chart),
and the `state_name` filter of the listing (the dashboard's late runs)."""

from __future__ import annotations

import datetime as dt

from .conftest import TestClient

#: 2026-01-01 00:00 UTC
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _run(client: TestClient, flow: str, state: str, at: dt.datetime, **fields: object) -> str:
    body = {
        "flow_name": flow,
        "state": {"type": state},
        "expected_start_time": at.isoformat(),
        **fields,
    }
    response = client.post("/flow_runs", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _window(**params: object) -> dict[str, object]:
    return {"since": T0.isoformat(), "until": (T0 + dt.timedelta(hours=4)).isoformat(), **params}


def test_runs_are_counted_per_bucket_and_state(client: TestClient) -> None:
    hour = dt.timedelta(hours=1)
    _run(client, "etl", "COMPLETED", T0)  # first bucket, at its start
    _run(client, "etl", "FAILED", T0 + 0.5 * hour)
    _run(client, "etl", "COMPLETED", T0 + 2.5 * hour)
    _run(client, "report", "COMPLETED", T0 + 2.9 * hour, tags=["nightly"])
    _run(client, "etl", "SCHEDULED", T0 + 4 * hour)  # exactly at `until`: the last bucket
    _run(client, "etl", "COMPLETED", T0 - hour)  # before the window
    _run(client, "etl", "COMPLETED", T0 + 5 * hour)  # after it

    body = client.get("/flow_runs/history", params=_window(buckets=4)).json()

    assert body["bucket_seconds"] == 3600
    assert [b["start"][:16] for b in body["buckets"]] == [
        "2026-01-01T00:00",
        "2026-01-01T01:00",
        "2026-01-01T02:00",
        "2026-01-01T03:00",
    ]
    assert body["buckets"][-1]["end"][:16] == "2026-01-01T04:00"
    assert [b["counts"] for b in body["buckets"]] == [
        {"COMPLETED": 1, "FAILED": 1},
        {},
        {"COMPLETED": 2},
        {"SCHEDULED": 1},
    ]


def test_history_takes_the_listing_filters(client: TestClient) -> None:
    _run(client, "etl", "COMPLETED", T0, tags=["nightly"])
    _run(client, "etl", "FAILED", T0)
    _run(client, "report", "COMPLETED", T0, tags=["nightly"])

    def counts(**params: object) -> dict[str, int]:
        response = client.get("/flow_runs/history", params=_window(buckets=1, **params))
        assert response.status_code == 200, response.text
        result: dict[str, int] = response.json()["buckets"][0]["counts"]
        return result

    assert counts() == {"COMPLETED": 2, "FAILED": 1}
    assert counts(flow_name="etl") == {"COMPLETED": 1, "FAILED": 1}
    assert counts(tag="nightly") == {"COMPLETED": 2}
    assert counts(state_type=["FAILED", "CRASHED"]) == {"FAILED": 1}


def test_the_default_window_is_the_last_24_hours(client: TestClient) -> None:
    now = dt.datetime.now(dt.UTC)
    _run(client, "etl", "COMPLETED", now - dt.timedelta(minutes=30))
    _run(client, "etl", "COMPLETED", now - dt.timedelta(hours=30))

    body = client.get("/flow_runs/history").json()

    assert len(body["buckets"]) == 24
    assert body["bucket_seconds"] == 3600
    assert body["buckets"][-1]["counts"] == {"COMPLETED": 1}
    assert sum(sum(b["counts"].values()) for b in body["buckets"]) == 1


def test_a_bad_window_is_a_422_naming_the_field(client: TestClient) -> None:
    backwards = client.get(
        "/flow_runs/history", params={"since": T0.isoformat(), "until": T0.isoformat()}
    )
    assert backwards.status_code == 422
    assert backwards.json()["detail"][0]["loc"] == ["query", "since"]

    too_many = client.get("/flow_runs/history", params=_window(buckets=100_000))
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["loc"] == ["query", "buckets"]


def test_runs_are_filtered_by_state_name(client: TestClient) -> None:
    late = _run(client, "etl", "SCHEDULED", T0, name="overdue")
    client.post(
        f"/flow_runs/{late}/set_state", json={"type": "SCHEDULED", "name": "Late"}
    ).raise_for_status()
    _run(client, "etl", "SCHEDULED", T0)

    listed = client.get("/flow_runs", params={"state_type": "SCHEDULED", "state_name": "Late"})
    counted = client.get("/flow_runs/counts", params={"state_name": ["Late", "Nope"]})

    assert [run["name"] for run in listed.json()["items"]] == ["overdue"]
    assert counted.json()["counts"] == {"SCHEDULED": 1}


def test_filtered_pages_keep_their_order_whatever_the_plan(client: TestClient) -> None:
    # On SQLite, a page of many matching runs is read by walking the run-time index,
    # a page of few by sorting the matches (repositories.flow_runs._sqlite_walks):
    # paging one run at a time through 4 of 6 runs takes both ways.
    hour = dt.timedelta(hours=1)
    for i in range(4):
        _run(client, "etl", "COMPLETED", T0 + i * hour, tags=["a"], name=f"c{i}")
    _run(client, "etl", "FAILED", T0 + 1.5 * hour, tags=["a"])
    _run(client, "other", "COMPLETED", T0 + 2.5 * hour, tags=["a"])

    def page_by_page(**params: object) -> list[str]:
        names = []
        for offset in range(5):
            body = client.get("/flow_runs", params={**params, "offset": offset, "limit": 1}).json()
            assert body["total"] == 4
            names.extend(run["name"] for run in body["items"])
        return names

    newest_first = ["c3", "c2", "c1", "c0"]
    assert page_by_page(state_type="COMPLETED", flow_name="etl") == newest_first
    assert page_by_page(state_type="COMPLETED", tag="a", flow_name="etl") == newest_first
    assert page_by_page(flow_name="etl", state_type="COMPLETED", sort="RUN_TIME_ASC") == [
        "c0",
        "c1",
        "c2",
        "c3",
    ]
