"""staff tasks: inboxes, follow-ups, SLA, escalation

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_task_settings",
        sa.Column("workspace_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("config", sa.JSON(), nullable=True),
        sa.Column("follow_up_done_on", sa.Date(), nullable=True),
        sa.Column("birthday_done_on", sa.Date(), nullable=True),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_staff_task_settings_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_staff_task_settings")),
    )
    op.create_table(
        "staff_task",
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "follow_up",
                "birthday",
                "journey",
                "unanswered",
                "manual",
                name="taskkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("contact_id", sa.BigInteger(), nullable=True),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("source_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("status", sa.Enum("open", "done", name="taskstatus", native_enum=False, length=10), nullable=False),
        sa.Column("due_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("first_due_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("snoozed_until", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("handed_over_from_id", sa.BigInteger(), nullable=True),
        sa.Column("handed_over_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column(
            "escalation",
            sa.Enum("escalated", "unescalatable", name="escalation", native_enum=False, length=20),
            nullable=True,
        ),
        sa.Column("escalated_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("escalated_to_id", sa.BigInteger(), nullable=True),
        sa.Column("completed_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("completed_by_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "outcome", sa.Enum("completed", "answered", name="taskoutcome", native_enum=False, length=20), nullable=True
        ),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["completed_by_id"], ["staff.id"], name=op.f("fk_staff_task_completed_by_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_staff_task_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["escalated_to_id"], ["staff.id"], name=op.f("fk_staff_task_escalated_to_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["handed_over_from_id"],
            ["staff.id"],
            name=op.f("fk_staff_task_handed_over_from_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_task_staff_id_staff"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_staff_task_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_task")),
        sa.UniqueConstraint("workspace_id", "source_key", name=op.f("uq_staff_task_workspace_id_source_key")),
    )
    with op.batch_alter_table("staff_task", schema=None) as batch_op:
        batch_op.create_index("ix_staff_task_contact_id", ["contact_id"], unique=False)
    with op.batch_alter_table("staff_task", schema=None) as batch_op:
        batch_op.create_index("ix_staff_task_escalated_to_id", ["escalated_to_id"], unique=False)
    with op.batch_alter_table("staff_task", schema=None) as batch_op:
        batch_op.create_index(
            "ix_staff_task_ws_staff_status_due", ["workspace_id", "staff_id", "status", "due_at"], unique=False
        )
    with op.batch_alter_table("staff_task", schema=None) as batch_op:
        batch_op.create_index("ix_staff_task_ws_status_due", ["workspace_id", "status", "due_at"], unique=False)
    op.create_table(
        "staff_task_awaiting_reply",
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("received_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=False),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact.id"],
            name=op.f("fk_staff_task_awaiting_reply_contact_id_contact"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_task_awaiting_reply_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_staff_task_awaiting_reply_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_staff_task_awaiting_reply")),
    )
    with op.batch_alter_table("staff_task_awaiting_reply", schema=None) as batch_op:
        batch_op.create_index(
            "ix_staff_task_awaiting_reply_ws_received_at", ["workspace_id", "received_at"], unique=False
        )
    op.create_table(
        "staff_task_log",
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "created",
                "completed",
                "answered",
                "snoozed",
                "handed_over",
                "escalated",
                "unescalatable",
                name="taskaction",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("actor_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("from_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("to_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_staff_id"], ["staff.id"], name=op.f("fk_staff_task_log_actor_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["from_staff_id"], ["staff.id"], name=op.f("fk_staff_task_log_from_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["staff_task.id"], name=op.f("fk_staff_task_log_task_id_staff_task"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["to_staff_id"], ["staff.id"], name=op.f("fk_staff_task_log_to_staff_id_staff"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_staff_task_log_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_task_log")),
    )
    with op.batch_alter_table("staff_task_log", schema=None) as batch_op:
        batch_op.create_index("ix_staff_task_log_task_id", ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_task_log", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_task_log_task_id")
    op.drop_table("staff_task_log")
    with op.batch_alter_table("staff_task_awaiting_reply", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_task_awaiting_reply_ws_received_at")
    op.drop_table("staff_task_awaiting_reply")
    with op.batch_alter_table("staff_task", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_task_ws_status_due")
    with op.batch_alter_table("staff_task", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_task_ws_staff_status_due")
    with op.batch_alter_table("staff_task", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_task_escalated_to_id")
    with op.batch_alter_table("staff_task", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_task_contact_id")
    op.drop_table("staff_task")
    op.drop_table("staff_task_settings")
