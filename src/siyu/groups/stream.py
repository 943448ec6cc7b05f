"""Group membership from the event stream: `group.joined` / `group.left` (sent by integrators, or mapped
from WeCom change_external_chat add_member / del_member callbacks) and `contact.merged`.

The consumer reads a workspace's events in sequence order after its own cursor ("groups" in
`stream_cursor`) and commits the memberships, the member counts and the cursor together, so a crash
leaves nothing counted twice. When a join fills the last open group of a code with a template, the
next group is opened at once, so staff can create it in WeCom before the next scan arrives.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.db import Database
from siyu.events import cursors
from siyu.groups import repository, service
from siyu.groups.models import ChatGroup, GroupCodeStatus

CURSOR = "groups"
BATCH_EVENTS = 5_000
TYPES = ("group.joined", "group.left", "contact.merged")


def step(session: Session, workspace_id: int, *, batch: int = BATCH_EVENTS) -> int:
    """Applies up to `batch` membership events after the cursor. Returns events read (0: up to date).

    The caller commits.
    """
    read = cursors.read_next(session, CURSOR, workspace_id, TYPES, batch)
    if read is None:
        return 0
    touched: set[int] = set()
    groups: dict[str, ChatGroup | None] = {}
    for kind, contact_id, at, raw_props, _seq in read.rows:
        props = raw_props or {}
        if kind == "contact.merged":
            merged = props.get("merged_contact_id")
            if isinstance(merged, int):
                touched |= service.move_memberships(session, merged, contact_id)
            continue
        key = props.get("group_id")
        if key is None or str(key) == "":
            continue
        key = str(key)
        if key not in groups:
            name = props.get("group_name")
            groups[key] = service.group_for_key(session, workspace_id, key, name if isinstance(name, str) else None)
        group = groups[key]
        if group is None:
            continue
        if kind == "group.joined":
            service.joined(session, group, contact_id, at)
        else:
            service.left(session, group, contact_id, at)
        touched.add(group.id)
    service.recount(session, touched)
    _open_ahead(session, workspace_id, touched)
    done = read.advance()
    session.flush()
    return done


def _open_ahead(session: Session, workspace_id: int, group_ids: set[int]) -> None:
    """Codes whose groups just filled up open their next group from the template."""
    if not group_ids:
        return
    code_ids = set(
        session.scalars(select(ChatGroup.code_id).where(ChatGroup.id.in_(group_ids), ChatGroup.code_id.is_not(None)))
    )
    for code_id in sorted(i for i in code_ids if i is not None):
        code = service.get_code(session, workspace_id, code_id, for_update=True)
        if not (code.status is GroupCodeStatus.active and code.template_name):
            continue
        if service.current_of(repository.groups_of_code(session, code.id), code) is None:
            service.open_from_template(session, code)


def run_pending(db: Database, *, max_steps: int = 20) -> int:
    return cursors.run_behind(db, CURSOR, step, max_steps=max_steps)


def catch_up(db: Database) -> int:
    total = 0
    while (done := run_pending(db)) > 0:
        total += done
    return total
