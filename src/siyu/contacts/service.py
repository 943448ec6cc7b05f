"""Contact use cases. Services never commit: the endpoint or job that called them does."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Select, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.computed.dirty import mark_dirty
from siyu.contacts import attributes as attrs
from siyu.contacts import repository
from siyu.contacts.identities import IdentityError, normalize
from siyu.contacts.merge import merge_contacts
from siyu.contacts.models import Contact, ContactMerge, Identity, Note, OwnerChange
from siyu.contacts.schemas import (
    ContactCreate,
    ContactRead,
    ContactUpdate,
    IdentityIn,
    IdentityRead,
    NoteCreate,
    TagBrief,
)
from siyu.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, validation_error
from siyu.kit.time import ensure_utc, utcnow
from siyu.staff.models import Staff


def birthday_mmdd(birthday: dt.date | None) -> int | None:
    return birthday.month * 100 + birthday.day if birthday else None


def get_contact(session: Session, principal: Principal, contact_id: int, *, for_update: bool = False) -> Contact:
    """The live profile for an id. An id merged away resolves to its survivor."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.workspace_id != principal.workspace_id:
        raise NotFound(f"contact {contact_id} not found in this workspace")
    if contact.merged_into_id is not None:
        contact = session.get(Contact, contact.merged_into_id)
        assert contact is not None
    owner_only = principal.owned_contacts_only
    if owner_only is not None and contact.owner_id != owner_only:
        # Not 403: a consultant must not learn which ids exist outside their own customers.
        raise NotFound(f"contact {contact_id} not found among your contacts")
    return contact


def to_read(session: Session, contacts: list[Contact]) -> list[ContactRead]:
    ids = [c.id for c in contacts]
    identities = repository.identities_by_contact(session, ids)
    tags = repository.tags_by_contact(session, ids)
    return [
        ContactRead.model_validate(
            {
                **{k: getattr(c, k) for k in ContactRead.model_fields if k not in ("identities", "tags")},
                "identities": [IdentityRead.model_validate(i) for i in identities.get(c.id, [])],
                "tags": [TagBrief.model_validate(t) for t in tags.get(c.id, [])],
            }
        )
        for c in contacts
    ]


def normalize_identities(items: list[IdentityIn], *, region: str, field: str = "identities") -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    problems: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            pairs.append((item.type, normalize(item.type, item.value, region=region)))
        except IdentityError as exc:
            problems.append({"field": f"{field}[{index}]", "reason": str(exc)})
    if problems:
        raise ValidationFailed("; ".join(f"{p['field']}: {p['reason']}" for p in problems), details=problems)
    return list(dict.fromkeys(pairs))


def _check_owner(session: Session, principal: Principal, owner_id: int | None) -> None:
    if owner_id is None:
        return
    staff = session.get(Staff, owner_id)
    if staff is None or staff.workspace_id != principal.workspace_id:
        raise validation_error("owner_id", f"staff {owner_id} does not exist in this workspace")
    if not staff.is_active:
        raise validation_error("owner_id", f"staff {owner_id} is deactivated; hand their contacts to someone else")


def _apply_profile(contact: Contact, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(contact, name, ensure_utc(value) if name == "first_consult_at" and value is not None else value)
    if "birthday" in fields:
        contact.birthday_mmdd = birthday_mmdd(contact.birthday)


def create_contact(session: Session, principal: Principal, data: ContactCreate, *, region: str) -> Contact:
    pairs = normalize_identities(data.identities, region=region)
    fields = data.model_dump(exclude={"identities", "attributes"}, exclude_unset=True)
    owner_only = principal.owned_contacts_only
    if owner_only is not None:
        if fields.get("owner_id") not in (None, owner_only):
            raise PermissionDenied("a consultant creates contacts for themselves; leave owner_id out")
        fields["owner_id"] = owner_only
    _check_owner(session, principal, fields.get("owner_id"))
    defs = attrs.definitions(session, principal.workspace_id)
    clean_attributes = attrs.validate_attributes(defs, data.attributes, allow_null=False)
    existing = repository.contacts_by_identities(session, principal.workspace_id, pairs)
    if existing:
        (identity_type, value), contact_id = next(iter(existing.items()))
        raise Conflict(
            f"identity {identity_type}={value} already belongs to contact {contact_id}; "
            f"update that contact, or merge with POST /api/v1/contacts/{contact_id}/merge"
        )
    contact = Contact(workspace_id=principal.workspace_id, attributes=clean_attributes)
    _apply_profile(contact, fields)
    session.add(contact)
    session.flush()
    session.add_all(
        Identity(workspace_id=principal.workspace_id, contact_id=contact.id, type=t, value=v) for t, v in pairs
    )
    session.flush()
    mark_dirty(session, principal.workspace_id, [contact.id])
    return contact


def update_contact(session: Session, principal: Principal, contact_id: int, data: ContactUpdate) -> Contact:
    contact = get_contact(session, principal, contact_id)
    fields = data.model_dump(exclude={"attributes"}, exclude_unset=True)
    if "owner_id" in fields and principal.owned_contacts_only is not None and fields["owner_id"] != contact.owner_id:
        raise PermissionDenied("a consultant cannot hand a contact to someone else; ask an operator")
    if "owner_id" in fields:
        _check_owner(session, principal, fields["owner_id"])
        if fields["owner_id"] != contact.owner_id:
            session.add(
                OwnerChange(
                    workspace_id=principal.workspace_id,
                    contact_id=contact.id,
                    from_staff_id=contact.owner_id,
                    to_staff_id=fields["owner_id"],
                    actor_staff_id=principal.staff_id,
                    actor_api_key_id=principal.api_key_id,
                )
            )
    _apply_profile(contact, fields)
    if "attributes" in data.model_fields_set:
        defs = attrs.definitions(session, principal.workspace_id)
        clean = attrs.validate_attributes(defs, data.attributes, allow_null=True)
        merged = dict(contact.attributes or {})
        for key, value in clean.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        contact.attributes = merged
    contact.updated_at = utcnow()
    session.flush()
    mark_dirty(session, principal.workspace_id, [contact.id])
    return contact


def add_identity(session: Session, principal: Principal, contact_id: int, item: IdentityIn, *, region: str) -> Contact:
    contact = get_contact(session, principal, contact_id)
    (pair,) = normalize_identities([item], region=region, field="identity")
    owner = repository.contacts_by_identities(session, principal.workspace_id, [pair])
    if owner:
        other = owner[pair]
        if other == contact.id:
            return contact
        raise Conflict(
            f"identity {pair[0]}={pair[1]} belongs to contact {other}; if they are one person, "
            f"merge with POST /api/v1/contacts/{contact.id}/merge"
        )
    session.add(Identity(workspace_id=principal.workspace_id, contact_id=contact.id, type=pair[0], value=pair[1]))
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"identity {pair[0]}={pair[1]} was just taken by another contact") from None
    mark_dirty(session, principal.workspace_id, [contact.id])
    return contact


def remove_identity(
    session: Session, principal: Principal, contact_id: int, identity_type: str, value: str, *, region: str
) -> None:
    contact = get_contact(session, principal, contact_id)
    try:
        normalized = normalize(identity_type, value, region=region)
    except IdentityError as exc:
        raise validation_error("identity", str(exc)) from None
    row = session.scalar(
        select(Identity).where(
            Identity.contact_id == contact.id, Identity.type == identity_type, Identity.value == normalized
        )
    )
    if row is None:
        raise NotFound(f"contact {contact.id} has no identity {identity_type}={normalized}")
    session.delete(row)
    session.flush()
    mark_dirty(session, principal.workspace_id, [contact.id])


def find_by_identity(session: Session, principal: Principal, identity_type: str, value: str, *, region: str) -> Contact:
    try:
        normalized = normalize(identity_type, value, region=region)
    except IdentityError as exc:
        raise validation_error("value", str(exc)) from None
    found = repository.contacts_by_identities(session, principal.workspace_id, [(identity_type, normalized)])
    if not found:
        raise NotFound(f"no contact has identity {identity_type}={normalized}")
    return get_contact(session, principal, found[(identity_type, normalized)])


def merge(session: Session, principal: Principal, survivor_id: int, other_id: int, reason: str) -> ContactMerge:
    survivor = get_contact(session, principal, survivor_id)
    other = get_contact(session, principal, other_id)
    if survivor.id == other.id:
        raise validation_error("other_contact_id", "is the same person as the contact in the path")
    return merge_contacts(
        session,
        survivor=survivor,
        merged=other,
        reason=reason,
        actor_staff_id=principal.staff_id,
        actor_api_key_id=principal.api_key_id,
    )


def add_note(session: Session, principal: Principal, contact_id: int, data: NoteCreate) -> Note:
    contact = get_contact(session, principal, contact_id)
    note = Note(
        workspace_id=principal.workspace_id,
        contact_id=contact.id,
        body=data.body,
        author_staff_id=principal.staff_id,
        author_api_key_id=principal.api_key_id,
    )
    session.add(note)
    session.flush()
    return note


def list_notes(session: Session, principal: Principal, contact_id: int) -> list[Note]:
    contact = get_contact(session, principal, contact_id)
    return list(session.scalars(select(Note).where(Note.contact_id == contact.id).order_by(Note.id.desc())))


def change_owner(
    session: Session, principal: Principal, selection: Select[Any], owner_id: int | None, reason: str | None
) -> tuple[int, int]:
    """Hands every contact `selection` yields to `owner_id` (None: nobody), e.g. a leaving staff member's
    customers to a colleague (离职继承). Each real change is recorded and shows on the contact's timeline.
    Returns (matched, changed)."""
    if principal.owned_contacts_only is not None:
        raise PermissionDenied("a consultant cannot hand contacts to someone else; ask an operator")
    _check_owner(session, principal, owner_id)
    targets = selection.subquery()
    matched = session.scalar(select(func.count()).select_from(targets)) or 0
    changing = select(Contact.id, Contact.owner_id).where(
        Contact.id.in_(select(targets.c[0])),
        Contact.owner_id.is_not(None) if owner_id is None else Contact.owner_id.is_distinct_from(owner_id),
    )
    moving = changing.subquery()
    now = utcnow()
    session.execute(
        insert(OwnerChange).from_select(
            [
                "workspace_id",
                "contact_id",
                "from_staff_id",
                "to_staff_id",
                "actor_staff_id",
                "actor_api_key_id",
                "reason",
                "created_at",
            ],
            select(
                literal(principal.workspace_id),
                moving.c.id,
                moving.c.owner_id,
                literal(owner_id),
                literal(principal.staff_id),
                literal(principal.api_key_id),
                literal(reason),
                literal(now, OwnerChange.created_at.type),
            ),
        )
    )
    mark_dirty(session, principal.workspace_id, select(moving.c.id))
    result = session.execute(
        update(Contact)
        .where(Contact.id.in_(select(moving.c.id)))
        .values(owner_id=owner_id, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return int(matched), int(result.rowcount)  # type: ignore[attr-defined]
