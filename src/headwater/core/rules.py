"""Orchestration rules: which state transitions a run may make. Pure, no I/O.

One set of rules serves every writer: the embedded store, the PostgreSQL
store and the server all apply them, the store writers as a guard inside
their upsert statements (`run_upsert_guard`), the server's `set_state` API
through `decide`.

The rules:

1. Terminal states (Completed, Failed, Cancelled, Crashed) are final. Only an
   explicit retry leaves one, and a retry is recognised by a higher
   `run_count` (each attempt increments it); `force` overrides.
2. A stale writer cannot overwrite a newer state: a proposed state older than
   the current one (by timestamp, within the same attempt) is rejected. The
   pair (run_count, state_timestamp) is the run's fencing token.
3. A transition carries the id of the state it creates; proposing a state
   whose id is already recorded is a duplicate, accepted without effect, so a
   retried request is idempotent.
"""

from __future__ import annotations

import dataclasses

from headwater.core.states import TERMINAL_TYPES, StateType

_TERMINAL_NAMES = tuple(sorted(t.value for t in TERMINAL_TYPES))


@dataclasses.dataclass(frozen=True, slots=True)
class RunPosition:
    """Where a run stands: its state type, attempt number and state timestamp."""

    state_type: StateType
    run_count: int
    state_timestamp: float


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of a proposed transition: accepted or not, and why."""

    accepted: bool
    reason: str
    #: the transition was already recorded: accepted, nothing changes
    duplicate: bool = False


def decide(
    current: RunPosition,
    proposed: RunPosition,
    *,
    duplicate: bool = False,
    force: bool = False,
) -> Decision:
    """Whether a run at `current` may move to `proposed`.

    Example:
        decide(RunPosition(COMPLETED, 1, t), RunPosition(RUNNING, 1, t + 1)).accepted  # False
    """
    if duplicate:
        return Decision(True, "This transition was already recorded.", duplicate=True)
    if force:
        return Decision(True, "Forced.")
    if proposed.run_count < current.run_count:
        return Decision(
            False,
            f"Stale transition: it belongs to attempt {proposed.run_count}, but the run is "
            f"on attempt {current.run_count}.",
        )
    same_attempt = proposed.run_count == current.run_count
    if current.state_type in TERMINAL_TYPES and same_attempt:
        return Decision(
            False,
            f"The run is already {current.state_type.value.title()}, a final state; retry it "
            "(a new attempt) or force the transition to change it.",
        )
    if same_attempt and proposed.state_timestamp < current.state_timestamp:
        return Decision(
            False,
            "Stale transition: the run's current state is newer than the proposed one.",
        )
    return Decision(True, "Accepted.")


def run_upsert_guard(table: str, incoming: str = "excluded") -> str:
    """SQL for `decide` without `force`, as an upsert's `DO UPDATE ... WHERE` clause.

    `table` is the run table's name (its current row), `incoming` the proposed
    row's alias. Works on SQLite and PostgreSQL. A row that the guard turns
    down is left as it is: the write of the rest of the batch goes on.
    """
    terminal = ", ".join(f"'{name}'" for name in _TERMINAL_NAMES)
    return (
        f"({incoming}.run_count > {table}.run_count OR ("
        f"{incoming}.run_count = {table}.run_count "
        f"AND {table}.state_type NOT IN ({terminal}) "
        f"AND {incoming}.state_timestamp >= {table}.state_timestamp))"
    )
