"""groups (社群) by purpose, their members and helpers, group codes (群活码) and their scans per day

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-23 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "group_code",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column(
            "status", sa.Enum("active", "paused", name="groupcodestatus", native_enum=False, length=10), nullable=False
        ),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("template_name", sa.String(length=100), nullable=True),
        sa.Column(
            "template_purpose",
            sa.Enum(
                "broadcast",
                "welfare",
                "training",
                "activity",
                "custom",
                name="grouppurpose",
                native_enum=False,
                length=20,
            ),
            nullable=True,
        ),
        sa.Column("template_label", sa.String(length=50), nullable=True),
        sa.Column("template_owner_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("template_capacity", sa.Integer(), nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_owner_staff_id"],
            ["staff.id"],
            name=op.f("fk_group_code_template_owner_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_group_code_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_code")),
        sa.UniqueConstraint("slug", name=op.f("uq_group_code_slug")),
    )
    op.create_index("ix_group_code_workspace_id", "group_code", ["workspace_id"], unique=False)
    op.create_table(
        "chat_group",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "purpose",
            sa.Enum(
                "broadcast",
                "welfare",
                "training",
                "activity",
                "custom",
                name="grouppurpose",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("purpose_label", sa.String(length=50), nullable=True),
        sa.Column(
            "status",
            sa.Enum("pending", "active", "archived", "dismissed", name="groupstatus", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("owner_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("wecom_chat_id", sa.String(length=64), nullable=True),
        sa.Column("join_url", sa.String(length=1000), nullable=True),
        sa.Column("code_id", sa.BigInteger(), nullable=True),
        sa.Column("code_position", sa.Integer(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("from_template", sa.Boolean(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"], ["group_code.id"], name=op.f("fk_chat_group_code_id_group_code"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["owner_staff_id"], ["staff.id"], name=op.f("fk_chat_group_owner_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_chat_group_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_group")),
    )
    op.create_index("ix_chat_group_code_id_code_position", "chat_group", ["code_id", "code_position"], unique=False)
    op.create_index(
        "ix_chat_group_workspace_id_wecom_chat_id", "chat_group", ["workspace_id", "wecom_chat_id"], unique=True
    )
    op.create_table(
        "group_code_day",
        sa.Column("code_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("scans", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code_id"], ["group_code.id"], name=op.f("fk_group_code_day_code_id_group_code"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_group_code_day_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("code_id", "day", name=op.f("pk_group_code_day")),
    )
    op.create_table(
        "chat_group_helper",
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["chat_group.id"], name=op.f("fk_chat_group_helper_group_id_chat_group"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_chat_group_helper_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_chat_group_helper_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "staff_id", name=op.f("pk_chat_group_helper")),
    )
    op.create_table(
        "chat_group_member",
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("joined_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("left_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_chat_group_member_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["group_id"], ["chat_group.id"], name=op.f("fk_chat_group_member_group_id_chat_group"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_chat_group_member_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "contact_id", name=op.f("pk_chat_group_member")),
    )
    op.create_index("ix_chat_group_member_contact_id", "chat_group_member", ["contact_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_chat_group_member_contact_id", table_name="chat_group_member")
    op.drop_table("chat_group_member")
    op.drop_table("chat_group_helper")
    op.drop_table("group_code_day")
    op.drop_index("ix_chat_group_workspace_id_wecom_chat_id", table_name="chat_group")
    op.drop_index("ix_chat_group_code_id_code_position", table_name="chat_group")
    op.drop_table("chat_group")
    op.drop_index("ix_group_code_workspace_id", table_name="group_code")
    op.drop_table("group_code")
