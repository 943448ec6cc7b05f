"""broadcasts: audiences, schedules, WeCom confirmations

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcast",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "scheduled",
                "sending",
                "sent",
                "cancelled",
                "failed",
                name="broadcaststatus",
                native_enum=False,
                length=12,
            ),
            nullable=False,
        ),
        sa.Column(
            "audience_kind",
            sa.Enum("segment", "tags", "groups", name="audiencekind", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("segment_id", sa.BigInteger(), nullable=True),
        sa.Column("tag_ids", sa.JSON(), nullable=True),
        sa.Column("tag_match", sa.String(length=4), nullable=True),
        sa.Column("group_ids", sa.JSON(), nullable=True),
        sa.Column("content_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("welfare", sa.Boolean(), nullable=False),
        sa.Column("quiet_hours", sa.String(length=10), nullable=False),
        sa.Column("webhook_url", sa.String(length=1000), nullable=True),
        sa.Column("run_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("started_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("finished_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("cancelled_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("created_by_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("plan_total", sa.Integer(), nullable=True),
        sa.Column("plan_eligible", sa.Integer(), nullable=True),
        sa.Column("plan_excluded", sa.JSON(), nullable=True),
        sa.Column("planned_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["content_id"], ["content_item.id"], name=op.f("fk_broadcast_content_id_content_item"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_staff_id"],
            ["staff.id"],
            name=op.f("fk_broadcast_created_by_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"], ["segment.id"], name=op.f("fk_broadcast_segment_id_segment"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_broadcast_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast")),
    )
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.create_index("ix_broadcast_status_run_at", ["status", "run_at"], unique=False)
        batch_op.create_index("ix_broadcast_workspace_id_created_at", ["workspace_id", "created_at"], unique=False)

    op.create_table(
        "broadcast_recipient",
        sa.Column("broadcast_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
            name=op.f("fk_broadcast_recipient_broadcast_id_broadcast"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_broadcast_recipient_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_broadcast_recipient_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "contact_id", name=op.f("pk_broadcast_recipient")),
    )
    op.create_table(
        "broadcast_wecom_target",
        sa.Column("broadcast_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("external_userid", sa.String(length=64), nullable=False),
        sa.Column("result", sa.SmallInteger(), nullable=True),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
            name=op.f("fk_broadcast_wecom_target_broadcast_id_broadcast"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_broadcast_wecom_target_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_broadcast_wecom_target_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_broadcast_wecom_target_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("broadcast_id", "contact_id", name=op.f("pk_broadcast_wecom_target")),
    )
    with op.batch_alter_table("broadcast_wecom_target", schema=None) as batch_op:
        batch_op.create_index(
            "ix_broadcast_wecom_target_broadcast_id_staff_id", ["broadcast_id", "staff_id"], unique=False
        )

    op.create_table(
        "broadcast_wecom_task",
        sa.Column("broadcast_id", sa.BigInteger(), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("chat_type", sa.String(length=10), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "creating",
                "created",
                "confirmed",
                "failed",
                "unknown",
                "cancelled",
                name="wecomtaskstatus",
                native_enum=False,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("contact_ids", sa.JSON(), nullable=True),
        sa.Column("group_ids", sa.JSON(), nullable=True),
        sa.Column("target_count", sa.Integer(), nullable=False),
        sa.Column("msgid", sa.String(length=64), nullable=True),
        sa.Column("attempted_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("handed_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("confirmed_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("checked_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("reminded_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("sent_count", sa.Integer(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["broadcast_id"],
            ["broadcast.id"],
            name=op.f("fk_broadcast_wecom_task_broadcast_id_broadcast"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_broadcast_wecom_task_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_broadcast_wecom_task_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_wecom_task")),
        sa.UniqueConstraint(
            "broadcast_id", "staff_id", "part", name=op.f("uq_broadcast_wecom_task_broadcast_id_staff_id_part")
        ),
    )
    with op.batch_alter_table("broadcast_wecom_task", schema=None) as batch_op:
        batch_op.create_index("ix_broadcast_wecom_task_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("broadcast_wecom_task", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_wecom_task_status")

    op.drop_table("broadcast_wecom_task")
    with op.batch_alter_table("broadcast_wecom_target", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_wecom_target_broadcast_id_staff_id")

    op.drop_table("broadcast_wecom_target")
    op.drop_table("broadcast_recipient")
    with op.batch_alter_table("broadcast", schema=None) as batch_op:
        batch_op.drop_index("ix_broadcast_workspace_id_created_at")
        batch_op.drop_index("ix_broadcast_status_run_at")

    op.drop_table("broadcast")
