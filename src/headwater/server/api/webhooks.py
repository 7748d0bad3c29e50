"""The webhooks API (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["webhooks"])
#: `POST /hooks/<slug>`, mounted at the root (not under /api).
hooks_router = APIRouter(tags=["webhooks"])
