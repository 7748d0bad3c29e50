"""Errors of the client: what a user sees when a server cannot be reached.

They live in `headwater.exceptions` with every other error; re-exported here.
"""

from __future__ import annotations

from headwater.exceptions import RecordsNotDelivered

__all__ = ["RecordsNotDelivered"]
