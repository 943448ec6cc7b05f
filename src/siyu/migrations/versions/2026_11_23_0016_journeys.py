"""journeys: definitions, immutable versions, enrolments with timers, per-contact entry rows, step counters

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "journey",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column(
            "status",
            sa.Enum("draft", "active", "paused", "archived", name="journeystatus", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("draft", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("trigger_kind", sa.String(length=20), nullable=True),
        sa.Column("next_fire_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("start_seq", sa.BigInteger(), nullable=False),
        sa.Column("activated_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("created_by_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_staff_id"],
            ["staff.id"],
            name=op.f("fk_journey_created_by_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_journey_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_journey_workspace_id_name")),
    )
    with op.batch_alter_table("journey", schema=None) as batch_op:
        batch_op.create_index("ix_journey_status_next_fire_at", ["status", "next_fire_at"], unique=False)

    op.create_table(
        "journey_contact",
        sa.Column("journey_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("enrolments", sa.Integer(), nullable=False),
        sa.Column("active_enrolment_id", sa.BigInteger(), nullable=True),
        sa.Column("last_entered_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("last_exited_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_journey_contact_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journey.id"], name=op.f("fk_journey_contact_journey_id_journey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_journey_contact_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("journey_id", "contact_id", name=op.f("pk_journey_contact")),
    )
    with op.batch_alter_table("journey_contact", schema=None) as batch_op:
        batch_op.create_index("ix_journey_contact_contact_id", ["contact_id"], unique=False)

    op.create_table(
        "journey_step_stat",
        sa.Column("journey_id", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("arrived", sa.BigInteger(), nullable=False),
        sa.Column("passed", sa.BigInteger(), nullable=False),
        sa.Column("exited", sa.BigInteger(), nullable=False),
        sa.Column("goal", sa.BigInteger(), nullable=False),
        sa.Column("sent", sa.BigInteger(), nullable=False),
        sa.Column("held", sa.BigInteger(), nullable=False),
        sa.Column("skipped", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("withheld", sa.BigInteger(), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journey.id"], name=op.f("fk_journey_step_stat_journey_id_journey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_journey_step_stat_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("journey_id", "step", name=op.f("pk_journey_step_stat")),
    )
    op.create_table(
        "journey_version",
        sa.Column("journey_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("published_by_staff_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", siyu.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journey.id"], name=op.f("fk_journey_version_journey_id_journey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["published_by_staff_id"],
            ["staff.id"],
            name=op.f("fk_journey_version_published_by_staff_id_staff"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_journey_version_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_version")),
        sa.UniqueConstraint("journey_id", "version", name=op.f("uq_journey_version_journey_id_version")),
    )
    op.create_table(
        "journey_enrolment",
        sa.Column("journey_id", sa.BigInteger(), nullable=False),
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "completed", "exited", name="enrolmentstatus", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("waiting", sa.Boolean(), nullable=False),
        sa.Column("due_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("wait_event", sa.String(length=64), nullable=True),
        sa.Column("wait_seq", sa.BigInteger(), nullable=True),
        sa.Column("event_matched", sa.Boolean(), nullable=False),
        sa.Column("entry_seq", sa.BigInteger(), nullable=False),
        sa.Column("arm", sa.Enum("treated", "holdout", name="arm", native_enum=False, length=10), nullable=True),
        sa.Column("trigger", sa.String(length=100), nullable=True),
        sa.Column("entered_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("ended_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("exit_reason", sa.String(length=20), nullable=True),
        sa.Column("goal_at", siyu.db.UTCDateTime(), nullable=True),
        sa.Column("live_contact_id", sa.BigInteger(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contact.id"], name=op.f("fk_journey_enrolment_contact_id_contact"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["journey_id"], ["journey.id"], name=op.f("fk_journey_enrolment_journey_id_journey"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["journey_version.id"],
            name=op.f("fk_journey_enrolment_version_id_journey_version"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspace.id"],
            name=op.f("fk_journey_enrolment_workspace_id_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_enrolment")),
        sa.UniqueConstraint(
            "journey_id", "live_contact_id", name=op.f("uq_journey_enrolment_journey_id_live_contact_id")
        ),
    )
    with op.batch_alter_table("journey_enrolment", schema=None) as batch_op:
        batch_op.create_index("ix_journey_enrolment_contact_id_status", ["contact_id", "status"], unique=False)
        batch_op.create_index("ix_journey_enrolment_due_at_id", ["due_at", "id"], unique=False)
        batch_op.create_index(
            "ix_journey_enrolment_journey_id_status_step", ["journey_id", "status", "step"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("journey_enrolment", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_enrolment_journey_id_status_step")
        batch_op.drop_index("ix_journey_enrolment_due_at_id")
        batch_op.drop_index("ix_journey_enrolment_contact_id_status")

    op.drop_table("journey_enrolment")
    op.drop_table("journey_version")
    op.drop_table("journey_step_stat")
    with op.batch_alter_table("journey_contact", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_contact_contact_id")

    op.drop_table("journey_contact")
    with op.batch_alter_table("journey", schema=None) as batch_op:
        batch_op.drop_index("ix_journey_status_next_fire_at")

    op.drop_table("journey")
