"""script library: the record of each use of a script

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "script_use",
        sa.Column("content_id", sa.BigInteger(), nullable=False),
        sa.Column("answer_index", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("api_key_id", sa.BigInteger(), nullable=True),
        sa.Column("used_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_key.id"], name=op.f("fk_script_use_api_key_id_api_key"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_script_use_contact_id_contact"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content_item.id"], name=op.f("fk_script_use_content_id_content_item"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_script_use_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_script_use_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_script_use")),
    )
    with op.batch_alter_table("script_use", schema=None) as batch_op:
        batch_op.create_index("ix_script_use_contact_id", ["contact_id"], unique=False)
        batch_op.create_index("ix_script_use_content_id_used_at", ["content_id", "used_at"], unique=False)
        batch_op.create_index("ix_script_use_workspace_id_used_at", ["workspace_id", "used_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("script_use", schema=None) as batch_op:
        batch_op.drop_index("ix_script_use_workspace_id_used_at")
        batch_op.drop_index("ix_script_use_content_id_used_at")
        batch_op.drop_index("ix_script_use_contact_id")
    op.drop_table("script_use")
