"""Blocks: typed, named configuration stored by the backend. Headwater has one, `Secret`
(`headwater.blocks.system`), with Prefect 3's interface."""

from __future__ import annotations

__all__: list[str] = []
