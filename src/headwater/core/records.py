"""A batch of records, the unit the recorder hands to a backend in one write.

Rows are tuples in the column order of `headwater.store.columns`. Ids are
32-digit hex strings (UUIDs in the embedded store's own format); state types
are `StateType` members, which are `str`. Runs are keyed by id so that several
transitions of one run between two flushes collapse into one upsert of its
latest row.
"""

from __future__ import annotations

import dataclasses
from typing import Any

Row = tuple[Any, ...]


@dataclasses.dataclass(slots=True)
class Batch:
    flows: dict[str, Row] = dataclasses.field(default_factory=dict)
    flow_runs: dict[str, Row] = dataclasses.field(default_factory=dict)
    task_runs: dict[str, Row] = dataclasses.field(default_factory=dict)
    states: list[Row] = dataclasses.field(default_factory=list)
    logs: list[Row] = dataclasses.field(default_factory=list)
    #: Events in `columns.EVENT` order (`received` is set by whoever writes them).
    events: list[Row] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.flows)
            + len(self.flow_runs)
            + len(self.task_runs)
            + len(self.states)
            + len(self.logs)
            + len(self.events)
        )

    def merge(self, other: Batch) -> None:
        """Add `other`'s records after this batch's (later run rows win)."""
        self.flows.update(other.flows)
        self.flow_runs.update(other.flow_runs)
        self.task_runs.update(other.task_runs)
        self.states.extend(other.states)
        self.logs.extend(other.logs)
        self.events.extend(other.events)
