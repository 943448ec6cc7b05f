"""journeys: definitions, versions, enrolments with timers, step numbers

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
