"""Console pages for tags: groups, tags and how many contacts hold each; create, rename, merge, delete."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.render import flash, gettext_for, redirect, render
from siyu.console.security import CurrentUser
from siyu.errors import validation_error
from siyu.tags import service
from siyu.tags.models import ContactTag
from siyu.tags.schemas import TagCreate, TagGroupCreate, TagUpdate

router = APIRouter()


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _id(form: FormData, field: str, what: str) -> int:
    raw = str(form.get(field) or "")
    if not raw.isdigit():
        raise validation_error(field, f"choose {what}")
    return int(raw)


def _text(form: FormData, field: str) -> str:
    value = str(form.get(field) or "").strip()
    if not value:
        raise validation_error(field, "must not be empty")
    if len(value) > 100:
        raise validation_error(field, "is longer than 100 characters")
    return value


@router.get("/tags")
def tags_page(request: Request, user: CurrentUser) -> Response:
    principal = user.principal
    principal.require(Scope.tags_read)
    with get_database(request).transaction(write=False) as session:
        groups = service.list_groups(session, principal.workspace_id)
        tags = service.list_tags(session, principal.workspace_id)
        counts = service.counts(session, principal.workspace_id)
    top = sorted(tags, key=lambda t: counts.get(t.id, 0), reverse=True)[:15]
    chart = {"names": [t.name for t in reversed(top)], "values": [counts.get(t.id, 0) for t in reversed(top)]}
    return render(
        request,
        "tags/index.html",
        {
            "groups": [(g, [t for t in tags if t.group_id == g.id]) for g in groups],
            "all_tags": tags,
            "counts": counts,
            "chart_json": orjson.dumps(chart).decode(),
            "can_write": Scope.tags_write in principal.scopes,
        },
        user=user,
    )


@router.post("/tags/groups")
def create_group(request: Request, user: CurrentUser, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.tags_write)
    data = TagGroupCreate(name=_text(form, "name"), exclusive=form.get("exclusive") == "on")
    with get_database(request).transaction() as session:
        service.create_group(session, user.principal.workspace_id, data)
        session.commit()
    response = redirect(request, "/console/tags")
    flash(response, _("Tag group created."))
    return response


@router.post("/tags")
def create_tag(request: Request, user: CurrentUser, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.tags_write)
    data = TagCreate(group_id=_id(form, "group_id", "a tag group"), name=_text(form, "name"))
    with get_database(request).transaction() as session:
        service.create_tag(session, user.principal.workspace_id, data)
        session.commit()
    response = redirect(request, "/console/tags")
    flash(response, _("Tag created."))
    return response


@router.post("/tags/{tag_id}/rename")
def rename_tag(request: Request, user: CurrentUser, tag_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.tags_write)
    with get_database(request).transaction() as session:
        service.update_tag(session, user.principal.workspace_id, tag_id, TagUpdate(name=_text(form, "name")))
        session.commit()
    response = redirect(request, "/console/tags")
    flash(response, _("Tag renamed."))
    return response


@router.post("/tags/{tag_id}/merge")
def merge_tag(request: Request, user: CurrentUser, tag_id: int, form: Form) -> Response:
    _ = gettext_for(request)
    user.principal.require(Scope.tags_write)
    into = _id(form, "into_tag_id", "the tag to merge into")
    with get_database(request).transaction() as session:
        target, held, _added = service.merge_tags(session, user.principal, tag_id, into)
        name = target.name
        session.commit()
    response = redirect(request, "/console/tags")
    flash(response, _("Merged into “%(name)s”: %(count)s contacts moved.") % {"name": name, "count": held})
    return response


@router.post("/tags/{tag_id}/delete")
def delete_tag(request: Request, user: CurrentUser, tag_id: int, form: Form) -> Response:
    """A tag in use is deleted only after the operator confirms, seeing how many contacts hold it."""
    _ = gettext_for(request)
    principal = user.principal
    principal.require(Scope.tags_write)
    confirmed = form.get("confirm") == "yes"
    with get_database(request).transaction() as session:
        tag = service.get_tag(session, principal.workspace_id, tag_id)
        in_use = session.scalar(select(func.count()).select_from(ContactTag).where(ContactTag.tag_id == tag.id)) or 0
        if in_use and not confirmed:
            return render(request, "tags/confirm_delete.html", {"tag": tag, "in_use": in_use}, user=user)
        name = tag.name
        removed = service.delete_tag(session, principal, tag_id, force=True)
        session.commit()
    response = redirect(request, "/console/tags")
    flash(response, _("Tag “%(name)s” deleted; removed from %(count)s contacts.") % {"name": name, "count": removed})
    return response
