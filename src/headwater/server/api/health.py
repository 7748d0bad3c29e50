"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter

from headwater.exceptions import NotReady
from headwater.schemas.common import Health, Ready
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.store.schema import HEAD_REVISION

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> Health:
    """The server process is up (checks nothing else; needs no API key)."""
    return Health()


@router.get("/ready", responses=errors(503))
def ready(db: DatabaseDep) -> Ready:
    """The database is reachable and its schema is at the revision this server knows."""
    try:
        revision = db.revision()
    except Exception as exc:  # any failure to reach the database means "not ready"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotReady(f"Database {db.display_url} is unreachable: {reason}") from None
    if revision != HEAD_REVISION:
        raise NotReady(
            f"Database schema is at revision {revision!r}, not {HEAD_REVISION!r}; "
            "run `headwater database upgrade`."
        )
    return Ready(status="ready", database=db.dialect, schema_revision=revision)
