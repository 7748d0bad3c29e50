"""The orchestration rules, as pure decisions."""

from __future__ import annotations

import pytest

from headwater.core.rules import RunPosition, decide
from headwater.core.states import StateType

RUNNING = StateType.RUNNING
COMPLETED = StateType.COMPLETED
CRASHED = StateType.CRASHED


@pytest.mark.parametrize(
    ("current", "proposed", "accepted", "reason"),
    [
        (RunPosition(RUNNING, 1, 10.0), RunPosition(COMPLETED, 1, 11.0), True, "Accepted"),
        (RunPosition(COMPLETED, 1, 10.0), RunPosition(RUNNING, 1, 11.0), False, "final state"),
        (RunPosition(CRASHED, 1, 10.0), RunPosition(COMPLETED, 1, 11.0), False, "Crashed"),
        (RunPosition(COMPLETED, 1, 10.0), RunPosition(RUNNING, 2, 11.0), True, "Accepted"),
        (RunPosition(RUNNING, 2, 10.0), RunPosition(COMPLETED, 1, 11.0), False, "attempt 1"),
        (RunPosition(RUNNING, 1, 10.0), RunPosition(COMPLETED, 1, 9.0), False, "newer"),
    ],
)
def test_decide(current: RunPosition, proposed: RunPosition, accepted: bool, reason: str) -> None:
    decision = decide(current, proposed)
    assert decision.accepted is accepted
    assert reason in decision.reason


def test_duplicate_and_force() -> None:
    final = RunPosition(COMPLETED, 1, 10.0)
    late = RunPosition(RUNNING, 1, 11.0)
    assert decide(final, late, duplicate=True).duplicate
    assert decide(final, late, force=True).accepted
