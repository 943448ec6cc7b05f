"""WeCom change_external_chat callbacks that are not member changes.

Member changes (update/add_member, update/del_member) already arrive as `group.joined` / `group.left`
events (see `siyu.adapters.wecom.events.to_siyu_events`) and reach groups through the event stream.
This handler does the rest, in the callback's transaction:
- create: the chat id becomes a group (custom purpose, to be classified) unless siyu knows it;
- dismiss: the group is marked dismissed and every member left at the callback's time.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from siyu.adapters.wecom.events import ExternalChatChanged
from siyu.groups import service
from siyu.groups.models import ChatGroupMember, GroupStatus


def on_external_chat(session: Session, workspace_id: int, callback: ExternalChatChanged) -> str:
    """Applies a group create/dismiss callback; returns what was done (for the callback log)."""
    if callback.change_type == "create":
        group = service.group_for_key(session, workspace_id, callback.chat_id)
        assert group is not None
        return f"group {group.id}"
    if callback.change_type == "dismiss":
        group = service.group_for_key(session, workspace_id, callback.chat_id, register=False)
        if group is None:
            return "unknown group"
        group.status = GroupStatus.dismissed
        session.execute(
            update(ChatGroupMember)
            .where(ChatGroupMember.group_id == group.id, ChatGroupMember.left_at.is_(None))
            .values(left_at=callback.occurred_at)
        )
        service.recount(session, [group.id])
        session.flush()
        return f"group {group.id} dismissed"
    return "member changes go through group.joined / group.left events"
