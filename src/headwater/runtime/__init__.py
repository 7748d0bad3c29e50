"""Facts about the run executing now: `runtime.flow_run.id`, `runtime.task_run.name`, ...

Each attribute is read when accessed; outside a run, ids are None and
collections empty, so code can use them without checking for a run first.
"""

from __future__ import annotations

from headwater.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
