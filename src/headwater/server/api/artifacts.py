"""Artifacts: publish, filter, read (by id or the latest of a key), update progress, delete.

Request bodies are bounded by the server's request limit (413 naming it), so
a huge table is refused before it is parsed.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError

from headwater.schemas.artifacts import (
    ArtifactCreate,
    ArtifactQuery,
    ArtifactResponse,
    ArtifactUpdate,
    check_key,
)
from headwater.schemas.common import Page, Paging
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.repositories import artifacts

router = APIRouter(prefix="/artifacts", tags=["artifacts"])

KeyPath = Annotated[
    str,
    Path(min_length=1, max_length=255, description="The artifact's key (lowercase, digits, -)."),
]


@router.post("", status_code=201, responses=errors(413, 422))
def create_artifact(db: DatabaseDep, body: ArtifactCreate) -> ArtifactResponse:
    """Publish an artifact; with the key of an existing one, its new latest version."""
    with db.write() as conn:
        return artifacts.create(conn, body=body, now=time.time())


@router.get("")
def list_artifacts(
    db: DatabaseDep, query: Annotated[ArtifactQuery, Query()]
) -> Page[ArtifactResponse]:
    """Artifacts matching every filter given, newest first, a page at a time."""
    with db.read() as conn:
        items, total = artifacts.list_artifacts(conn, query=query)
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.get("/keys")
def list_artifact_keys(
    db: DatabaseDep, paging: Annotated[Paging, Query()]
) -> Page[ArtifactResponse]:
    """The latest version of each key, the most recently published first."""
    with db.read() as conn:
        items, total = artifacts.list_keys(conn, paging=paging)
    return Page(items=items, total=total, offset=paging.offset, limit=paging.limit)


@router.get("/latest/{key}", responses=errors(404, 422))
def read_latest_artifact(db: DatabaseDep, key: KeyPath) -> ArtifactResponse:
    """The newest version of the artifact `key`."""
    try:
        check_key(key)
    except ValueError as exc:
        raise RequestValidationError(
            [{"loc": ("path", "key"), "msg": str(exc), "type": "value_error"}]
        ) from None
    with db.read() as conn:
        return artifacts.latest(conn, key=key)


@router.get("/{artifact_id}", responses=errors(404))
def read_artifact(db: DatabaseDep, artifact_id: uuid.UUID) -> ArtifactResponse:
    """The artifact (one version) with this id."""
    with db.read() as conn:
        return artifacts.read(conn, artifact_id=artifact_id)


@router.patch("/{artifact_id}", responses=errors(404, 422))
def update_artifact(
    db: DatabaseDep, artifact_id: uuid.UUID, body: ArtifactUpdate
) -> ArtifactResponse:
    """Change a progress artifact's progress (`data`, 0 to 100) or any artifact's description."""
    try:
        with db.write() as conn:
            return artifacts.update(conn, artifact_id=artifact_id, body=body, now=time.time())
    except artifacts.UpdateRefused as exc:
        raise RequestValidationError(
            [{"loc": ("body", exc.field), "msg": str(exc), "type": "value_error"}]
        ) from None


@router.delete("/{artifact_id}", status_code=204, responses=errors(404))
def delete_artifact(db: DatabaseDep, artifact_id: uuid.UUID) -> Response:
    """Delete this version of the artifact."""
    with db.write() as conn:
        artifacts.delete(conn, artifact_id=artifact_id)
    return Response(status_code=204)
