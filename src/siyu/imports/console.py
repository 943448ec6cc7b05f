"""Console pages for importing a customer sheet: upload, preview with the mapping, import, past imports.

The flow is three forms: upload (multipart) -> the preview page (detected encoding, headers, the guessed
mapping as selects, the first rows with their problems) -> import, all or nothing unless "skip bad rows"
is ticked. Between the steps the file waits on the server (siyu.imports.uploads), named by a random token
in a hidden field. A refused import shows its bad rows above the same form, so the operator can tick
"skip bad rows" and import again; a completed one deletes the file and opens the import's page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.csrf import var_dir
from siyu.console.render import ConsoleUser, flash, gettext_for, redirect, render
from siyu.console.security import CurrentUser
from siyu.contacts import attributes as attrs
from siyu.contacts.identities import STANDARD_IDENTITY_TYPES
from siyu.errors import SiyuError, ValidationFailed
from siyu.imports import service
from siyu.imports.endpoints import MAX_UPLOAD_BYTES
from siyu.imports.mapping import GUESSES, PROFILE_TARGETS
from siyu.imports.models import ContactImport, ImportStatus
from siyu.imports.reader import Table, cell_text, open_table
from siyu.imports.uploads import StoredUpload, UploadStore
from siyu.staff.service import list_staff
from siyu.tags import service as tags_service

router = APIRouter()

HISTORY = 30  # past imports listed on the page
BAD_ROWS_SHOWN = 100  # the rest are in the error file


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _store(request: Request) -> UploadStore:
    return UploadStore(var_dir(request.app.state.settings).resolve() / "uploads")


def _region(request: Request) -> str:
    region: str = request.app.state.settings.default_phone_region
    return region


def _given_mapping(form: FormData, headers: list[str]) -> dict[str, str | None] | None:
    """The mapping selects (`map.<column index>`; empty = ignore), or None when the form has none."""
    given = {h: (str(form.get(f"map.{i}") or "").strip() or None) for i, h in enumerate(headers) if f"map.{i}" in form}
    return given or None


def _targets(request: Request, session: Session, workspace_id: int, chosen: Mapping[str, str | None]) -> list[Any]:
    """The choices of the mapping selects, grouped: [(group label, [(target, label), ...]), ...]."""
    _ = gettext_for(request)
    profile_labels = {
        "name": _("Name"),
        "owner": _("Owner"),
        "source_channel": _("Source channel"),
        "first_consult_at": _("First consult"),
        "consult_question": _("Question asked"),
        "region": _("Region"),
        "occupation": _("Occupation"),
        "gender": _("Gender"),
        "birthday": _("Birthday"),
    }
    identity_types = list(STANDARD_IDENTITY_TYPES)
    for target in [*GUESSES.values(), *chosen.values()]:
        if target and target.startswith("identity:") and target[9:] not in identity_types:
            identity_types.append(target[9:])
    defs = attrs.definitions(session, workspace_id)
    groups = [g.name for g in tags_service.list_groups(session, workspace_id)]
    other = [("tags", _("Tags (group:tag, or a tag name)")), ("note", _("Note"))]
    choices = [
        (_("Profile"), [(t, profile_labels[t]) for t in PROFILE_TARGETS]),
        (_("Identities"), [(f"identity:{t}", t) for t in identity_types]),
        (_("Attributes"), [(f"attr:{d.key}", f"{d.label} ({d.key})") for d in defs.values()]),
        (_("Tags of a group"), [(f"tags:{g}", g) for g in groups]),
        (_("Other"), other),
    ]
    offered = {value for _label, options in choices for value, _text in options}
    unknown = [(t, t) for t in dict.fromkeys(chosen.values()) if t and t not in offered]
    if unknown:  # a header such as "tags:新分组" names a group that the import would create
        choices.append((_("From the file"), unknown))
    return [(label, options) for label, options in choices if options]


def _raw_rows(table: Table, limit: int) -> dict[int, list[str | None]]:
    rows: dict[int, list[str | None]] = {}
    for number, cells in table.rows():
        rows[number] = [cell_text(c) for c in cells]
        if len(rows) >= limit:
            break
    return rows


def _bad_rows(record: ContactImport) -> list[tuple[int, str]]:
    rows = (record.error_rows or {}).get("rows", [])
    return [(number, reason) for number, _cells, reason in rows[:BAD_ROWS_SHOWN]]


def _preview_page(
    request: Request,
    user: ConsoleUser,
    stored: StoredUpload,
    given: dict[str, str | None] | None,
    *,
    skip_bad_rows: bool = False,
    create_tags: bool | None = None,
    error: str | None = None,
    result: ContactImport | None = None,
    status_code: int = 200,
) -> Response:
    principal = user.principal
    with stored.path.open("rb") as handle, get_database(request).transaction(write=False) as session:
        table = open_table(handle, stored.file_name)
        rows: list[dict[str, Any]] = []
        try:
            shown = service.preview(session, principal, table, given, region=_region(request))
            mapping: dict[str, str | None] = shown["mapping"]
            rows = shown["rows"]
        except ValidationFailed as exc:  # a mapping the operator chose does not hold: say why, keep their choice
            mapping = {**service.mapping_for(session, principal, table, None)[1], **(given or {})}
            error = error or exc.message
        raw = _raw_rows(table, len(rows)) if rows else {}
        targets = _targets(request, session, principal.workspace_id, mapping)
    new_tags = list(dict.fromkeys(t for r in rows for t in r["values"]["new_tags"]))
    return render(
        request,
        "imports/preview.html",
        {
            "upload": stored,
            "table": table,
            "mapping": mapping,
            "targets": targets,
            "rows": rows,
            "raw": raw,
            "bad_in_preview": sum(1 for r in rows if r["problems"]),
            "new_tags": new_tags,
            "skip_bad_rows": skip_bad_rows,
            "create_tags": (Scope.tags_write in principal.scopes) if create_tags is None else create_tags,
            "error": error,
            "result": result,
            "bad_rows": _bad_rows(result) if result is not None else [],
        },
        user=user,
        status_code=status_code,
    )


def _index_page(request: Request, user: ConsoleUser, *, error: str | None = None, status_code: int = 200) -> Response:
    principal = user.principal
    with get_database(request).transaction(write=False) as session:
        imports = service.list_imports(session, principal, HISTORY)
        staff = {s.id: s.name for s in list_staff(session, principal.workspace_id)}
    return render(
        request,
        "imports/index.html",
        {
            "imports": imports,
            "staff": staff,
            "error": error,
            "can_import": Scope.contacts_write in principal.scopes,
            "max_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
        },
        user=user,
        status_code=status_code,
    )


def _stored(request: Request, user: ConsoleUser, form: FormData) -> StoredUpload:
    principal = user.principal
    assert principal.staff_id is not None  # the console is for staff sign-ins
    return _store(request).open(
        str(form.get("upload") or ""), workspace_id=principal.workspace_id, staff_id=principal.staff_id
    )


@router.get("/imports")
def imports_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(Scope.contacts_read)
    return _index_page(request, user)


@router.post("/imports/preview")
def preview(request: Request, user: CurrentUser, form: Form) -> Response:
    """A new file (multipart `file`), or the kept one (`upload` token) with the mapping selects changed."""
    _ = gettext_for(request)
    principal = user.principal
    principal.require(Scope.contacts_write)
    assert principal.staff_id is not None
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        store = _store(request)
        token = store.save(
            upload.file,
            upload.filename,
            workspace_id=principal.workspace_id,
            staff_id=principal.staff_id,
            max_bytes=MAX_UPLOAD_BYTES,
        )
        stored = store.open(token, workspace_id=principal.workspace_id, staff_id=principal.staff_id)
        try:
            with stored.path.open("rb") as handle:
                open_table(handle, stored.file_name)  # unreadable: say so on the upload form
        except ValidationFailed as exc:
            store.delete(token)
            return _index_page(request, user, error=exc.message, status_code=422)
        return _preview_page(request, user, stored, None)
    if not form.get("upload"):
        return _index_page(request, user, error=_("Choose a .xlsx or .csv file first."), status_code=422)
    stored = _stored(request, user, form)
    with stored.path.open("rb") as handle:
        headers = open_table(handle, stored.file_name).headers
    return _preview_page(
        request,
        user,
        stored,
        _given_mapping(form, headers),
        skip_bad_rows=form.get("skip_bad_rows") == "on",
        create_tags=form.get("create_tags") == "on",
    )


@router.post("/imports")
def run_import(request: Request, user: CurrentUser, form: Form) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(Scope.contacts_write)
    stored = _stored(request, user, form)
    skip = form.get("skip_bad_rows") == "on"
    create_tags = form.get("create_tags") == "on"
    options = service.Options(skip_bad_rows=skip, create_tags=create_tags)
    given: dict[str, str | None] | None = None
    with stored.path.open("rb") as handle:
        table = open_table(handle, stored.file_name)
        given = _given_mapping(form, table.headers)
        try:
            with get_database(request).transaction() as session:
                record = service.import_contacts(session, principal, table, given, options, region=_region(request))
                record_id, status = record.id, record.status
        except SiyuError as exc:  # a mapping that does not hold, tags the staff member may not create ...
            return _preview_page(
                request,
                user,
                stored,
                given,
                skip_bad_rows=skip,
                create_tags=create_tags,
                error=exc.message,
                status_code=exc.status_code,
            )
    if status is ImportStatus.refused:
        with get_database(request).transaction(write=False) as session:
            refused = service.get_import(session, principal, record_id)
            session.expunge(refused)
        return _preview_page(
            request, user, stored, given, skip_bad_rows=skip, create_tags=create_tags, result=refused, status_code=422
        )
    _store(request).delete(stored.token)
    response = redirect(request, f"/console/imports/{record_id}")
    flash(response, _("Import finished."))
    return response


@router.get("/imports/{import_id}")
def import_page(request: Request, user: CurrentUser, import_id: int) -> Response:
    principal = user.principal
    principal.require(Scope.contacts_read)
    with get_database(request).transaction(write=False) as session:
        record = service.get_import(session, principal, import_id)
        staff = {s.id: s.name for s in list_staff(session, principal.workspace_id)}
        session.expunge(record)
    return render(
        request, "imports/detail.html", {"record": record, "staff": staff, "bad_rows": _bad_rows(record)}, user=user
    )
