"""Concurrency limits: create, list, read, update, delete, reset; acquire, renew, release."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from headwater.exceptions import ConcurrencySlotsUnavailable
from headwater.schemas.common import Page
from headwater.schemas.concurrency import (
    AcquireRequest,
    AcquireResponse,
    ConcurrencyLimitCreate,
    ConcurrencyLimitQuery,
    ConcurrencyLimitResponse,
    ConcurrencyLimitUpdate,
    LeaseRenew,
    LeaseResponse,
    SlotsUnavailableResponse,
)
from headwater.server.api._responses import errors
from headwater.server.dependencies import DatabaseDep
from headwater.server.repositories import concurrency

router = APIRouter(prefix="/concurrency_limits", tags=["concurrency limits"])

LimitNamePath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=255,
        pattern=r"^[^/\x00]+$",
        description="The limit's name (URL-encoded).",
    ),
]

_LOCKED: dict[int | str, dict[str, Any]] = {
    423: {
        "model": SlotsUnavailableResponse,
        "description": "A named limit lacks free slots; nothing was taken. Try again after "
        "the Retry-After header's seconds (or `retry_after`, when slots decay).",
    }
}


@router.post("", status_code=201, responses=errors(409))
def create_concurrency_limit(
    db: DatabaseDep, body: ConcurrencyLimitCreate
) -> ConcurrencyLimitResponse:
    """Create a limit (409 if one has that name). Name it `tag:<tag>` to limit task runs by tag."""
    with db.write() as conn:
        return concurrency.create(conn, body=body, now=time.time())


@router.get("")
def list_concurrency_limits(
    db: DatabaseDep, query: Annotated[ConcurrencyLimitQuery, Query()]
) -> Page[ConcurrencyLimitResponse]:
    """Limits matching every filter given, by name, a page at a time."""
    with db.read() as conn:
        items, total = concurrency.list_limits(conn, query=query, now=time.time())
    return Page(items=items, total=total, offset=query.offset, limit=query.limit)


@router.post("/acquire", response_model=AcquireResponse, responses={**errors(404, 422), **_LOCKED})
def acquire_concurrency_slots(db: DatabaseDep, body: AcquireRequest) -> AcquireResponse | Response:
    """Take `slots` slots of every named active limit, or none of them (423).

    In `concurrency` mode the slots are held under a lease until it is released
    or expires (`lease_seconds` after the last renewal). In `rate_limit` mode
    they are taken for good, and free up as the limit's slots decay. Names that
    are not limits are ignored and listed in `missing` (404 with `strict`);
    asking for more slots than a limit has is a 422.
    """
    try:
        return _acquire(db, body)
    except ConcurrencySlotsUnavailable as exc:
        locked = exc
    # Leases whose holders died still hold slots until expired: free them and try
    # again, so that slots come back even where no services round runs (embedded).
    with db.read() as conn:
        expired = concurrency.any_expired(conn, now=time.time())
    if expired:
        with db.write() as conn:
            concurrency.expire(conn, now=time.time())
        try:
            return _acquire(db, body)
        except ConcurrencySlotsUnavailable as exc:
            locked = exc
    content = SlotsUnavailableResponse(
        message=str(locked), limit=locked.limit or "", retry_after=locked.retry_after
    )
    return JSONResponse(
        status_code=423,
        content=content.model_dump(),
        headers={"Retry-After": concurrency.retry_after_header(locked.retry_after)},
    )


def _acquire(db: DatabaseDep, body: AcquireRequest) -> AcquireResponse:
    try:
        with db.write() as conn:
            return concurrency.acquire(conn, request=body, now=time.time())
    except concurrency.SlotRequestError as exc:
        raise RequestValidationError(
            [{"loc": ("body", exc.field), "msg": str(exc), "type": "value_error"}]
        ) from None


@router.post("/leases/{lease_id}/renew", responses=errors(404))
def renew_concurrency_lease(
    db: DatabaseDep, lease_id: uuid.UUID, body: LeaseRenew
) -> LeaseResponse:
    """Hold the lease's slots `lease_seconds` more (404 if it expired or was released)."""
    with db.write() as conn:
        return concurrency.renew(
            conn, lease_id=lease_id, lease_seconds=body.lease_seconds, now=time.time()
        )


@router.delete("/leases/{lease_id}", status_code=204)
def release_concurrency_lease(db: DatabaseDep, lease_id: uuid.UUID) -> Response:
    """Give the lease's slots back (204, also when it is already gone)."""
    with db.write() as conn:
        concurrency.release(conn, lease_id=lease_id, now=time.time())
    return Response(status_code=204)


@router.get("/{name}", responses=errors(404))
def read_concurrency_limit(db: DatabaseDep, name: LimitNamePath) -> ConcurrencyLimitResponse:
    """The limit named `name`."""
    with db.read() as conn:
        return concurrency.read(conn, name=name, now=time.time())


@router.patch("/{name}", responses=errors(404))
def update_concurrency_limit(
    db: DatabaseDep, name: LimitNamePath, body: ConcurrencyLimitUpdate
) -> ConcurrencyLimitResponse:
    """Change the limit's slots, active flag or slot decay; held slots stay held."""
    with db.write() as conn:
        return concurrency.update(conn, name=name, body=body, now=time.time())


@router.delete("/{name}", status_code=204, responses=errors(404))
def delete_concurrency_limit(db: DatabaseDep, name: LimitNamePath) -> Response:
    """Delete the limit."""
    with db.write() as conn:
        concurrency.delete(conn, name=name)
    return Response(status_code=204)


@router.post("/{name}/reset", responses=errors(404))
def reset_concurrency_limit(db: DatabaseDep, name: LimitNamePath) -> ConcurrencyLimitResponse:
    """Free all of the limit's slots; the leases holding them no longer count for it."""
    with db.write() as conn:
        return concurrency.reset(conn, name=name, now=time.time())


@router.get("/{name}/leases", responses=errors(404))
def read_concurrency_limit_leases(db: DatabaseDep, name: LimitNamePath) -> list[LeaseResponse]:
    """The leases holding slots of the limit, oldest first, with what their holders said."""
    with db.read() as conn:
        return concurrency.leases_of(conn, name=name)
