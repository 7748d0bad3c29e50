"""Concurrency limits and their leases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from headwater.server.services import Outcome

if TYPE_CHECKING:
    from headwater.server.database import Database


def expire_leases(db: Database, now: float) -> Outcome:
    return Outcome()
