"""wecom_app_message: app messages (应用消息) to staff, queued with their job (outbox); the digest's day

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-23 16:41:53.305158
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wecom_app_message",
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("userid", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column(
            "status",
            sa.Enum("queued", "sent", "failed", "skipped", name="appmessagestatus", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("call_started_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("sent_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("msgid", sa.String(length=64), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_wecom_app_message_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_wecom_app_message_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wecom_app_message")),
        sa.UniqueConstraint("workspace_id", "dedupe_key", name=op.f("uq_wecom_app_message_workspace_id_dedupe_key")),
    )
    with op.batch_alter_table("wecom_app_message", schema=None) as batch_op:
        batch_op.create_index("ix_wecom_app_message_staff_created_at", ["staff_id", "created_at"], unique=False)
        batch_op.create_index("ix_wecom_app_message_ws_created_at", ["workspace_id", "created_at"], unique=False)

    with op.batch_alter_table("staff_task_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest_done_on", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_task_settings", schema=None) as batch_op:
        batch_op.drop_column("digest_done_on")
    with op.batch_alter_table("wecom_app_message", schema=None) as batch_op:
        batch_op.drop_index("ix_wecom_app_message_ws_created_at")
        batch_op.drop_index("ix_wecom_app_message_staff_created_at")

    op.drop_table("wecom_app_message")
