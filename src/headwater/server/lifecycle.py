"""Lifecycle services: late runs, runs of dead workers, cancellations that nobody finished."""

from __future__ import annotations

from typing import TYPE_CHECKING

from headwater.server.services import Outcome

if TYPE_CHECKING:
    from headwater.server.database import Database


def mark_late_runs(db: Database, now: float) -> Outcome:
    return Outcome()


def recover_runs_of_dead_workers(db: Database, now: float) -> Outcome:
    return Outcome()


def finish_cancellations(db: Database, now: float) -> Outcome:
    return Outcome()
