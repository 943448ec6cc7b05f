"""Console pages under /console/tasks."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
