"""intention kept as a decayed level per contact (contact_intention) over a per-workspace floor day
(intention_basis): a full scoring run reads one row per contact instead of the window's daily counts

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-23 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Empty at first: the first full scoring run of each workspace folds its contacts.
    op.create_table(
        "contact_intention",
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("anchor_day", sa.Date(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_contact_intention_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_contact_intention_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_contact_intention")),
    )
    with op.batch_alter_table("contact_intention", schema=None) as batch_op:
        batch_op.create_index("ix_contact_intention_ws_anchor", ["workspace_id", "anchor_day"], unique=False)
    op.create_table(
        "intention_basis",
        sa.Column("workspace_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("floor_day", sa.Date(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_intention_basis_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_intention_basis")),
    )


def downgrade() -> None:
    op.drop_table("intention_basis")
    with op.batch_alter_table("contact_intention", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_intention_ws_anchor")
    op.drop_table("contact_intention")
