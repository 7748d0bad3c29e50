"""Error responses routes declare, so the OpenAPI document lists them with their body."""

from __future__ import annotations

from typing import Any

from headwater.schemas.common import ErrorResponse


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for these status codes, each with an `ErrorResponse` body."""
    return {code: {"model": ErrorResponse} for code in codes}
