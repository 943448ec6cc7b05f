"""recommendations: user portraits (decayed affinity per content tag), seen items, reach, settings

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recommend_settings",
        sa.Column("workspace_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_recommend_settings_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_recommend_settings")),
    )
    op.create_table(
        "contact_content_affinity",
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("content_tag_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("as_of_day", sa.Date(), nullable=False),
        sa.Column("level", sa.Float(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_contact_content_affinity_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["content_tag_id"],
            ["content_tag.id"],
            name=op.f("fk_contact_content_affinity_content_tag_id_content_tag"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_contact_content_affinity_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "content_tag_id", name=op.f("pk_contact_content_affinity")),
    )
    with op.batch_alter_table("contact_content_affinity", schema=None) as batch_op:
        batch_op.create_index(
            "ix_contact_content_affinity_ws_tag_level", ["workspace_id", "content_tag_id", "level"], unique=False
        )
    op.create_table(
        "contact_content_seen",
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("content_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("last_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_contact_content_seen_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["content_item.id"],
            name=op.f("fk_contact_content_seen_content_id_content_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_contact_content_seen_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", "content_id", name=op.f("pk_contact_content_seen")),
    )
    with op.batch_alter_table("contact_content_seen", schema=None) as batch_op:
        batch_op.create_index("ix_contact_content_seen_content_id", ["content_id"], unique=False)
    op.create_table(
        "content_reach",
        sa.Column("content_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("viewers", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["content_item.id"],
            name=op.f("fk_content_reach_content_id_content_item"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_content_reach_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("content_id", name=op.f("pk_content_reach")),
    )
    with op.batch_alter_table("content_reach", schema=None) as batch_op:
        batch_op.create_index("ix_content_reach_workspace_id", ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("content_reach", schema=None) as batch_op:
        batch_op.drop_index("ix_content_reach_workspace_id")
    op.drop_table("content_reach")
    with op.batch_alter_table("contact_content_seen", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_content_seen_content_id")
    op.drop_table("contact_content_seen")
    with op.batch_alter_table("contact_content_affinity", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_content_affinity_ws_tag_level")
    op.drop_table("contact_content_affinity")
    op.drop_table("recommend_settings")
