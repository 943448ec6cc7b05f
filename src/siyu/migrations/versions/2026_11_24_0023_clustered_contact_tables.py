"""the user model's per-contact tables clustered by their primary key on SQLite (WITHOUT ROWID):
contact_event_stat, contact_event_day, contact_intention, contact_score and segment_member

A pipeline step reads and rewrites the rows of a few thousand contacts all over these tables. In a rowid
table each of a contact's rows is found through the primary-key index and then fetched from wherever
it was inserted; clustered, a contact's rows sit together on a page or two, and a full run reads them
in contact order without sorting. PostgreSQL has no such table option: nothing changes there.

Rebuilding copies each table once (on a million contacts, about a minute).

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-24 00:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

TABLES = ("contact_event_stat", "contact_event_day", "contact_intention", "contact_score", "segment_member")


def _recreate(with_rowid: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_with_rowid": with_rowid}):
            pass


def upgrade() -> None:
    _recreate(with_rowid=False)


def downgrade() -> None:
    _recreate(with_rowid=True)
