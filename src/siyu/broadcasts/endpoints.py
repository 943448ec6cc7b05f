"""/api/v1/broadcasts routes."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["broadcasts"])
