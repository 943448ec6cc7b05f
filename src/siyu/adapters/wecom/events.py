"""Decrypted WeCom callback XML → typed callbacks → siyu events (the shape POST /api/v1/events takes).

Callbacks read (企业微信 客户联系 事件, developer.work.weixin.qq.com/document/path/92130 and 92277):
- `change_external_contact`: add_external_contact / add_half_external_contact (UserID, ExternalUserID,
  State, WelcomeCode), edit_external_contact, del_external_contact (staff deleted the customer),
  del_follow_user (the customer deleted the staff member), transfer_fail;
- `change_external_chat`: create / update (UpdateDetail add_member / del_member / change_owner / ...,
  JoinScene, QuitScene, MemChangeList) / dismiss.
Anything else is kept as `UnknownCallback` with all its top-level fields.

Event ids are derived from the callback's content (corp, kind, people, CreateTime), so WeCom redelivering
the same callback (it retries when we answer slowly) yields the same ids and siyu stores it once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from siyu.adapters.wecom._xml import parse_xml
from siyu.adapters.wecom.errors import MalformedCallback

# External contacts' ids start with "wm" (WeChat users) or "wo" (WeCom users of other corps);
# group member lists mix them with staff userids.
EXTERNAL_ID_PREFIXES = ("wm", "wo")


@dataclass(frozen=True)
class CallbackBase:
    corp_id: str  # ToUserName
    create_time: int  # CreateTime, seconds since the epoch

    @property
    def occurred_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.create_time, dt.UTC)


@dataclass(frozen=True)
class ExternalContactAdded(CallbackBase):
    user_id: str
    external_user_id: str
    state: str | None = None
    welcome_code: str | None = None
    half: bool = False  # add_half_external_contact: added without the staff member's confirmation yet


@dataclass(frozen=True)
class ExternalContactEdited(CallbackBase):
    user_id: str
    external_user_id: str


@dataclass(frozen=True)
class ExternalContactDeletedByStaff(CallbackBase):
    """del_external_contact: the staff member deleted the customer."""

    user_id: str
    external_user_id: str
    source: str | None = None  # e.g. DELETE_BY_TRANSFER when removed by a transfer


@dataclass(frozen=True)
class StaffDeletedByContact(CallbackBase):
    """del_follow_user: the customer deleted the staff member."""

    user_id: str
    external_user_id: str


@dataclass(frozen=True)
class TransferFailed(CallbackBase):
    user_id: str
    external_user_id: str
    fail_reason: str | None = None


@dataclass(frozen=True)
class ExternalChatChanged(CallbackBase):
    chat_id: str
    change_type: str  # create | update | dismiss
    update_detail: str | None = None  # add_member | del_member | change_owner | change_name | change_notice
    join_scene: int | None = None
    quit_scene: int | None = None
    member_change_count: int | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnknownCallback(CallbackBase):
    msg_type: str
    event: str | None
    change_type: str | None
    fields: dict[str, str] = field(default_factory=dict)


WeComCallback = (
    ExternalContactAdded
    | ExternalContactEdited
    | ExternalContactDeletedByStaff
    | StaffDeletedByContact
    | TransferFailed
    | ExternalChatChanged
    | UnknownCallback
)


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise MalformedCallback(f"expected a number, got {value!r}") from exc


def parse_callback(xml: bytes | str) -> WeComCallback:
    """Parse a decrypted callback (the plaintext XML). Unsafe or malformed XML raises MalformedCallback."""
    root = parse_xml(xml)
    flat = {child.tag: (child.text or "").strip() for child in root if len(child) == 0}
    corp_id = flat.get("ToUserName") or flat.get("AuthCorpId") or ""
    create_time = _int(flat.get("CreateTime") or flat.get("TimeStamp")) or 0
    event = flat.get("Event") or flat.get("InfoType")
    change = flat.get("ChangeType")

    def need(name: str) -> str:
        value = flat.get(name)
        if not value:
            raise MalformedCallback(f"{event}/{change} callback lacks <{name}>")
        return value

    if event == "change_external_contact":
        contact_change = _contact_change(corp_id, create_time, change, flat, need)
        if contact_change is not None:
            return contact_change
    if event == "change_external_chat" and change in ("create", "update", "dismiss"):
        members_node = root.find("MemChangeList")
        members = tuple(
            (item.text or "").strip() for item in (members_node if members_node is not None else []) if item.text
        )
        return ExternalChatChanged(
            corp_id,
            create_time,
            chat_id=need("ChatId"),
            change_type=change,
            update_detail=flat.get("UpdateDetail") or None,
            join_scene=_int(flat.get("JoinScene")),
            quit_scene=_int(flat.get("QuitScene")),
            member_change_count=_int(flat.get("MemChangeCnt")),
            members=members,
        )
    return UnknownCallback(
        corp_id,
        create_time,
        msg_type=flat.get("MsgType") or "",
        event=event,
        change_type=change,
        fields=flat,
    )


def _contact_change(
    corp_id: str, create_time: int, change: str | None, flat: dict[str, str], need: Callable[[str], str]
) -> WeComCallback | None:
    if change in ("add_external_contact", "add_half_external_contact"):
        return ExternalContactAdded(
            corp_id,
            create_time,
            user_id=need("UserID"),
            external_user_id=need("ExternalUserID"),
            state=flat.get("State") or None,
            welcome_code=flat.get("WelcomeCode") or None,
            half=change == "add_half_external_contact",
        )
    simple: dict[str, type[ExternalContactEdited | StaffDeletedByContact]] = {
        "edit_external_contact": ExternalContactEdited,
        "del_follow_user": StaffDeletedByContact,
    }
    if change in simple:
        return simple[change](corp_id, create_time, need("UserID"), need("ExternalUserID"))
    if change == "del_external_contact":
        return ExternalContactDeletedByStaff(
            corp_id, create_time, need("UserID"), need("ExternalUserID"), flat.get("Source") or None
        )
    if change == "transfer_fail":
        reason = flat.get("FailReason") or None
        return TransferFailed(corp_id, create_time, need("UserID"), need("ExternalUserID"), reason)
    return None


# --- mapping to siyu events ------------------------------------------------------------------------------

StateResolver = Callable[[str], str | None]
StaffResolver = Callable[[str], int | None]


def event_id(*parts: object) -> str:
    """A deterministic event id: the same callback always maps to the same id."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"wecom-{digest[:40]}"


def is_external_id(member_id: str) -> bool:
    return member_id.startswith(EXTERNAL_ID_PREFIXES)


def to_siyu_events(
    callback: WeComCallback,
    *,
    channel_code_for_state: StateResolver | None = None,
    staff_id_for_userid: StaffResolver | None = None,
) -> list[dict[str, Any]]:
    """Map one callback to the events it means (possibly none), as POST /api/v1/events items.

    `channel_code_for_state` turns a 「联系我」 state into the channel code it attributes to (default: the
    state is the code); `staff_id_for_userid` turns a WeCom userid into a siyu staff id (default: unknown,
    so only `wecom_userid` is recorded).
    """
    ts = callback.occurred_at.isoformat()

    def staff_props(user_id: str) -> dict[str, Any]:
        props: dict[str, Any] = {"wecom_userid": user_id}
        staff_id = staff_id_for_userid(user_id) if staff_id_for_userid else None
        if staff_id is not None:
            props["staff_id"] = staff_id
        return props

    if isinstance(callback, ExternalContactAdded):
        cb_key = event_id(callback.corp_id, callback.user_id, callback.external_user_id, callback.create_time)
        props = staff_props(callback.user_id)
        if callback.state:
            code = channel_code_for_state(callback.state) if channel_code_for_state else callback.state
            props["wecom_state"] = callback.state
            if code:
                props["channel_code"] = code
        if callback.half:
            props["wecom_half_added"] = True
        return [
            {
                "id": event_id(cb_key, "add"),
                "type": "contact.added",
                "contact": {"wecom_external_userid": callback.external_user_id},
                "timestamp": ts,
                "properties": props,
            }
        ]
    if isinstance(callback, ExternalContactDeletedByStaff | StaffDeletedByContact):
        by_staff = isinstance(callback, ExternalContactDeletedByStaff)
        kind = "contact.deleted_by_staff" if by_staff else "contact.deleted_staff"
        cb_key = event_id(callback.corp_id, callback.user_id, callback.external_user_id, callback.create_time)
        props = staff_props(callback.user_id)
        if isinstance(callback, ExternalContactDeletedByStaff) and callback.source:
            props["wecom_source"] = callback.source
        return [
            {
                "id": event_id(cb_key, kind),
                "type": kind,
                "contact": {"wecom_external_userid": callback.external_user_id},
                "timestamp": ts,
                "properties": props,
            }
        ]
    if isinstance(callback, ExternalChatChanged) and callback.update_detail in ("add_member", "del_member"):
        joined = callback.update_detail == "add_member"
        kind = "group.joined" if joined else "group.left"
        events = []
        for member in callback.members:
            if not is_external_id(member):
                continue  # staff joining their own group is not a customer event
            props = {"group_id": callback.chat_id}
            scene = callback.join_scene if joined else callback.quit_scene
            if scene is not None:
                props["wecom_scene"] = scene
            events.append(
                {
                    "id": event_id(callback.corp_id, kind, callback.chat_id, member, callback.create_time),
                    "type": kind,
                    "contact": {"wecom_external_userid": member},
                    "timestamp": ts,
                    "properties": props,
                }
            )
        return events
    # edit_external_contact, transfer_fail, group create/dismiss/renames and unknown callbacks carry no
    # customer event siyu records; the caller may still act on them (refresh a profile, alert staff).
    return []
