"""Console pages under /console/broadcasts."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
