"""The scheduler service: creates the runs of deployment schedules ahead of time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from headwater.server.services import Outcome

if TYPE_CHECKING:
    from headwater.server.database import Database


def schedule_runs(db: Database, now: float) -> Outcome:
    """Create the runs every active schedule is due to make; see the module docstring."""
    return Outcome()
