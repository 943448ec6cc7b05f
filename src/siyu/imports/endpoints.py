"""POST /imports/contacts/preview, POST /imports/contacts, GET /imports[/{id}[/errors]]."""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, File, Form, Query, UploadFile, status
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.config import get_settings
from siyu.errors import NotFound, PayloadTooLarge, validation_error
from siyu.exports.writers import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, temp_path, write_csv, write_xlsx
from siyu.imports import service
from siyu.imports.mapping import parse_mapping_json
from siyu.imports.models import ImportStatus
from siyu.imports.reader import open_table
from siyu.imports.schemas import ImportPreview, ImportRead

router = APIRouter(tags=["imports"])

ImportContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_write))]
ReadContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_read))]
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
MAPPING_HELP = (
    'JSON object {"column header": target or null}, laid over the guessed mapping. Targets: name, owner, '
    "source_channel, first_consult_at, consult_question, region, occupation, gender, birthday, identity:<type>, "
    "attr:<key>, tags, tags:<group>, note"
)


def _mapping(raw: str | None) -> dict[str, str | None] | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise validation_error("mapping", 'is not JSON; send an object like {"手机": "identity:phone"}') from None
    return parse_mapping_json(value)


def _checked(file: UploadFile) -> UploadFile:
    if file.size is not None and file.size > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"the file is over {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split it")
    return file


@router.post("/imports/contacts/preview", response_model=ImportPreview, summary="Preview a customer sheet")
def preview_import(
    session: ReadSession,
    principal: ImportContacts,
    file: Annotated[UploadFile, File(description=".xlsx or .csv (UTF-8 or GBK); the first row names the columns")],
    mapping: Annotated[str | None, Form(description=MAPPING_HELP)] = None,
) -> ImportPreview:
    """The detected encoding, the headers, the guessed mapping and the first 20 rows as they would be
    imported, each with its problems. Nothing is written."""
    upload = _checked(file)
    table = open_table(upload.file, upload.filename or "upload")
    result = service.preview(session, principal, table, _mapping(mapping), region=get_settings().default_phone_region)
    return ImportPreview.model_validate(result)


@router.post(
    "/imports/contacts",
    response_model=ImportRead,
    status_code=status.HTTP_201_CREATED,
    summary="Import contacts from a customer sheet",
    responses={422: {"description": "bad mapping, unreadable file, or bad rows (code import_refused)"}},
)
def import_contacts(
    session: WriteSession,
    principal: ImportContacts,
    file: Annotated[UploadFile, File(description=".xlsx or .csv (UTF-8 or GBK); the first row names the columns")],
    mapping: Annotated[str | None, Form(description=MAPPING_HELP)] = None,
    skip_bad_rows: Annotated[bool, Form(description="import the good rows and report the bad ones")] = False,
    create_tags: Annotated[bool, Form(description="create unknown tags (needs tags:write); else bad rows")] = True,
) -> ImportRead:
    """All or nothing: a bad row refuses the file (422, code `import_refused`, with the import and its
    error file) unless `skip_bad_rows` is true. Rows sharing an identity are one contact; a row naming an
    existing contact fills its empty fields and adds identities, tags and notes."""
    upload = _checked(file)
    table = open_table(upload.file, upload.filename or "upload")
    options = service.Options(skip_bad_rows=skip_bad_rows, create_tags=create_tags)
    record = service.import_contacts(
        session, principal, table, _mapping(mapping), options, region=get_settings().default_phone_region
    )
    summary = service.summary(record)
    session.commit()
    if record.status is ImportStatus.refused:
        raise service.ImportRefused(record, summary)
    return ImportRead.model_validate(summary)


@router.get("/imports", response_model=list[ImportRead], summary="Recent imports, newest first")
def list_imports(
    session: ReadSession, principal: ReadContacts, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[ImportRead]:
    return [ImportRead.model_validate(service.summary(r)) for r in service.list_imports(session, principal, limit)]


@router.get("/imports/{import_id}", response_model=ImportRead)
def get_import(import_id: int, session: ReadSession, principal: ReadContacts) -> ImportRead:
    return ImportRead.model_validate(service.summary(service.get_import(session, principal, import_id)))


@router.get(
    "/imports/{import_id}/errors",
    response_class=FileResponse,
    summary="The bad rows of an import with their reasons",
    responses={200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}}}},
)
def import_errors(
    import_id: int,
    session: ReadSession,
    principal: ReadContacts,
    format: Annotated[Literal["csv", "xlsx"], Query(description="csv (UTF-8 with BOM) or xlsx")] = "csv",
) -> FileResponse:
    """The file's original columns plus `row` (as Excel numbers it) and `error`: fix the rows and import
    this file again (the two extra columns are ignored)."""
    record = service.get_import(session, principal, import_id)
    if not record.errors:
        raise NotFound(f"import {import_id} had no bad rows")
    path = temp_path(f".{format}")
    rows = service.error_file_rows(record)
    if format == "xlsx":
        write_xlsx(path, rows, title="errors")
    else:
        write_csv(path, rows)
    stem = record.file_name.rsplit(".", 1)[0] or "import"
    return FileResponse(
        path,
        media_type=XLSX_MEDIA_TYPE if format == "xlsx" else CSV_MEDIA_TYPE,
        filename=f"{stem}-errors.{format}",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )
