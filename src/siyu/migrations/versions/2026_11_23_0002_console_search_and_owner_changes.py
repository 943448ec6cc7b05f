"""console: name search index, owner changes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_workspace_id_name",
            ["workspace_id", "name"],
            unique=False,
            postgresql_ops={"name": "varchar_pattern_ops"},
        )
    op.create_table(
        "owner_change",
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("from_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("to_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_api_key_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_api_key_id"],
            ["api_key.id"],
            name=op.f("fk_owner_change_actor_api_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["actor_staff_id"], ["staff.id"], name=op.f("fk_owner_change_actor_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_owner_change_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["from_staff_id"], ["staff.id"], name=op.f("fk_owner_change_from_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["to_staff_id"], ["staff.id"], name=op.f("fk_owner_change_to_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_owner_change_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owner_change")),
    )
    with op.batch_alter_table("owner_change", schema=None) as batch_op:
        batch_op.create_index("ix_owner_change_contact_id_created_at", ["contact_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("owner_change", schema=None) as batch_op:
        batch_op.drop_index("ix_owner_change_contact_id_created_at")
    op.drop_table("owner_change")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_workspace_id_name")
