"""Many contacts at once, straight into the tables (executemany), for the crash test and the benchmark:
the API would take minutes for 100,000 and is not what they measure."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert, select

from siyu.contacts.models import Contact
from siyu.db import Database
from siyu.delivery.models import OptOut
from siyu.tags.models import ContactTag, Tag, TagGroup
from siyu.workspaces.service import create_workspace

CHUNK = 10_000


def seed(
    db: Database, count: int, *, opt_out_every: int = 0, now: dt.datetime, name: str = "压测品牌"
) -> tuple[int, int]:
    """A workspace with `count` contacts all tagged with one tag; every `opt_out_every`-th one opted out.
    Returns (workspace id, tag id)."""
    with db.transaction() as session:
        workspace = create_workspace(session, name)
        group = TagGroup(workspace_id=workspace.id, name="兴趣")
        session.add(group)
        session.flush()
        tag = Tag(workspace_id=workspace.id, group_id=group.id, name="考研")
        session.add(tag)
        session.flush()
        workspace_id, tag_id = workspace.id, tag.id
    done = 0
    while done < count:
        n = min(CHUNK, count - done)
        with db.transaction() as session:
            session.execute(
                insert(Contact),
                [
                    {
                        "workspace_id": workspace_id,
                        "name": f"客户{done + i}",
                        "attributes": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(n)
                ],
            )
            ids = list(
                session.scalars(
                    select(Contact.id).where(Contact.workspace_id == workspace_id).order_by(Contact.id.desc()).limit(n)
                )
            )
            session.execute(
                insert(ContactTag),
                [{"workspace_id": workspace_id, "contact_id": c, "tag_id": tag_id, "created_at": now} for c in ids],
            )
            if opt_out_every:
                session.execute(
                    insert(OptOut),
                    [
                        {"workspace_id": workspace_id, "contact_id": c, "source": "api", "created_at": now}
                        for c in ids
                        if c % opt_out_every == 0
                    ],
                )
        done += n
    return workspace_id, tag_id
