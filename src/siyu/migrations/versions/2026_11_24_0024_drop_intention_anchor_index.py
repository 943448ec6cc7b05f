"""contact_intention loses its (workspace_id, anchor_day) index

Every pipeline step rewrites the kept intention row of nearly every contact it touches, and at a
million contacts each of those rewrites also moved an entry of this index: about 5,500 more pages
written per 20,000-event step. Its only readers were the hourly full run's two workspace-wide passes
(the latest anchor day, the rows whose anchor left the window), which scan the table instead (tens of
milliseconds at a million contacts).

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-24 13:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_contact_intention_ws_anchor", table_name="contact_intention")


def downgrade() -> None:
    op.create_index("ix_contact_intention_ws_anchor", "contact_intention", ["workspace_id", "anchor_day"])
