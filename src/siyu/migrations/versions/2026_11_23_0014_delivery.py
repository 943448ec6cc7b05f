"""delivery: deliveries keyed (source, step, contact, entry), budgets, opt-outs, staff limits

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"], ["workspace.id"], name=op.f(f"fk_{table}_workspace_id_workspace"), ondelete="CASCADE"
    )


def _contact_fk(table: str, column: str = "contact_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], ["contact.id"], name=op.f(f"fk_{table}_{column}_contact"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "delivery_settings",
        sa.Column("workspace_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("webhook_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("webhook_secret_hint", sa.String(length=20), nullable=True),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        _workspace_fk("delivery_settings"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_delivery_settings")),
    )
    op.create_table(
        "delivery_staff_account",
        sa.Column("staff_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("started_on", sa.Date(), nullable=True),
        sa.Column("send_limit", sa.Integer(), nullable=True),
        sa.Column("add_limit", sa.Integer(), nullable=True),
        sa.Column("warmup_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_delivery_staff_account_staff_id_staff"), ondelete="CASCADE"
        ),
        _workspace_fk("delivery_staff_account"),
        sa.PrimaryKeyConstraint("staff_id", name=op.f("pk_delivery_staff_account")),
    )
    with op.batch_alter_table("delivery_staff_account", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_staff_account_workspace_id", ["workspace_id"], unique=False)
    op.create_table(
        "staff_send_day",
        sa.Column("staff_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_send_day_staff_id_staff"), ondelete="CASCADE"
        ),
        _workspace_fk("staff_send_day"),
        sa.PrimaryKeyConstraint("staff_id", "day", name=op.f("pk_staff_send_day")),
    )
    op.create_table(
        "contact_send_day",
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("welfare", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        _contact_fk("contact_send_day"),
        _workspace_fk("contact_send_day"),
        sa.PrimaryKeyConstraint("contact_id", "day", name=op.f("pk_contact_send_day")),
    )
    op.create_table(
        "delivery",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("step", sa.String(length=100), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("entry", sa.BigInteger(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("sandbox", "webhook", "email", "wecom", name="channel", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "sent",
                "held",
                "skipped",
                "failed",
                "unknown",
                name="deliverystatus",
                native_enum=False,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("retry_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("content_id", sa.BigInteger(), nullable=True),
        sa.Column("push_id", sa.BigInteger(), nullable=True),
        sa.Column("link", sa.String(length=100), nullable=True),
        sa.Column("staff_id", sa.BigInteger(), nullable=True),
        sa.Column("welfare", sa.Boolean(), nullable=False),
        sa.Column(
            "quiet_hours",
            sa.Enum("hold", "skip", name="quiethourspolicy", native_enum=False, length=4),
            nullable=False,
        ),
        sa.Column("webhook_url", sa.String(length=1000), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("budget_day", sa.Date(), nullable=True),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("sent_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("call_started_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        _contact_fk("delivery"),
        sa.ForeignKeyConstraint(
            ["content_id"],
            ["content_item.id"],
            name=op.f("fk_delivery_content_id_content_item"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_delivery_staff_id_staff"), ondelete="SET NULL"
        ),
        _workspace_fk("delivery"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery")),
        sa.UniqueConstraint(
            "workspace_id",
            "source",
            "step",
            "contact_id",
            "entry",
            name=op.f("uq_delivery_workspace_id_source_step_contact_id_entry"),
        ),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_contact_id_created_at", ["contact_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_delivery_held_retry_at",
            ["retry_at"],
            unique=False,
            sqlite_where=sa.text("status = 'held'"),
            postgresql_where=sa.text("status = 'held'"),
        )
        batch_op.create_index("ix_delivery_workspace_id_id", ["workspace_id", "id"], unique=False)
    op.create_table(
        "delivery_opt_out",
        sa.Column("contact_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        _contact_fk("delivery_opt_out"),
        _workspace_fk("delivery_opt_out"),
        sa.PrimaryKeyConstraint("contact_id", name=op.f("pk_delivery_opt_out")),
    )
    with op.batch_alter_table("delivery_opt_out", schema=None) as batch_op:
        batch_op.create_index(
            "ix_delivery_opt_out_workspace_id_created_at", ["workspace_id", "created_at"], unique=False
        )
    op.create_table(
        "sandbox_message",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("link", sa.String(length=100), nullable=True),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("opens_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("clicks_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("opened_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("clicked_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("pending_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        _contact_fk("sandbox_message"),
        sa.ForeignKeyConstraint(
            ["id"], ["delivery.id"], name=op.f("fk_sandbox_message_id_delivery"), ondelete="CASCADE"
        ),
        _workspace_fk("sandbox_message"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_message")),
    )
    with op.batch_alter_table("sandbox_message", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sandbox_message_pending_at",
            ["pending_at"],
            unique=False,
            sqlite_where=sa.text("pending_at IS NOT NULL"),
            postgresql_where=sa.text("pending_at IS NOT NULL"),
        )
        batch_op.create_index("ix_sandbox_message_workspace_id_id", ["workspace_id", "id"], unique=False)
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_contact_workspace_id_timezone",
            ["workspace_id", "timezone"],
            unique=False,
            sqlite_where=sa.text("timezone IS NOT NULL"),
            postgresql_where=sa.text("timezone IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index("ix_contact_workspace_id_timezone")
        batch_op.drop_column("timezone")
    with op.batch_alter_table("sandbox_message", schema=None) as batch_op:
        batch_op.drop_index("ix_sandbox_message_workspace_id_id")
        batch_op.drop_index("ix_sandbox_message_pending_at")
    op.drop_table("sandbox_message")
    with op.batch_alter_table("delivery_opt_out", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_opt_out_workspace_id_created_at")
    op.drop_table("delivery_opt_out")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_workspace_id_id")
        batch_op.drop_index("ix_delivery_held_retry_at")
        batch_op.drop_index("ix_delivery_contact_id_created_at")
    op.drop_table("delivery")
    op.drop_table("contact_send_day")
    op.drop_table("staff_send_day")
    with op.batch_alter_table("delivery_staff_account", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_staff_account_workspace_id")
    op.drop_table("delivery_staff_account")
    op.drop_table("delivery_settings")
