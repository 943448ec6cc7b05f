"""event_inbox: checked batches the API received, waiting for the drain; ingest_batch: what became of each

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-23 19:07:52.020186
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siyu.db

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_inbox",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.Column("received_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_inbox")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_event_inbox_batch_id")),
    )
    with op.batch_alter_table("event_inbox", schema=None) as batch_op:
        batch_op.create_index("ix_event_inbox_workspace_id_id", ["workspace_id", "id"], unique=False)

    op.create_table(
        "ingest_batch",
        sa.Column("batch_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.Column("received_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("stored_at", siyu.db.UTCDateTime(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("contacts_created", sa.Integer(), nullable=False),
        sa.Column("contacts_merged", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"], ["workspace.id"], name=op.f("fk_ingest_batch_workspace_id_workspace"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_batch")),
        sa.UniqueConstraint("batch_id", name=op.f("uq_ingest_batch_batch_id")),
    )
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.create_index("ix_ingest_batch_received_at", ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ingest_batch", schema=None) as batch_op:
        batch_op.drop_index("ix_ingest_batch_received_at")

    op.drop_table("ingest_batch")
    with op.batch_alter_table("event_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_event_inbox_workspace_id_id")

    op.drop_table("event_inbox")
