"""Console pages of the content library (内容库): the list with filters, the editor with a preview,
an item's page (its portrait, per segment too; versions; pushes) and the push dialog that shows the
tracked links it created."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.csrf import secret_key
from siyu.console.render import ConsoleUser, flash, gettext_for, redirect, render
from siyu.console.security import CurrentUser
from siyu.contacts.models import Contact, Identity
from siyu.content import repository, service
from siyu.content.endpoints import build_portrait
from siyu.content.markup import render as render_markup
from siyu.content.models import ContentItem, ContentKind, ContentStatus
from siyu.content.schemas import ContentCreate, ContentUpdate, PushCreate
from siyu.errors import SiyuError, ValidationFailed
from siyu.segments import service as segments
from siyu.staff.service import list_staff

router = APIRouter()
PAGE = 50


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _can_write(user: ConsoleUser) -> bool:
    return Scope.content_write in user.principal.scopes


def content_labels(request: Request) -> dict[str, dict[str, str]]:
    """Kinds and statuses of content items in the reader's language (also for other pages' item lists)."""
    _ = gettext_for(request)
    return {
        "kind": {
            "article": _("Article"),
            "script": _("Script"),
            "case": _("Case"),
            "material": _("Material"),
            "product": _("Product link"),
            "mini_program": _("Mini-program"),
            "video": _("Video link"),
        },
        "status": {"draft": _("Draft"), "published": _("Published"), "archived": _("Archived")},
    }


def _fields(form: FormData, kind: ContentKind) -> tuple[str | None, dict[str, Any]]:
    """The editor's form as (body, data) for the kind."""
    body = _text(form, "body") or None
    if kind is ContentKind.script:
        answers = [line.strip() for line in _text(form, "answers").split("\n") if line.strip()]
        return body, {"question": _text(form, "question"), "answers": answers}
    if kind is ContentKind.material:
        return body, {"url": _text(form, "url"), "mime": _text(form, "mime")}
    if kind is ContentKind.mini_program:
        data = {k: _text(form, k) for k in ("url", "appid", "path") if _text(form, k)}
        return body, data
    if kind in (ContentKind.product, ContentKind.video):
        return body, {"url": _text(form, "url")}
    return body, {k: _text(form, k) for k in ("cover_url", "summary") if _text(form, k)}


def _tag_ids(form: FormData) -> list[int]:
    return [int(v) for v in form.getlist("tag_id") if isinstance(v, str) and v.isdigit()]


def _kind(raw: str) -> ContentKind | None:
    return ContentKind(raw) if raw in ContentKind.__members__ else None


def _status(raw: str) -> ContentStatus | None:
    return ContentStatus(raw) if raw in ContentStatus.__members__ else None


@router.get("/content")
def library(
    request: Request,
    user: CurrentUser,
    kind: str = "",
    status: str = "",
    tag_id: str = "",
    q: str = "",
    before: int | None = None,
) -> Response:
    principal = user.principal
    principal.require(Scope.content_read)
    with get_database(request).transaction(write=False) as session:
        items = repository.list_items(
            session,
            principal.workspace_id,
            kind=_kind(kind),
            status=_status(status),
            tag_ids=[int(tag_id)] if tag_id.isdigit() else [],
            q=q or None,
            before=before,
            limit=PAGE + 1,
        )
        more = len(items) > PAGE
        items = items[:PAGE]
        tags = service.tags_of(session, [i.id for i in items])
        groups = service.list_tag_groups(session, principal.workspace_id)
    context = {
        "items": items,
        "tags": tags,
        "groups": groups,
        "labels": content_labels(request),
        "filters": {"kind": kind, "status": status, "tag_id": tag_id, "q": q},
        "next_before": items[-1].id if more else None,
        "can_write": _can_write(user),
    }
    return render(request, "content/list.html", context, user=user)


def _editor(
    request: Request,
    user: CurrentUser,
    session: Session,
    item: ContentItem | None,
    values: dict[str, Any],
    errors: list[dict[str, Any]] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "item": item,
        "values": values,
        "errors": errors or [],
        "groups": service.list_tag_groups(session, user.principal.workspace_id),
        "labels": content_labels(request),
        "kinds": [k.value for k in ContentKind],
        "statuses": [s.value for s in ContentStatus],
    }
    return render(request, "content/edit.html", context, user=user, status_code=status_code)


def _values_of(item: ContentItem, tag_ids: list[int]) -> dict[str, Any]:
    data = item.data
    return {
        "kind": item.kind.value,
        "title": item.title,
        "status": item.status.value,
        "body": item.body or "",
        "question": data.get("question", ""),
        "answers": "\n".join(data.get("answers", [])),
        "url": data.get("url", ""),
        "mime": data.get("mime", ""),
        "appid": data.get("appid", ""),
        "path": data.get("path", ""),
        "cover_url": data.get("cover_url", ""),
        "summary": data.get("summary", ""),
        "tag_ids": tag_ids,
    }


EDITOR_FIELDS = (
    "title",
    "status",
    "body",
    "question",
    "answers",
    "url",
    "mime",
    "appid",
    "path",
    "cover_url",
    "summary",
)


def _values_of_form(form: FormData, kind: str) -> dict[str, Any]:
    return {"kind": kind, **{n: _text(form, n) for n in EDITOR_FIELDS}, "tag_ids": _tag_ids(form)}


@router.get("/content/new")
def new_item(request: Request, user: CurrentUser, kind: str = "article") -> Response:
    user.principal.require(Scope.content_write)
    values: dict[str, Any] = {name: "" for name in EDITOR_FIELDS}
    values |= {"kind": kind if _kind(kind) else "article", "status": "draft", "tag_ids": []}
    with get_database(request).transaction(write=False) as session:
        return _editor(request, user, session, None, values)


@router.post("/content")
def create_item(request: Request, user: CurrentUser, form: Form) -> Response:
    principal = user.principal
    principal.require(Scope.content_write)
    kind = _kind(_text(form, "kind")) or ContentKind.article
    body, data = _fields(form, kind)
    database = get_database(request)
    try:
        with database.transaction() as session:
            item = service.create_item(
                session,
                principal,
                ContentCreate(
                    kind=kind,
                    title=_text(form, "title")[:200] or " ",
                    body=body,
                    data=data,
                    status=_status(_text(form, "status")) or ContentStatus.draft,
                    tag_ids=_tag_ids(form),
                ),
            )
            item_id = item.id
    except ValidationFailed as exc:
        with database.transaction(write=False) as session:
            return _editor(request, user, session, None, _values_of_form(form, kind.value), exc.details, 422)
    response = redirect(request, f"/console/content/{item_id}")
    _ = gettext_for(request)
    flash(response, _("Saved."))
    return response


@router.post("/content/preview")
def preview(request: Request, user: CurrentUser, form: Form) -> Response:
    user.principal.require(Scope.content_read)
    kind = _kind(_text(form, "kind")) or ContentKind.article
    body, data = _fields(form, kind)
    context = {"kind": kind.value, "title": _text(form, "title"), "body_html": render_markup(body), "data": data}
    return render(request, "content/_preview.html", context, user=user)


@router.get("/content/{content_id}/edit")
def edit_item(request: Request, user: CurrentUser, content_id: int) -> Response:
    user.principal.require(Scope.content_write)
    with get_database(request).transaction(write=False) as session:
        item = service.get_item(session, user.principal.workspace_id, content_id)
        tag_ids = [t.id for t in service.tags_of(session, [item.id]).get(item.id, [])]
        return _editor(request, user, session, item, _values_of(item, tag_ids))


@router.post("/content/{content_id}")
def update_item(request: Request, user: CurrentUser, content_id: int, form: Form) -> Response:
    principal = user.principal
    principal.require(Scope.content_write)
    database = get_database(request)
    with database.transaction(write=False) as session:
        kind = service.get_item(session, principal.workspace_id, content_id).kind
    body, data = _fields(form, kind)
    update = ContentUpdate(
        title=_text(form, "title")[:200] or " ",
        body=body,
        data=data,
        status=_status(_text(form, "status")),
        tag_ids=_tag_ids(form),
    )
    try:
        with database.transaction() as session:
            service.update_item(session, principal, content_id, update)
    except ValidationFailed as exc:
        with database.transaction(write=False) as session:
            item = service.get_item(session, principal.workspace_id, content_id)
            values = _values_of_form(form, kind.value)
            return _editor(request, user, session, item, values, exc.details, 422)
    response = redirect(request, f"/console/content/{content_id}")
    _ = gettext_for(request)
    flash(response, _("Saved."))
    return response


def _item_page(
    request: Request,
    user: CurrentUser,
    content_id: int,
    segment_id: int | None,
    created: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    principal = user.principal
    principal.require(Scope.content_read)
    with get_database(request).transaction(write=False) as session:
        item = service.get_item(session, principal.workspace_id, content_id)
        can_segments = Scope.segments_read in principal.scopes
        portrait = build_portrait(session, principal, item, segment_id if can_segments else None)
        context = {
            "item": item,
            "portrait": portrait,
            "segment_id": segment_id,
            "segment_list": segments.list_segments(session, principal.workspace_id) if can_segments else [],
            "versions": service.list_versions(session, item),
            "staff_names": {s.id: s.name for s in list_staff(session, principal.workspace_id)},
            "pushes": service.list_pushes(session, item, limit=20),
            "body_html": render_markup(item.body),
            "labels": content_labels(request),
            "can_write": _can_write(user),
            "created": created,
            "error": error,
        }
    return render(request, "content/item.html", context, user=user, status_code=status_code)


@router.get("/content/{content_id}")
def item_page(request: Request, user: CurrentUser, content_id: int, segment_id: int | None = None) -> Response:
    return _item_page(request, user, content_id, segment_id)


@router.get("/content/{content_id}/contacts")
def search_contacts(request: Request, user: CurrentUser, content_id: int, q: str = "") -> Response:
    """The push dialog's contact picker: contacts whose name or an identity matches (HTMX partial)."""
    principal = user.principal
    principal.require(Scope.content_write)
    found: list[Contact] = []
    if q.strip():
        pattern = f"%{q.strip()}%"
        with get_database(request).transaction(write=False) as session:
            statement = select(Contact).where(
                Contact.workspace_id == principal.workspace_id,
                Contact.merged_into_id.is_(None),
                or_(
                    Contact.name.ilike(pattern),
                    Contact.id.in_(select(Identity.contact_id).where(Identity.value.like(pattern))),
                ),
            )
            if principal.owned_contacts_only is not None:
                statement = statement.where(Contact.owner_id == principal.owned_contacts_only)
            found = list(session.scalars(statement.order_by(Contact.id.desc()).limit(20)))
    return render(request, "content/_contact_options.html", {"found": found}, user=user)


@router.post("/content/{content_id}/pushes")
def push_item(request: Request, user: CurrentUser, content_id: int, form: Form) -> Response:
    principal = user.principal
    principal.require(Scope.content_write)
    _ = gettext_for(request)
    contact_ids = [int(v) for v in form.getlist("contact_id") if isinstance(v, str) and v.isdigit()]
    raw_segment = _text(form, "segment_id")
    try:
        data = PushCreate(
            contact_ids=contact_ids or None,
            segment_id=int(raw_segment) if raw_segment.isdigit() and not contact_ids else None,
            source="manual",
            channel=_text(form, "channel") or "wecom",
        )
    except ValueError:
        return _item_page(
            request, user, content_id, None, error=_("Pick contacts or a segment to push to."), status_code=422
        )
    base = str(request.base_url).rstrip("/")
    try:
        with get_database(request).transaction() as session:
            push, links = service.create_push(
                session, principal, content_id, data, secret_key(request.app.state.settings)
            )
            names: dict[int | None, str | None] = {
                contact_id: name
                for contact_id, name in session.execute(
                    select(Contact.id, Contact.name).where(
                        Contact.id.in_([lk.contact_id for lk in links if lk.contact_id])
                    )
                )
            }
            created = {
                "push_id": push.id,
                "links": [
                    {"contact_id": lk.contact_id, "name": names.get(lk.contact_id) or "", "url": f"{base}/r/{lk.token}"}
                    for lk in links
                ],
            }
    except SiyuError as exc:
        return _item_page(request, user, content_id, None, error=exc.message, status_code=exc.status_code)
    return _item_page(request, user, content_id, None, created=created)
