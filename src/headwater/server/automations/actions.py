"""The actions of automation firings (being written): `run_pending_actions` takes PENDING
rows of `automation_action`, performs them and records each outcome."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from headwater.server.database import Database
    from headwater.server.services import Publish


def run_pending_actions(
    db: Database, now: float, *, publish: Publish | None = None, limit: int = 50
) -> int:
    """Perform up to `limit` due actions; how many were performed (succeeded or failed)."""
    return 0
