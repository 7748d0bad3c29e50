"""The Headwater server: REST API over the store, background services.

Start one with `headwater server start`; build the ASGI app with `create_app`.
Nothing on the SDK's import path imports this package.
"""

from __future__ import annotations

from headwater.server.app import create_app

__all__ = ["create_app"]
