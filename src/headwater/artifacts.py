"""Artifacts: what a run publishes for people to read, kept with the run.

Each function stores one artifact and returns its id (a `uuid.UUID`). Inside a
flow run or task run, the artifact is linked to it (shown by
`headwater artifact ls --flow-run ID`); outside any run it is stored unlinked.
Artifacts with the same `key` are versions of one artifact: publishing a key
again adds its new latest version (`headwater artifact inspect KEY`).

Keys contain only lowercase letters, digits and dashes ("daily-report").

Example:
    >>> from headwater import flow
    >>> from headwater.artifacts import create_table_artifact
    >>> @flow
    ... def report():
    ...     create_table_artifact([{"region": "eu", "sales": 12}], key="sales")

The artifact goes through `headwater.client.api.get_client()`: the server at
HEADWATER_API_URL, or, embedded, the API app on the local store (built on
first use, in about half a second).

In async code, `await` the `a`-prefixed variants (`acreate_markdown_artifact`,
...): they do the same in a worker thread, so the event loop is not blocked.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

from headwater.exceptions import PayloadTooLarge

__all__ = [
    "acreate_image_artifact",
    "acreate_link_artifact",
    "acreate_markdown_artifact",
    "acreate_progress_artifact",
    "acreate_table_artifact",
    "aupdate_progress_artifact",
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish markdown text (a report, a summary); returns the artifact's id.

    Example:
        >>> create_markdown_artifact("# Sales\\n\\nUp **3%**.", key="sales-report")
    """
    return _create("markdown", markdown, key, description)


def create_table_artifact(
    table: list[dict[str, Any]] | dict[str, list[Any]] | list[list[Any]],
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """Publish a table: a list of rows as dicts, a dict of columns, or a list of rows as lists.

    NaN values become empty cells (None), as JSON has no NaN.

    Example:
        >>> create_table_artifact({"region": ["eu", "us"], "sales": [12, 30]}, key="sales")
    """
    return _create("table", _without_nan(table), key, description)


def create_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """Publish a link (to a dashboard, a file in a bucket); `link_text` is what it shows."""
    if not isinstance(link, str):
        raise ValueError(f"link must be a URL (a string), got {link!r}.")
    if link_text is not None and not isinstance(link_text, str):
        raise ValueError(f"link_text must be a string, got {link_text!r}.")
    return _create("link", {"link": link, "link_text": link_text}, key, description)


def create_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish an image by its URL (the image itself is not stored)."""
    return _create("image", image_url, key, description)


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish a progress bar at `progress` percent (0 to 100); move it with
    `update_progress_artifact(id, progress)`.

    Example:
        >>> bar = create_progress_artifact(0, key="load-progress")
        >>> for done in range(1, 11):
        ...     update_progress_artifact(bar, done * 10)
    """
    return _create("progress", progress, key, description)


def update_progress_artifact(
    artifact_id: uuid.UUID | str, progress: float, description: str | None = None
) -> uuid.UUID:
    """Set a progress artifact's progress (0 to 100), and its description if given."""
    from headwater.client.api import get_client
    from headwater.schemas.artifacts import check_progress

    artifact_id = artifact_id if isinstance(artifact_id, uuid.UUID) else uuid.UUID(artifact_id)
    body: dict[str, Any] = {"data": check_progress(progress)}
    if description is not None:
        body["description"] = description
    get_client().request("PATCH", f"/artifacts/{artifact_id}", json=body)
    return artifact_id


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """`create_markdown_artifact`, awaitable."""
    return await asyncio.to_thread(create_markdown_artifact, markdown, key, description)


async def acreate_table_artifact(
    table: list[dict[str, Any]] | dict[str, list[Any]] | list[list[Any]],
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """`create_table_artifact`, awaitable."""
    return await asyncio.to_thread(create_table_artifact, table, key, description)


async def acreate_link_artifact(
    link: str,
    link_text: str | None = None,
    key: str | None = None,
    description: str | None = None,
) -> uuid.UUID:
    """`create_link_artifact`, awaitable."""
    return await asyncio.to_thread(create_link_artifact, link, link_text, key, description)


async def acreate_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """`create_image_artifact`, awaitable."""
    return await asyncio.to_thread(create_image_artifact, image_url, key, description)


async def acreate_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """`create_progress_artifact`, awaitable."""
    return await asyncio.to_thread(create_progress_artifact, progress, key, description)


async def aupdate_progress_artifact(
    artifact_id: uuid.UUID | str, progress: float, description: str | None = None
) -> uuid.UUID:
    """`update_progress_artifact`, awaitable."""
    return await asyncio.to_thread(update_progress_artifact, artifact_id, progress, description)


def _create(kind: str, data: Any, key: str | None, description: str | None) -> uuid.UUID:
    """Check the artifact here (the same checks as the API's), link it to the run, send it."""
    from headwater.client.api import get_client
    from headwater.schemas.artifacts import ArtifactType, check_data, check_key

    if key is not None:
        check_key(key)
    if description is not None and not isinstance(description, str):
        raise ValueError(f"description must be a string, got {description!r}.")
    body: dict[str, Any] = {
        "type": kind,
        "key": key,
        "description": description,
        "data": check_data(ArtifactType(kind), data),
    }
    body["flow_run_id"], body["task_run_id"] = _current_runs()
    try:
        created = get_client().request("POST", "/artifacts", json=body)
    except PayloadTooLarge as exc:
        name = f" {key!r}" if key else ""
        raise PayloadTooLarge(
            f"The {kind} artifact{name} is too large to store: {exc} Publish a summary, "
            "or store the data elsewhere and publish a link to it (create_link_artifact)."
        ) from None
    return uuid.UUID(created["id"])


def _current_runs() -> tuple[str | None, str | None]:
    """The ids (hex) of the flow run and task run running here, if any."""
    from headwater.context import flow_run_context, task_run_context

    task_context = task_run_context.get()
    if task_context is not None:
        return task_context.task_run.flow_run_hex, task_context.task_run.hex_id
    flow_context = flow_run_context.get()
    if flow_context is not None:
        return flow_context.flow_run.hex_id, None
    return None, None


def _without_nan(table: Any) -> Any:
    """`table` with NaN cells as None (rows or columns, one level deep, like a data frame's)."""

    def cell(value: Any) -> Any:
        return None if isinstance(value, float) and math.isnan(value) else value

    if isinstance(table, dict):
        return {
            name: [cell(value) for value in column] if isinstance(column, list | tuple) else column
            for name, column in table.items()
        }
    if isinstance(table, list | tuple):
        rows: list[Any] = []
        for row in table:
            if isinstance(row, dict):
                rows.append({name: cell(value) for name, value in row.items()})
            elif isinstance(row, list | tuple):
                rows.append([cell(value) for value in row])
            else:
                rows.append(row)
        return rows
    return table
