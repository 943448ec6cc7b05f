"""Console pages under /console/journeys."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
