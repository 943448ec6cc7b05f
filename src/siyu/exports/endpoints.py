"""GET /contacts/export. Included before the contacts router so that /contacts/export is not taken for
/contacts/{contact_id}."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from sqlalchemy import select
from starlette.background import BackgroundTask

from siyu.auth.dependencies import Authorize, ReadSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.config import get_settings
from siyu.contacts import attributes as attrs
from siyu.contacts.filters import parse_filter, query_filter_params
from siyu.contacts.models import Contact
from siyu.contacts.repository import filtered
from siyu.errors import validation_error
from siyu.exports import service
from siyu.exports.writers import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, temp_path
from siyu.kit.time import utcnow

router = APIRouter(tags=["contacts"])

ReadContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_read))]


@router.get(
    "/contacts/export",
    response_class=FileResponse,
    summary="Export contacts to .xlsx or .csv",
    responses={200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}}}},
)
def export_contacts(
    request: Request,
    session: ReadSession,
    principal: ReadContacts,
    format: Annotated[Literal["csv", "xlsx"], Query(description="xlsx, or csv (UTF-8 with BOM)")] = "csv",
    tag: Annotated[list[int] | None, Query(description="tag id; repeat for all of several")] = None,
    owner_id: int | None = None,
    unowned: bool | None = None,
    source_channel: str | None = None,
    identity: Annotated[str | None, Query(description="type:value, or a type alone (has such an identity)")] = None,
    created_after: str | None = None,
    created_before: str | None = None,
) -> FileResponse:
    """Every contact the filters of GET /api/v1/contacts select (a consultant: their own), oldest first.
    Columns: id, name, one per identity type, the profile, one per custom attribute, tags (group:tag),
    owner (email), owner_name, created_at. Times are in the workspace's time zone."""
    params = query_filter_params(request.query_params, skip=frozenset({"format"}))
    flt = parse_filter(params, region=get_settings().default_phone_region)
    # Build the query once here so that a bad attr.<name> filter answers 422 before any file is written.
    filtered(select(Contact.id), principal.workspace_id, flt, None, attrs.definitions(session, principal.workspace_id))
    path = temp_path(f".{format}")
    try:
        service.export(session, principal, flt, format, path)
    except ValueError as exc:
        path.unlink(missing_ok=True)
        raise validation_error("format", str(exc)) from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return FileResponse(
        path,
        media_type=XLSX_MEDIA_TYPE if format == "xlsx" else CSV_MEDIA_TYPE,
        filename=f"contacts-{stamp}.{format}",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
