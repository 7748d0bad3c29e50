"""Run loggers: `get_run_logger()` inside a flow or task run.

Records go to the console and to the run store, linked to the run, so
`headwater flow-run logs <id>` shows them later.
"""

from __future__ import annotations

from headwater.logging.run_logger import get_run_logger

__all__ = ["get_run_logger"]
