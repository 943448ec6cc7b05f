"""Console pages for contacts: the list (search, filters, bulk actions) and the contact page."""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.render import ConsoleUser, flash, gettext_for, is_htmx, redirect, render
from siyu.console.security import CurrentUser
from siyu.contacts import attributes as attrs
from siyu.contacts import filters, repository, service
from siyu.contacts.models import AttributeType, Contact, Gender
from siyu.contacts.schemas import ContactUpdate, NoteCreate
from siyu.contacts.timeline import timeline
from siyu.content.console import content_labels
from siyu.delivery.console import channel_labels, reason_labels
from siyu.errors import SiyuError, ValidationFailed, validation_error
from siyu.kit.schemas import decode_cursor, encode_cursor
from siyu.kit.time import utcnow
from siyu.recommend import service as recommend_service
from siyu.segments.console import contact_panel, lifecycle_labels
from siyu.staff.models import Staff
from siyu.staff.service import list_staff
from siyu.tags import service as tags_service
from siyu.tags.models import Tag, TagGroup

router = APIRouter()

PAGE_SIZE = 50
# Query parameters of the list page that are filters (the rest: sort, cursor).
FILTER_FIELDS = ("q", "tag", "owner", "source_channel", "attr_key", "attr_value", "created_from", "created_to")
PROFILE_FIELDS = ("name", "source_channel", "region", "occupation", "gender", "birthday", "consult_question")
TIMELINE_PAGE = 30
PORTRAIT_TAGS = 8
PORTRAIT_SEEN = 5
RECOMMENDED = 5


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _session(request: Request, *, write: bool) -> Session:
    return get_database(request).session(write=write)


def days_to_birthday(birthday: dt.date | None, today: dt.date) -> int | None:
    """Days until the next birthday (0 = today); 29 February counts as 1 March in other years."""
    if birthday is None:
        return None
    for year in (today.year, today.year + 1):
        try:
            upcoming = birthday.replace(year=year)
        except ValueError:
            upcoming = dt.date(year, 3, 1)
        if upcoming >= today:
            return (upcoming - today).days
    return None


def _filter_state(params: Any) -> dict[str, Any]:
    state: dict[str, Any] = {name: (params.get(name) or "").strip() for name in FILTER_FIELDS if name != "tag"}
    state["tag"] = [t for t in params.getlist("tag") if t]
    return state


def _local_midnight(value: str, field: str, tz: Any, plus_days: int = 0) -> str:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise validation_error(field, f"{value!r} is not a date written YYYY-MM-DD") from None
    return dt.datetime.combine(day + dt.timedelta(days=plus_days), dt.time(), tzinfo=tz).isoformat()


def filter_params(state: dict[str, Any], tz: Any) -> dict[str, str | list[str]]:
    """The list page's filter form, as the filters of GET /api/v1/contacts (contacts.filters)."""
    params: dict[str, str | list[str]] = {}
    if state["q"]:
        params["q"] = state["q"]
    if state["tag"]:
        params["tag"] = list(state["tag"])
    if state["owner"] == "none":
        params["unowned"] = "true"
    elif state["owner"]:
        params["owner_id"] = state["owner"]
    if state["source_channel"]:
        params["source_channel"] = state["source_channel"]
    if state["attr_key"]:
        params[f"attr.{state['attr_key']}"] = state["attr_value"]
    elif state["attr_value"]:
        raise validation_error("attr_key", "choose which attribute the value is for")
    if state["created_from"]:
        params["created_after"] = _local_midnight(state["created_from"], "created_from", tz)
    if state["created_to"]:
        params["created_before"] = _local_midnight(state["created_to"], "created_to", tz, plus_days=1)
    return params


def _tag_groups(session: Session, workspace_id: int) -> list[tuple[TagGroup, list[Tag]]]:
    tags = tags_service.list_tags(session, workspace_id)
    return [(g, [t for t in tags if t.group_id == g.id]) for g in tags_service.list_groups(session, workspace_id)]


def _region(request: Request) -> str:
    region: str = request.app.state.settings.default_phone_region
    return region


@router.get("/contacts")
def contact_list(request: Request, user: CurrentUser) -> Response:
    principal = user.principal
    principal.require(Scope.contacts_read)
    fmt_tz = _tz(user)
    state = _filter_state(request.query_params)
    sort = request.query_params.get("sort") or "newest"
    cursor = request.query_params.get("cursor")
    error: str | None = None
    rows: list[Contact] = []
    next_cursor: str | None = None
    session = _session(request, write=False)
    try:
        staff = list_staff(session, principal.workspace_id)
        groups = _tag_groups(session, principal.workspace_id)
        defs = attrs.definitions(session, principal.workspace_id)
        try:
            params = filter_params(state, fmt_tz)
            flt = filters.parse_filter(params, region=_region(request))
            before_id = int(decode_cursor(cursor, 1)[0]) if cursor else None
            rows = repository.list_page(
                session,
                principal.workspace_id,
                flt,
                principal.owned_contacts_only,
                defs,
                before_id=before_id,
                limit=PAGE_SIZE + 1,
                oldest_first=sort == "oldest",
            )
        except ValidationFailed as exc:
            error = exc.message
            params = {}
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            next_cursor = encode_cursor([rows[-1].id])
        ids = [c.id for c in rows]
        identities = repository.identities_by_contact(session, ids)
        tags = repository.tags_by_contact(session, ids)
    finally:
        session.close()
    today = utcnow().astimezone(fmt_tz).date()
    query_state = [(k, v) for k, v in state.items() if k != "tag" and v] + [("tag", t) for t in state["tag"]]
    if sort != "newest":
        query_state.append(("sort", sort))
    export_query = urllib.parse.urlencode({"format": "xlsx", **params}, doseq=True)
    export_csv_query = urllib.parse.urlencode({"format": "csv", **params}, doseq=True)
    return render(
        request,
        "contacts/list.html",
        {
            "rows": rows,
            "identities": identities,
            "tags": tags,
            "staff": {s.id: s for s in staff},
            "staff_list": [s for s in staff if s.is_active],
            "groups": groups,
            "defs": sorted(defs.values(), key=lambda d: d.id),
            "state": state,
            "sort": sort,
            "error": error,
            "next_cursor": next_cursor,
            "is_first_page": cursor is None,
            "query_state": query_state,
            "filter_query": urllib.parse.urlencode(query_state),
            "export_query": export_query,
            "export_csv_query": export_csv_query,
            "birthdays": {c.id: days_to_birthday(c.birthday, today) for c in rows},
        },
        user=user,
    )


def _tz(user: ConsoleUser) -> Any:
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(user.timezone)
    except (KeyError, ValueError):
        return ZoneInfo("Asia/Shanghai")


@router.post("/contacts/bulk")
def contact_bulk(request: Request, user: CurrentUser, form: Form) -> Response:
    """Add/remove tags or change the owner of the ticked contacts, or of every contact the filter matches."""
    _ = gettext_for(request)
    principal = user.principal
    back_query = str(form.get("filter_query") or "")
    back = "/console/contacts" + (f"?{back_query}" if back_query else "")
    scope = str(form.get("scope") or "selected")
    action = str(form.get("action") or "")
    selection_ids: list[int] | None = None
    filter_dict: dict[str, str | list[str]] | None = None
    session = _session(request, write=True)
    try:
        if scope == "all":
            parsed = urllib.parse.parse_qs(back_query)
            state = _filter_state(_MultiDict(parsed))
            filter_dict = filter_params(state, _tz(user))
        else:
            try:
                selection_ids = [int(str(v)) for v in form.getlist("contact_id")]
            except ValueError:
                raise validation_error("contact_id", "not a contact id") from None
            if not selection_ids:
                response = redirect(request, back)
                flash(response, _("Tick at least one contact, or choose “all matching the filter”."), "error")
                return response
        query = filters.selection_query(
            session, principal, contact_ids=selection_ids, filter_params=filter_dict, region=_region(request)
        )
        reason = str(form.get("reason") or "").strip() or None
        if action in ("add_tag", "remove_tag"):
            principal.require(Scope.contacts_write)
            raw_tag = str(form.get("tag_id") or "")
            if not raw_tag.isdigit():
                raise validation_error("tag_id", "choose a tag")
            tag_ids = [int(raw_tag)]
            added, removed = tags_service.change_tags(
                session,
                principal,
                query,
                add=tag_ids if action == "add_tag" else [],
                remove=tag_ids if action == "remove_tag" else [],
                reason=reason,
            )
            message = _("Tags changed: %(added)s added, %(removed)s removed.") % {"added": added, "removed": removed}
        elif action == "owner":
            principal.require(Scope.contacts_write)
            raw_owner = str(form.get("owner_id") or "")
            if raw_owner != "none" and not raw_owner.isdigit():
                raise validation_error("owner_id", "choose the staff member who takes the contacts over")
            owner_id = None if raw_owner == "none" else int(raw_owner)
            matched, changed = service.change_owner(session, principal, query, owner_id, reason)
            message = _("Owner changed for %(changed)s of %(matched)s contacts.") % {
                "changed": changed,
                "matched": matched,
            }
        else:
            raise validation_error("action", "choose what to do: add a tag, remove a tag or change the owner")
        session.commit()
    finally:
        session.close()
    response = redirect(request, back)
    flash(response, message)
    return response


class _MultiDict:
    """parse_qs output read like request.query_params."""

    def __init__(self, data: dict[str, list[str]]) -> None:
        self.data = data

    def get(self, key: str) -> str | None:
        values = self.data.get(key)
        return values[-1] if values else None

    def getlist(self, key: str) -> list[str]:
        return self.data.get(key, [])


def _contact_context(
    session: Session, request: Request, user: ConsoleUser, contact_id: int, cursor: str | None = None
) -> dict[str, Any]:
    principal = user.principal
    contact = service.get_contact(session, principal, contact_id)
    defs = attrs.definitions(session, principal.workspace_id)
    entries, next_cursor = timeline(session, contact.id, cursor=cursor, limit=TIMELINE_PAGE)
    staff = {s.id: s for s in list_staff(session, principal.workspace_id)}
    held = repository.tags_by_contact(session, [contact.id]).get(contact.id, [])
    today = utcnow().astimezone(_tz(user)).date()
    return {
        "contact": contact,
        "identities": repository.identities_by_contact(session, [contact.id]).get(contact.id, []),
        "held": held,
        "held_ids": {t.id for t in held},
        "groups": _tag_groups(session, principal.workspace_id),
        "defs": sorted(defs.values(), key=lambda d: d.id),
        "staff": staff,
        "staff_list": [s for s in staff.values() if s.is_active],
        "entries": entries,
        "next_cursor": next_cursor,
        "birthday_in": days_to_birthday(contact.birthday, today),
        "genders": [g.value for g in Gender],
        "AttributeType": AttributeType,
        "errors": {},
        "values": {},
        "can_write": Scope.contacts_write in principal.scopes,
        "user_model": contact_panel(session, request, principal, contact.id),
        "can_content": Scope.content_read in principal.scopes,
        "can_journeys": Scope.journeys_read in principal.scopes,
        "channel_labels": channel_labels(request),
        "reason_labels": reason_labels(request),
    }


@router.get("/contacts/{contact_id}")
def contact_page(request: Request, user: CurrentUser, contact_id: int) -> Response:
    user.principal.require(Scope.contacts_read)
    session = _session(request, write=False)
    try:
        context = _contact_context(session, request, user, contact_id)
    finally:
        session.close()
    if context["contact"].id != contact_id:  # merged away: show the survivor's page
        return redirect(request, f"/console/contacts/{context['contact'].id}")
    return render(request, "contacts/detail.html", context, user=user)


@router.get("/contacts/{contact_id}/portrait")
def contact_portrait(request: Request, user: CurrentUser, contact_id: int) -> Response:
    """The contact page's portrait panel (loaded after the page): the strongest content interests, decayed
    to today, what they have seen, and the items to send next with the reasons. A fresh exploration
    sample on every load, so "other suggestions" asks again."""
    principal = user.principal
    principal.require(Scope.contacts_read)
    principal.require(Scope.content_read)
    session = _session(request, write=False)
    try:
        contact = service.get_contact(session, principal, contact_id)
        config, today, affinities, seen = recommend_service.portrait_of(
            session, principal.workspace_id, contact.id, top=PORTRAIT_TAGS
        )
        recommendations = recommend_service.recommend_for_contact(
            session, principal.workspace_id, contact.id, limit=RECOMMENDED
        )
    finally:
        session.close()
    strongest = max((a.current for a in affinities), default=0.0)
    context = {
        "contact": contact,
        "half_life_days": config.half_life_days,
        "today": today,
        "affinities": [(a, round(100 * a.current / strongest) if strongest > 0 else 0) for a in affinities],
        "seen": seen[:PORTRAIT_SEEN],
        "recommendations": recommendations,
        "stage_labels": lifecycle_labels(request),
        "kind_labels": content_labels(request)["kind"],
    }
    return render(request, "contacts/_portrait.html", context, user=user)


@router.get("/contacts/{contact_id}/timeline")
def contact_timeline(request: Request, user: CurrentUser, contact_id: int, cursor: str | None = None) -> Response:
    user.principal.require(Scope.contacts_read)
    session = _session(request, write=False)
    try:
        context = _contact_context(session, request, user, contact_id, cursor=cursor)
    finally:
        session.close()
    return render(request, "contacts/_timeline_rows.html", context, user=user)


def _profile_update(form: FormData, defs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Reads the profile form into ContactUpdate fields; returns (fields, errors by field)."""
    fields: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in PROFILE_FIELDS:
        if name in form:
            value = str(form.get(name) or "").strip()
            fields[name] = value or None
    attributes: dict[str, Any] = {}
    for key, definition in defs.items():
        field = f"attr.{key}"
        if field not in form:
            continue
        raw = str(form.get(field) or "").strip()
        if not raw:
            attributes[key] = None
        elif definition.type is AttributeType.number:
            try:
                number = float(raw)
            except ValueError:
                errors[f"attributes.{key}"] = f"{raw!r} is not a number"
                continue
            attributes[key] = int(number) if number.is_integer() else number
        else:
            attributes[key] = raw
    fields["attributes"] = attributes
    return fields, errors


@router.post("/contacts/{contact_id}/profile")
def contact_profile(request: Request, user: CurrentUser, contact_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(Scope.contacts_write)
    session = _session(request, write=True)
    try:
        defs = attrs.definitions(session, principal.workspace_id)
        fields, errors = _profile_update(form, defs)
        if not errors:
            try:
                data = ContactUpdate.model_validate(fields)
                service.update_contact(session, principal, contact_id, data)
                session.commit()
            except pydantic.ValidationError as exc:
                errors = {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}
            except ValidationFailed as exc:
                errors = {d["field"]: d["reason"] for d in exc.details} or {"": exc.message}
        if errors:
            session.rollback()
            context = _contact_context(session, request, user, contact_id)
            context["errors"] = errors
            context["values"] = {k: str(v) for k, v in form.items()}
            return render(request, "contacts/detail.html", context, user=user, status_code=422)
    finally:
        session.close()
    response = redirect(request, f"/console/contacts/{contact_id}")
    flash(response, _("Profile saved."))
    return response


def _partial_or_redirect(request: Request, user: CurrentUser, contact_id: int, message: str) -> Response:
    if is_htmx(request):
        session = _session(request, write=False)
        try:
            context = _contact_context(session, request, user, contact_id)
        finally:
            session.close()
        context["notice"] = ("ok", message)
        return render(request, "contacts/_live.html", context, user=user)
    response = redirect(request, f"/console/contacts/{contact_id}")
    flash(response, message)
    return response


@router.post("/contacts/{contact_id}/tags")
def contact_tags(request: Request, user: CurrentUser, contact_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(Scope.contacts_write)
    add = [int(str(v)) for v in form.getlist("add") if str(v).isdigit()]
    remove = [int(str(v)) for v in form.getlist("remove") if str(v).isdigit()]
    if not add and not remove:
        raise validation_error("add", "choose a tag to add or remove")
    session = _session(request, write=True)
    try:
        contact = service.get_contact(session, principal, contact_id)
        only_this = select(Contact.id).where(Contact.id == contact.id)
        tags_service.change_tags(session, principal, only_this, add=add, remove=remove, reason=None)
        session.commit()
    finally:
        session.close()
    return _partial_or_redirect(request, user, contact_id, _("Tags saved."))


@router.post("/contacts/{contact_id}/notes")
def contact_note(request: Request, user: CurrentUser, contact_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(Scope.contacts_write)
    body = str(form.get("body") or "").strip()
    if not body:
        raise validation_error("body", "write the note first")
    session = _session(request, write=True)
    try:
        service.add_note(session, principal, contact_id, NoteCreate(body=body[:20_000]))
        session.commit()
    finally:
        session.close()
    return _partial_or_redirect(request, user, contact_id, _("Note added."))


@router.post("/contacts/{contact_id}/owner")
def contact_owner(request: Request, user: CurrentUser, contact_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(Scope.contacts_write)
    raw = str(form.get("owner_id") or "")
    if raw != "none" and not raw.isdigit():
        raise validation_error("owner_id", "choose a staff member")
    session = _session(request, write=True)
    try:
        service.update_contact(
            session, principal, contact_id, ContactUpdate(owner_id=None if raw == "none" else int(raw))
        )
        session.commit()
    except SiyuError:
        session.rollback()
        raise
    finally:
        session.close()
    response = redirect(request, f"/console/contacts/{contact_id}")
    flash(response, _("Owner changed."))
    return response


__all__ = ["Staff", "router"]
