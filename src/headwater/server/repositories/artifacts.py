"""Artifacts: create, filter, read the latest version of a key, update progress, delete.

Versions of one artifact share a key; the latest version is the newest row of
that key (by `created`, then `id`). Nothing is overwritten when a key is
published again: each call adds a version.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from headwater.core.ids import uuid7
from headwater.exceptions import ObjectNotFound
from headwater.schemas.artifacts import (
    ArtifactCreate,
    ArtifactQuery,
    ArtifactResponse,
    ArtifactType,
    ArtifactUpdate,
    check_progress,
)
from headwater.schemas.common import Paging, utc
from headwater.server.repositories._common import page
from headwater.store.tables import artifact

#: Newest first; `id` breaks ties of artifacts created in the same instant.
_NEWEST_FIRST = (artifact.c.created.desc(), artifact.c.id.desc())


class UpdateRefused(Exception):
    """An update the artifact cannot take; the route answers 422 naming `field`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def to_response(row: Any) -> ArtifactResponse:
    return ArtifactResponse(
        id=row["id"],
        key=row["key"],
        type=row["type"],
        description=row["description"],
        data=row["data"],
        flow_run_id=row["flow_run_id"],
        task_run_id=row["task_run_id"],
        created=utc(row["created"]),
        updated=utc(row["updated"]),
    )


def _is_latest() -> sa.ColumnElement[bool]:
    """True for a row that no newer row of the same key follows."""
    newer = artifact.alias("newer")
    return ~sa.exists().where(
        newer.c.key == artifact.c.key,
        sa.or_(
            newer.c.created > artifact.c.created,
            sa.and_(newer.c.created == artifact.c.created, newer.c.id > artifact.c.id),
        ),
    )


def not_found(artifact_id: uuid.UUID) -> ObjectNotFound:
    return ObjectNotFound(
        f"No artifact with id {str(artifact_id)!r}; list them with `headwater artifact ls`."
    )


def create(conn: sa.Connection, *, body: ArtifactCreate, now: float) -> ArtifactResponse:
    """Add the artifact (a new version, when its key exists)."""
    values = {
        "id": uuid7(),
        "key": body.key,
        "type": body.type.value,
        "description": body.description,
        "data": body.data,
        "flow_run_id": None if body.flow_run_id is None else uuid.UUID(body.flow_run_id),
        "task_run_id": None if body.task_run_id is None else uuid.UUID(body.task_run_id),
        "created": now,
        "updated": now,
    }
    conn.execute(sa.insert(artifact).values(values))
    return to_response(values)


def list_artifacts(
    conn: sa.Connection, *, query: ArtifactQuery
) -> tuple[list[ArtifactResponse], int]:
    """One page of the artifacts matching `query`, newest first, and how many match."""
    where: list[sa.ColumnElement[bool]] = []
    if query.key is not None:
        where.append(artifact.c.key == query.key)
    if query.flow_run_id is not None:
        where.append(artifact.c.flow_run_id == query.flow_run_id)
    if query.task_run_id is not None:
        where.append(artifact.c.task_run_id == query.task_run_id)
    if query.type is not None:
        where.append(artifact.c.type == query.type.value)
    if query.latest_only:
        where.append(sa.or_(artifact.c.key.is_(None), _is_latest()))
    select = sa.select(artifact).where(*where)
    return page(conn, select, _NEWEST_FIRST, query.offset, query.limit, to_response)


def list_keys(conn: sa.Connection, *, paging: Paging) -> tuple[list[ArtifactResponse], int]:
    """The latest version of every key, the most recently published first."""
    select = sa.select(artifact).where(artifact.c.key.is_not(None), _is_latest())
    return page(conn, select, _NEWEST_FIRST, paging.offset, paging.limit, to_response)


def read(conn: sa.Connection, *, artifact_id: uuid.UUID) -> ArtifactResponse:
    row = conn.execute(sa.select(artifact).where(artifact.c.id == artifact_id)).mappings().first()
    if row is None:
        raise not_found(artifact_id)
    return to_response(row)


def latest(conn: sa.Connection, *, key: str) -> ArtifactResponse:
    """The newest version of the artifact `key`."""
    row = (
        conn.execute(sa.select(artifact).where(artifact.c.key == key).order_by(*_NEWEST_FIRST))
        .mappings()
        .first()
    )
    if row is None:
        raise ObjectNotFound(
            f"No artifact with key {key!r}; list the keys with `headwater artifact ls`."
        )
    return to_response(row)


def update(
    conn: sa.Connection, *, artifact_id: uuid.UUID, body: ArtifactUpdate, now: float
) -> ArtifactResponse:
    """Change the description, and a progress artifact's progress (`data`)."""
    current = read(conn, artifact_id=artifact_id)
    values: dict[str, Any] = {"updated": now}
    if "data" in body.model_fields_set:
        if current.type is not ArtifactType.PROGRESS:
            raise UpdateRefused(
                "data",
                f"Artifact {artifact_id} is a {current.type.value} artifact; only progress "
                "artifacts change their data. Publish a new version under its key instead.",
            )
        try:
            values["data"] = check_progress(body.data)
        except ValueError as exc:
            raise UpdateRefused("data", str(exc)) from None
    if "description" in body.model_fields_set:
        values["description"] = body.description
    conn.execute(sa.update(artifact).where(artifact.c.id == artifact_id).values(values))
    return read(conn, artifact_id=artifact_id)


def delete(conn: sa.Connection, *, artifact_id: uuid.UUID) -> None:
    """Delete one version; the key's latest version is then the one before it."""
    deleted = conn.execute(sa.delete(artifact).where(artifact.c.id == artifact_id)).rowcount
    if not deleted:
        raise not_found(artifact_id)
