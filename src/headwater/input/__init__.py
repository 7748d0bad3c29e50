"""Typed input for flow runs: what a paused run waits for, and values sent between runs.

    from headwater.input import RunInput, receive_input, send_input

    class Approval(RunInput):
        approved: bool

See docs/pause-and-input.md.
"""

from __future__ import annotations

from headwater.input._messages import GetInputHandler, ReceivedInput, receive_input, send_input
from headwater.input._run_input import RunInput, RunInputMetadata

__all__ = [
    "GetInputHandler",
    "ReceivedInput",
    "RunInput",
    "RunInputMetadata",
    "receive_input",
    "send_input",
]
