"""Errors the API answers with, and the one place that maps exceptions to status codes.

Every error body is `{"message": "...", "detail": ...}` (`schemas.common.ErrorResponse`).
A 422 lists each bad field in `detail` with its location, e.g.
`["body", "task_runs", 0, "state_type"]`, and `message` names them too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from headwater.exceptions import (
    AmbiguousIdError,
    ConfigurationError,
    Conflict,
    HeadwaterError,
    InvalidParameters,
    NotReady,
    ObjectNotFound,
    PayloadTooLarge,
    StoreError,
)
from headwater.schemas._types import NO_NUL_PATTERN, UUID_PATTERN

logger = logging.getLogger(__name__)


#: HeadwaterError subclasses and their status codes; the first match wins.
STATUS_CODES: Sequence[tuple[type[HeadwaterError], int]] = (
    (AmbiguousIdError, 409),
    (InvalidParameters, 422),
    (ObjectNotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (ConfigurationError, 400),
    (StoreError, 503),
    (NotReady, 503),
)


def error_body(message: str, detail: Any = None) -> dict[str, Any]:
    return {"message": message, "detail": detail}


def status_of(exc: HeadwaterError) -> int:
    from headwater.worker.infrastructure import JobTemplateError, UnknownInfrastructureType

    if isinstance(exc, (JobTemplateError, UnknownInfrastructureType)):
        return 422  # a request's template or variables do not fit: name the field
    for kind, status in STATUS_CODES:
        if isinstance(exc, kind):
            return status
    return 400


def _location(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


#: Plain words for the patterns of `schemas._types` (pydantic would print the regex).
_PATTERN_MESSAGES = {
    UUID_PATTERN: "Input should be a UUID: 32 hex digits, or the dashed form",
    NO_NUL_PATTERN: "Text must not contain NUL (\\u0000) characters",
}


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors as `ErrorDetail`s: no echo of the input (it may be megabytes)."""
    details = []
    for error in errors:
        message = str(error["msg"])
        if error["type"] == "string_pattern_mismatch":
            pattern = str((error.get("ctx") or {}).get("pattern"))
            message = _PATTERN_MESSAGES.get(pattern, message)
        details.append({"loc": list(error["loc"]), "msg": message, "type": str(error["type"])})
    return details


def validation_response(errors: Sequence[Any]) -> JSONResponse:
    details = validation_details(errors)
    shown = "; ".join(f"{_location(e['loc'])}: {e['msg']}" for e in details[:5])
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return JSONResponse(
        status_code=422, content=error_body(f"Invalid request: {shown}{more}", details)
    )


def install(app: FastAPI) -> None:
    """Register the exception handlers: HeadwaterError and database errors become 4xx/503."""

    async def headwater_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HeadwaterError)
        status = status_of(exc)
        if status >= 500:
            logger.warning("%s", exc)
        return JSONResponse(status_code=status, content=error_body(str(exc)))

    async def request_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return validation_response(exc.errors())

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return JSONResponse(
            status_code=exc.status_code,
            content=error_body(str(exc.detail)),
            headers=getattr(exc, "headers", None),
        )

    async def database_error(_request: Request, exc: Exception) -> JSONResponse:
        status, message = _database_status(exc)
        if status == 503:
            logger.warning("Database unavailable: %s", exc)
        return JSONResponse(status_code=status, content=error_body(message))

    app.add_exception_handler(HeadwaterError, headwater_error)
    app.add_exception_handler(RequestValidationError, request_validation)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(sa.exc.SQLAlchemyError, database_error)


def _database_status(exc: Exception) -> tuple[int, str]:
    """The answer to a database error: the client's fault (4xx) or the database's (503)."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = reason[0] if reason else type(exc).__name__
    if isinstance(exc, sa.exc.IntegrityError):
        return 409, (
            f"The request conflicts with stored data ({first}); e.g. a run whose flow or "
            "flow run was not sent first."
        )
    if isinstance(exc, sa.exc.DataError) or (
        # A value the column type could not bind (the driver never saw it).
        isinstance(exc, sa.exc.StatementError) and not isinstance(exc, sa.exc.DBAPIError)
    ):
        return 422, f"The database refused a value of the request: {first}"
    if isinstance(
        exc,
        sa.exc.OperationalError
        | sa.exc.InterfaceError
        | sa.exc.InternalError
        | sa.exc.DisconnectionError
        | sa.exc.TimeoutError,
    ):
        return 503, f"The database is unavailable, try again: {first}"
    logger.error("Unexpected database error", exc_info=exc)
    return 500, f"Unexpected database error: {first}"
