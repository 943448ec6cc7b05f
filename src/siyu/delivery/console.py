"""Console pages under /console/delivery."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
