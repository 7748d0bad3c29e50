"""A small read-only client of the REST API, for the CLI in remote mode.

Its methods have the names and keyword arguments of the store's read queries
(`headwater.store.queries`) and return the same row dataclasses, so a command
renders the same rows whether they came from the database or from a server.

Differences from the store, because the API has no prefix search: a flow run
must be named by its full id (32 hex digits, with or without dashes). Names of
related objects the API does not embed (a task run's flow run, a log line's
task run) are fetched once each and cached.

httpx is imported when a reader is made, not with this module.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from headwater.client.api import error_message, tls_options, transport_reason
from headwater.core.states import StateType
from headwater.exceptions import AmbiguousIdError, HeadwaterError, ObjectNotFound
from headwater.store.queries import FlowRunRow, LogRow, StateRow, TaskRunRow

__all__ = ["RemoteReader", "ServerError"]

#: The largest page the API serves.
PAGE_SIZE = 1000
#: Up to this many unknown task runs are looked up one by one; more, and the
#: reader lists all the flow run's task runs at once.
_SINGLE_LOOKUPS = 10


class ServerError(HeadwaterError):
    """The server could not be reached, refused the request, or answered with an error."""


def _epoch(value: str | None) -> float | None:
    return None if value is None else dt.datetime.fromisoformat(value).timestamp()


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat()


def _uuid(value: str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(value)


def _state_values(state_types: Iterable[StateType | str]) -> list[str]:
    return [StateType(str(value).upper()).value for value in state_types]


def full_id(text: str | uuid.UUID, kind: str = "flow run") -> uuid.UUID:
    """`text` as a UUID, or an error saying a server needs full ids (it has no prefix search)."""
    if isinstance(text, uuid.UUID):
        return text
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        command = kind.replace(" ", "-")
        raise ObjectNotFound(
            f"{kind.capitalize()} id {text!r} is not a full id; against a server "
            f"(HEADWATER_API_URL) give the whole id, as `headwater {command} ls --json` shows."
        ) from None


class RemoteReader:
    """Reads flow runs, task runs, state history and logs from a Headwater server.

    Example:
        >>> reader = RemoteReader("http://127.0.0.1:4200/api", api_key=None)
        >>> runs = reader.list_flow_runs(state_types=["FAILED"], limit=5)
    """

    def __init__(self, api_url: str, *, api_key: str | None, timeout: float = 30.0) -> None:
        import httpx

        self.api_url = api_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.api_url, headers=headers, timeout=timeout, **tls_options(self.api_url)
        )
        self._flow_run_names: dict[uuid.UUID, str | None] = {}
        self._task_run_names: dict[uuid.UUID, str] = {}

    def close(self) -> None:
        self._http.close()

    def detect_crashed_runs(self) -> int:
        """Nothing to do: against a server, its services detect crashed runs."""
        return 0

    def refresh(self) -> None:
        """Nothing to do: every request reads the server's latest data."""

    # -- flow runs --------------------------------------------------------------

    def list_flow_runs(
        self,
        *,
        flow_name: str | None = None,
        state_types: Iterable[StateType | str] | None = None,
        since: float | None = None,
        until: float | None = None,
        parent_flow_run_id: uuid.UUID | None = None,
        limit: int | None = 20,
    ) -> list[FlowRunRow]:
        """As `queries.list_flow_runs`: latest run time first."""
        params = self._flow_run_params(flow_name, state_types, since, until, parent_flow_run_id)
        return [self._flow_run_row(item) for item in self._pages("/flow_runs", params, limit)]

    def count_flow_runs_by_state(
        self,
        *,
        flow_name: str | None = None,
        state_types: Iterable[StateType | str] | None = None,
        since: float | None = None,
        until: float | None = None,
        parent_flow_run_id: uuid.UUID | None = None,
    ) -> dict[StateType, int]:
        """As `queries.count_flow_runs_by_state`."""
        params = self._flow_run_params(flow_name, state_types, since, until, parent_flow_run_id)
        counts = self._get("/flow_runs/counts", params)["counts"]
        return {StateType(key): value for key, value in counts.items() if value}

    def read_flow_run(self, flow_run_id: str | uuid.UUID) -> FlowRunRow:
        """The flow run with this id, or the one whose id starts with this prefix.

        Raises:
            ObjectNotFound: no such run, or (AmbiguousIdError) several match.
        """
        try:
            run_id = full_id(flow_run_id)
        except ObjectNotFound:
            item = self._by_prefix(str(flow_run_id).strip())
        else:
            item = self._get(f"/flow_runs/{run_id}", kind="flow run", id=run_id)
        row = self._flow_run_row(item)
        self._flow_run_names[row.id] = row.name
        return row

    @staticmethod
    def _flow_run_params(
        flow_name: str | None,
        state_types: Iterable[StateType | str] | None,
        since: float | None,
        until: float | None,
        parent_flow_run_id: uuid.UUID | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if flow_name is not None:
            params["flow_name"] = flow_name
        if state_types is not None:
            params["state_type"] = _state_values(state_types)
        if since is not None:
            params["since"] = _iso(since)
        if until is not None:
            params["until"] = _iso(until)
        if parent_flow_run_id is not None:
            params["parent_flow_run_id"] = str(parent_flow_run_id)
        return params

    @staticmethod
    def _flow_run_row(item: dict[str, Any]) -> FlowRunRow:
        return FlowRunRow(
            id=uuid.UUID(item["id"]),
            name=item["name"],
            flow_name=item["flow_name"],
            state_type=StateType(item["state_type"]),
            state_name=item["state_name"],
            state_message=item["state_message"],
            state_timestamp=_epoch(item["state_timestamp"]) or 0.0,
            parameters=item["parameters"] or {},
            tags=item["tags"] or [],
            run_count=item["run_count"],
            parent_flow_run_id=_uuid(item["parent_flow_run_id"]),
            parent_task_run_id=_uuid(item["parent_task_run_id"]),
            root_flow_run_id=_uuid(item["root_flow_run_id"]),
            deployment_id=_uuid(item["deployment_id"]),
            expected_start_time=_epoch(item["expected_start_time"]),
            start_time=_epoch(item["start_time"]),
            end_time=_epoch(item["end_time"]),
            created=_epoch(item["created"]) or 0.0,
            updated=_epoch(item["updated"]) or 0.0,
        )

    # -- task runs --------------------------------------------------------------

    def list_task_runs(
        self,
        *,
        flow_run_id: uuid.UUID | None = None,
        state_types: Iterable[StateType | str] | None = None,
        limit: int | None = 20,
        newest_first: bool = True,
    ) -> list[TaskRunRow]:
        """As `queries.list_task_runs`, with each task run's flow run name."""
        params = self._task_run_params(flow_run_id, state_types)
        params["newest_first"] = newest_first
        items = list(self._pages("/task_runs", params, limit))
        names = self._flow_run_names_of(
            {uuid.UUID(item["flow_run_id"]) for item in items if item["flow_run_id"]}
        )
        rows = []
        for item in items:
            parent = _uuid(item["flow_run_id"])
            rows.append(self._task_run_row(item, None if parent is None else names.get(parent)))
        return rows

    def count_task_runs_by_state(
        self,
        *,
        flow_run_id: uuid.UUID | None = None,
        state_types: Iterable[StateType | str] | None = None,
    ) -> dict[StateType, int]:
        """As `queries.count_task_runs_by_state`."""
        params = self._task_run_params(flow_run_id, state_types)
        counts = self._get("/task_runs/counts", params)["counts"]
        return {StateType(key): value for key, value in counts.items() if value}

    @staticmethod
    def _task_run_params(
        flow_run_id: uuid.UUID | None, state_types: Iterable[StateType | str] | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if flow_run_id is not None:
            params["flow_run_id"] = str(flow_run_id)
        if state_types is not None:
            params["state_type"] = _state_values(state_types)
        return params

    @staticmethod
    def _task_run_row(item: dict[str, Any], flow_run_name: str | None) -> TaskRunRow:
        return TaskRunRow(
            id=uuid.UUID(item["id"]),
            flow_run_id=_uuid(item["flow_run_id"]),
            flow_run_name=flow_run_name,
            task_key=item["task_key"],
            dynamic_key=item["dynamic_key"],
            name=item["name"],
            state_type=StateType(item["state_type"]),
            state_name=item["state_name"],
            state_message=item["state_message"],
            state_timestamp=_epoch(item["state_timestamp"]) or 0.0,
            tags=item["tags"] or [],
            run_count=item["run_count"],
            start_time=_epoch(item["start_time"]),
            end_time=_epoch(item["end_time"]),
            created=_epoch(item["created"]) or 0.0,
            updated=_epoch(item["updated"]) or 0.0,
        )

    def _flow_run_names_of(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str | None]:
        """The names of these flow runs (None for one since deleted), one request per new id."""
        for run_id in ids - self._flow_run_names.keys():
            try:
                self._flow_run_names[run_id] = self.read_flow_run(run_id).name
            except ObjectNotFound:
                self._flow_run_names[run_id] = None
        return {run_id: self._flow_run_names[run_id] for run_id in ids}

    # -- state history and logs ---------------------------------------------------

    def read_state_history(self, *, flow_run_id: uuid.UUID) -> list[StateRow]:
        """As `queries.read_state_history` for a flow run: its own states, oldest first."""
        items = self._get(f"/flow_runs/{flow_run_id}/states", kind="flow run", id=flow_run_id)
        return [
            StateRow(
                id=uuid.UUID(item["id"]),
                flow_run_id=_uuid(item["flow_run_id"]),
                task_run_id=_uuid(item["task_run_id"]),
                type=StateType(item["type"]),
                name=item["name"],
                message=item["message"],
                timestamp=_epoch(item["timestamp"]) or 0.0,
            )
            for item in items
        ]

    def read_logs(
        self,
        *,
        flow_run_id: uuid.UUID,
        after_timestamp: float | None = None,
        min_level: int | None = None,
    ) -> list[LogRow]:
        """As `queries.read_logs`, oldest first.

        The API's `since` includes its bound, so lines at exactly `after_timestamp`
        come back too; callers de-duplicate by id (as `logs --follow` does).
        """
        params: dict[str, Any] = {"flow_run_id": str(flow_run_id)}
        if after_timestamp is not None:
            params["since"] = _iso(after_timestamp)
        if min_level is not None:
            params["min_level"] = min_level
        return self._log_rows(flow_run_id, list(self._pages("/logs", params, None)))

    def stream_logs(
        self, *, flow_run_id: uuid.UUID, min_level: int | None
    ) -> Iterator[list[LogRow]] | None:
        """Log lines as the server streams them (GET /api/stream), until its `end` event."""
        return self._stream_logs(flow_run_id, min_level)

    def _stream_logs(self, flow_run_id: uuid.UUID, min_level: int | None) -> Iterator[list[LogRow]]:
        import httpx

        params = {"flow_run_id": str(flow_run_id), "kinds": "logs"}
        try:
            with self._http.stream(
                "GET", "/stream", params=params, timeout=httpx.Timeout(30.0, read=None)
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ServerError(
                        f"The Headwater server at {self.api_url} answered "
                        f"{response.status_code} to GET /stream: {error_message(response)}"
                    )
                event, data = "", ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data += line[5:].strip()
                    elif not line:
                        if event == "end":
                            return
                        if event == "log" and data:
                            item = json.loads(data)
                            if min_level is None or item["level"] >= min_level:
                                yield self._log_rows(flow_run_id, [item])
                        event, data = "", ""
        except httpx.TransportError as exc:
            raise ServerError(
                f"Lost the live stream from the Headwater server at {self.api_url}: "
                f"{transport_reason(exc)}"
            ) from None

    def _log_rows(self, flow_run_id: uuid.UUID, items: list[dict[str, Any]]) -> list[LogRow]:
        task_run_ids = {uuid.UUID(item["task_run_id"]) for item in items if item["task_run_id"]}
        self._learn_task_run_names(flow_run_id, task_run_ids - self._task_run_names.keys())
        rows = []
        for item in items:
            task_run_id = _uuid(item["task_run_id"])
            rows.append(
                LogRow(
                    id=uuid.UUID(item["id"]),
                    flow_run_id=_uuid(item["flow_run_id"]),
                    task_run_id=task_run_id,
                    task_run_name=None
                    if task_run_id is None
                    else self._task_run_names.get(task_run_id),
                    level=item["level"],
                    name=item["name"],
                    message=item["message"],
                    timestamp=_epoch(item["timestamp"]) or 0.0,
                )
            )
        return rows

    def _by_prefix(self, prefix: str) -> Any:
        import httpx

        if not prefix or any(c not in "0123456789abcdefABCDEF-" for c in prefix):
            raise ObjectNotFound(
                f"No flow run found with id {prefix!r}; an id is hex digits, as "
                "`headwater flow-run ls` shows."
            )
        try:
            response = self._http.get(f"/flow_runs/by_prefix/{prefix}")
        except httpx.TransportError as exc:
            raise ServerError(
                f"Cannot reach the Headwater server at {self.api_url}: {transport_reason(exc)}; "
                "is `headwater server start` running?"
            ) from None
        if response.status_code == 409:
            raise AmbiguousIdError(error_message(response))
        if response.status_code == 404:
            raise ObjectNotFound(error_message(response))
        if response.status_code >= 400:
            raise ServerError(
                f"The Headwater server at {self.api_url} answered {response.status_code} "
                f"to a flow run id lookup: {error_message(response)}"
            )
        return response.json()

    def _learn_task_run_names(self, flow_run_id: uuid.UUID, unknown: set[uuid.UUID]) -> None:
        if not unknown:
            return
        if len(unknown) > _SINGLE_LOOKUPS:
            params = {"flow_run_id": str(flow_run_id)}
            for item in self._pages("/task_runs", params, None):
                self._task_run_names[uuid.UUID(item["id"])] = item["name"]
        for task_run_id in unknown - self._task_run_names.keys():
            try:
                item = self._get(f"/task_runs/{task_run_id}", kind="task run", id=task_run_id)
            except ObjectNotFound:
                continue
            self._task_run_names[task_run_id] = item["name"]

    # -- HTTP ---------------------------------------------------------------------

    def _pages(self, path: str, params: dict[str, Any], limit: int | None) -> Iterator[Any]:
        """The items of a paged listing, at most `limit` of them (None: all)."""
        offset = 0
        while limit is None or offset < limit:
            size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - offset)
            page = self._get(path, {**params, "offset": offset, "limit": size})
            yield from page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return

    def _get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        kind: str | None = None,
        id: uuid.UUID | None = None,
    ) -> Any:
        """The JSON body of GET `path`, or a `ServerError` (ObjectNotFound for a 404 of `kind`)."""
        import httpx

        try:
            response = self._http.get(path, params=params)
        except httpx.TransportError as exc:
            raise ServerError(
                f"Cannot reach the Headwater server at {self.api_url}: {transport_reason(exc)}; "
                "is `headwater server start` running?"
            ) from None
        if response.status_code == 404 and kind is not None:
            command = kind.replace(" ", "-")
            raise ObjectNotFound(
                f"No {kind} found with id {str(id)!r} on the server at {self.api_url}; "
                f"list them with `headwater {command} ls`."
            )
        if response.status_code == 401:
            raise ServerError(
                f"The Headwater server at {self.api_url} refused the request (401 "
                "Unauthorized): set HEADWATER_API_KEY to the server's API key."
            )
        if response.status_code >= 400:
            raise ServerError(
                f"The Headwater server at {self.api_url} answered {response.status_code} "
                f"to GET {path}: {error_message(response)}"
            )
        return response.json()
