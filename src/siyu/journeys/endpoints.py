"""/api/v1/journeys routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["journeys"])
