"""Importing a customer sheet: every row is checked in Python first, then the whole file is written with
a few set-based statements in the caller's transaction.

Rules (docs/en/import.md):
- All or nothing: one bad row refuses the file and only the import record (with its error rows) is
  written, unless the operator chose to skip bad rows.
- One person per set of identities: rows sharing an identity are one contact; a row whose identity
  already exists fills that contact's empty fields and adds identities, attributes it lacks, tags and notes;
  it never overwrites a value the contact has. A row without any identity is always a new contact.
- Unknown tags are created (in the group "导入/Imported" unless the cell names a group, "组:标签"), which
  needs the tags:write scope; with create_tags=False they are bad rows instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.contacts import attributes as attrs
from siyu.contacts import repository as contacts_repo
from siyu.contacts.identities import IdentityError, normalize
from siyu.contacts.models import AttributeDefinition, AttributeType
from siyu.errors import NotFound, PermissionDenied, SiyuError
from siyu.events.service import workspace_timezone
from siyu.imports import repository
from siyu.imports.mapping import Column, resolve_mapping
from siyu.imports.models import ContactImport, ImportStatus
from siyu.imports.reader import Table, cell_text
from siyu.imports.values import parse_date, parse_datetime, parse_gender, parse_number, text
from siyu.kit.repository import get_in_workspace
from siyu.kit.time import utcnow
from siyu.kit.unionfind import UnionFind
from siyu.staff.models import Staff
from siyu.tags import service as tags_service
from siyu.tags.models import Tag, TagGroup, TagSource

IMPORTED_GROUP = "导入/Imported"
PREVIEW_ROWS = 20
TAG_SPLIT = re.compile(r"[,，、;；\n]+")
IDENTITY_SPLIT = re.compile(r"[;；\n]+")
PHONE_SPLIT = re.compile(r"[,，、;；/／\n]+")
TEXT_LIMITS = {"name": 100, "source_channel": 64, "region": 100, "occupation": 100, "consult_question": 5000}
NOTE_LIMIT = 20_000
TAG_NAME_LIMIT = 100
FILLABLE = ("name", "source_channel", "first_consult_at", "consult_question", "region", "occupation", "gender")

Progress = Callable[[str, int, int | None], None]
TagKey = tuple[str, str]  # (group name, tag name)


class ImportRefused(SiyuError):
    """Bad rows and no skipping: nothing was imported. The record (and its error file) was kept."""

    status_code = 422
    code = "import_refused"

    def __init__(self, record: ContactImport, summary: dict[str, Any]) -> None:
        problems = (record.error_rows or {}).get("rows", [])
        details = [{"row": number, "reason": reason} for number, _cells, reason in problems[:100]]
        super().__init__(
            f"{record.errors} of {record.rows} rows have problems, so nothing was imported; fix them (the error "
            f"file lists each with its reason: {summary['error_file']}) or import again skipping bad rows",
            details=details,
        )
        self.summary = summary

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        body["error"]["import"] = self.summary
        return body


@dataclass
class Options:
    skip_bad_rows: bool = False
    create_tags: bool = True


@dataclass
class Row:
    number: int
    cells: list[Any]
    fields: dict[str, Any] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[TagKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Person:
    rows: list[Row]
    contact_id: int | None  # the existing contact the rows name, if any
    fields: dict[str, Any] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    tags: list[TagKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What rows are checked against, loaded once per file."""

    principal: Principal
    region: str
    tz: ZoneInfo
    defs: dict[str, AttributeDefinition]
    staff_by_email: dict[str, Staff]
    staff_by_name: dict[str, list[Staff]]
    groups: dict[str, TagGroup]
    tags: dict[TagKey, Tag]
    groups_of_tag: dict[str, list[str]]
    create_tags: bool

    @classmethod
    def load(cls, session: Session, principal: Principal, *, region: str, create_tags: bool = True) -> Context:
        ws = principal.workspace_id
        staff = list(session.scalars(select(Staff).where(Staff.workspace_id == ws)))
        by_name: dict[str, list[Staff]] = {}
        for s in staff:
            by_name.setdefault(s.name, []).append(s)
        groups = {g.id: g for g in session.scalars(select(TagGroup).where(TagGroup.workspace_id == ws))}
        tags: dict[TagKey, Tag] = {}
        groups_of_tag: dict[str, list[str]] = {}
        for tag in session.scalars(select(Tag).where(Tag.workspace_id == ws).order_by(Tag.id)):
            group_name = groups[tag.group_id].name
            tags[(group_name, tag.name)] = tag
            groups_of_tag.setdefault(tag.name, []).append(group_name)
        return cls(
            principal=principal,
            region=region,
            tz=workspace_timezone(session, ws),
            defs=attrs.definitions(session, ws),
            staff_by_email={s.email.lower(): s for s in staff},
            staff_by_name=by_name,
            groups={g.name: g for g in groups.values()},
            tags=tags,
            groups_of_tag=groups_of_tag,
            create_tags=create_tags,
        )

    # --- one cell at a time ------------------------------------------------------------------------

    def owner(self, value: Any) -> int:
        raw = text(value).strip()
        staff = self.staff_by_email.get(raw.lower())
        if staff is None:
            named = self.staff_by_name.get(raw, [])
            if len(named) > 1:
                raise ValueError(f"{len(named)} staff members are named {raw!r}; write the owner's email instead")
            staff = named[0] if named else None
        if staff is None:
            raise ValueError(f"no staff member with the email or name {raw!r} in this workspace")
        if not staff.is_active:
            raise ValueError(f"staff member {raw!r} is deactivated; give their customers to someone else")
        owner_only = self.principal.owned_contacts_only
        if owner_only is not None and staff.id != owner_only:
            raise ValueError("a consultant imports customers for themselves; leave the column empty or name yourself")
        return staff.id

    def attribute(self, key: str, value: Any) -> Any:
        definition = self.defs[key]
        kind = definition.type
        if kind is AttributeType.number:
            value = parse_number(value)
        elif kind is AttributeType.date:
            day, _ = parse_date(value)
            if day is None:
                raise ValueError(f"{text(value)!r} has no year; write it like 2026-05-01")
            value = day.isoformat()
        else:
            value = text(value)
        return attrs.coerce_value(definition, value)

    def tag_keys(self, column: Column, value: Any) -> list[TagKey]:
        keys: list[TagKey] = []
        for part in TAG_SPLIT.split(text(value)):
            item = part.strip()
            if not item:
                continue
            if column.arg is not None:
                group, name = column.arg, item
            elif ":" in item or "：" in item:
                group, _, name = item.replace("：", ":").partition(":")
                group, name = group.strip(), name.strip()
            else:
                name = item
                groups = self.groups_of_tag.get(name, [])
                if len(groups) > 1:
                    raise ValueError(f"tag {name!r} is in several groups ({', '.join(groups)}); write it as group:tag")
                group = groups[0] if groups else IMPORTED_GROUP
            if not group or not name:
                raise ValueError(f"{item!r} is not a tag; write a name, or group:tag")
            if len(name) > TAG_NAME_LIMIT or len(group) > TAG_NAME_LIMIT:
                raise ValueError(f"tag {item!r} is longer than {TAG_NAME_LIMIT} characters")
            if (group, name) not in self.tags and not self.create_tags:
                raise ValueError(f"tag {group}:{name} does not exist (and this import does not create tags)")
            keys.append((group, name))
        return keys

    def exclusive_clash(self, keys: Iterable[TagKey]) -> str | None:
        held: dict[str, str] = {}
        for group, name in dict.fromkeys(keys):
            found = self.groups.get(group)
            if found is not None and found.exclusive:
                if group in held and held[group] != name:
                    return f"tags {held[group]!r} and {name!r} are both in exclusive group {group!r}; keep one"
                held[group] = name
        return None


def check_row(ctx: Context, columns: list[Column], number: int, cells: list[Any]) -> Row:
    """Reads one row through the mapping; every problem is noted (none raised)."""
    row = Row(number, cells)
    fields = row.fields
    for column in columns:
        value = cells[column.index]
        if value is None:
            continue
        kind = column.kind
        try:
            if kind == "identity":
                assert column.arg is not None
                splitter = PHONE_SPLIT if column.arg == "phone" else IDENTITY_SPLIT
                raw = text(value)
                for part in splitter.split(raw) if splitter.search(raw) else (raw,):
                    if part.strip():
                        row.pairs.append((column.arg, normalize(column.arg, part, region=ctx.region)))
            elif kind in TEXT_LIMITS:
                value = text(value)
                if len(value) > TEXT_LIMITS[kind]:
                    raise ValueError(f"is longer than {TEXT_LIMITS[kind]} characters")
                fields[kind] = value
            elif kind == "owner":
                fields["owner_id"] = ctx.owner(value)
            elif kind == "gender":
                fields["gender"] = parse_gender(value)
            elif kind == "first_consult_at":
                fields["first_consult_at"] = parse_datetime(value, ctx.tz)
            elif kind == "birthday":
                fields["birthday"], fields["birthday_mmdd"] = parse_date(value)
            elif kind == "attr":
                assert column.arg is not None
                row.attributes[column.arg] = ctx.attribute(column.arg, value)
            elif kind == "tags":
                row.tags += ctx.tag_keys(column, value)
            elif kind == "note":
                value = text(value)
                if len(value) > NOTE_LIMIT:
                    raise ValueError(f"is longer than {NOTE_LIMIT} characters")
                row.notes.append(value)
        except (ValueError, IdentityError) as exc:
            row.problems.append(f"{column.header}: {exc}")
    if row.tags and (clash := ctx.exclusive_clash(row.tags)):
        row.problems.append(clash)
    row.pairs = list(dict.fromkeys(row.pairs))
    return row


# --- preview -----------------------------------------------------------------------------------------


def mapping_for(
    session: Session, principal: Principal, table: Table, given: Mapping[str, str | None] | None
) -> tuple[dict[str, str | None], dict[str, str | None], list[Column]]:
    """(guessed mapping, mapping to apply, its columns)."""
    from siyu.imports.mapping import guess_mapping

    defs = attrs.definitions(session, principal.workspace_id)
    groups = [g.name for g in tags_service.list_groups(session, principal.workspace_id)]
    guessed = guess_mapping(table.headers, defs, groups)
    mapping, columns = resolve_mapping(table.headers, given, defs, groups)
    return guessed, mapping, columns


def preview(
    session: Session,
    principal: Principal,
    table: Table,
    given: Mapping[str, str | None] | None,
    *,
    region: str,
    limit: int = PREVIEW_ROWS,
) -> dict[str, Any]:
    guessed, mapping, columns = mapping_for(session, principal, table, given)
    ctx = Context.load(session, principal, region=region)
    rows: list[Row] = []
    for number, cells in table.rows():
        rows.append(check_row(ctx, columns, number, cells))
        if len(rows) >= limit:
            break
    known = contacts_repo.contacts_by_identities(
        session, principal.workspace_id, list(dict.fromkeys(p for r in rows for p in r.pairs))
    )
    return {
        "file_name": table.file_name,
        "file_format": table.file_format,
        "encoding": table.encoding,
        "headers": table.headers,
        "header_row": table.header_row,
        "guessed_mapping": guessed,
        "mapping": mapping,
        "rows": [_preview_row(r, known, ctx) for r in rows],
    }


def _preview_row(row: Row, known: dict[tuple[str, str], int], ctx: Context) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in row.fields.items():
        if key == "birthday_mmdd":
            continue
        values[key] = value.isoformat() if hasattr(value, "isoformat") else value
    if row.fields.get("birthday") is None and row.fields.get("birthday_mmdd"):
        mmdd = row.fields["birthday_mmdd"]
        values["birthday"] = f"--{mmdd // 100:02d}-{mmdd % 100:02d}"
    values["identities"] = [{"type": t, "value": v} for t, v in row.pairs]
    values["attributes"] = row.attributes
    values["tags"] = [f"{g}:{n}" for g, n in dict.fromkeys(row.tags)]
    values["new_tags"] = [f"{g}:{n}" for g, n in dict.fromkeys(row.tags) if (g, n) not in ctx.tags]
    values["notes"] = row.notes
    matches = sorted({known[p] for p in row.pairs if p in known})
    return {"row": row.number, "values": values, "existing_contact_ids": matches, "problems": row.problems}


# --- import ------------------------------------------------------------------------------------------


def _people(
    session: Session, ctx: Context, rows: list[Row]
) -> tuple[list[Person], dict[tuple[str, str], int], dict[int, dict[str, Any]]]:
    """Groups good rows into people (rows sharing an identity are one person) and finds who exists."""
    ws = ctx.principal.workspace_id
    all_pairs = list(dict.fromkeys(p for r in rows for p in r.pairs))
    known = contacts_repo.contacts_by_identities(session, ws, all_pairs)
    profiles = repository.load_profiles(session, sorted(set(known.values())))
    uf = UnionFind()
    for index, row in enumerate(rows):
        node = ("#row", index)
        uf.find(node)
        for pair in row.pairs:
            uf.union(node, pair)
            if pair in known:
                uf.union(pair, ("#contact", known[pair]))
    components: dict[object, list[Row]] = {}
    for index, row in enumerate(rows):
        components.setdefault(uf.find(("#row", index)), []).append(row)
    people: list[Person] = []
    owner_only = ctx.principal.owned_contacts_only
    for members in components.values():
        existing = sorted({known[p] for r in members for p in r.pairs if p in known})
        problem = None
        if len(existing) > 1:
            problem = (
                f"the identities name {len(existing)} different contacts ({', '.join(map(str, existing))}); "
                f"merge them first (POST /api/v1/contacts/{existing[0]}/merge) or correct the row"
            )
        elif existing and owner_only is not None and profiles[existing[0]]["owner_id"] != owner_only:
            problem = "the identity belongs to a customer of another staff member; ask an operator to import it"
        else:
            problem = ctx.exclusive_clash(k for r in members for k in r.tags)
        if problem:
            for r in members:
                r.problems.append(problem)
            continue
        person = Person(members, existing[0] if existing else None)
        for r in members:  # earlier rows first: a later row only fills what is still empty
            for key, value in r.fields.items():
                if person.fields.get(key) is None:
                    person.fields[key] = value
            for key, value in r.attributes.items():
                person.attributes.setdefault(key, value)
            person.pairs += r.pairs
            person.tags += r.tags
            person.notes += r.notes
        person.pairs = list(dict.fromkeys(person.pairs))
        person.tags = list(dict.fromkeys(person.tags))
        person.notes = list(dict.fromkeys(person.notes))
        people.append(person)
    return people, known, profiles


def _filled(profile: dict[str, Any], person: Person) -> dict[str, Any] | None:
    """The contact's columns with its empty ones filled from the person; None when nothing changes."""
    out = dict(profile)
    changed = False
    for key in (*FILLABLE, "owner_id"):
        value = person.fields.get(key)
        if value is not None and out.get(key) is None:
            out[key] = value
            changed = True
    if out.get("birthday") is None and out.get("birthday_mmdd") is None and person.fields.get("birthday_mmdd"):
        out["birthday"] = person.fields.get("birthday")
        out["birthday_mmdd"] = person.fields["birthday_mmdd"]
        changed = True
    current = dict(out.get("attributes") or {})
    for key, value in person.attributes.items():
        if current.get(key) is None:
            current[key] = value
            changed = True
    out["attributes"] = current
    return out if changed else None


def import_contacts(
    session: Session,
    principal: Principal,
    table: Table,
    given: Mapping[str, str | None] | None,
    options: Options,
    *,
    region: str,
    progress: Progress | None = None,
) -> ContactImport:
    """Checks every row, then writes the file (or, when refused, only the import record). Never commits."""
    report = progress or (lambda _stage, _done, _total: None)
    _, mapping, columns = mapping_for(session, principal, table, given)
    ctx = Context.load(session, principal, region=region, create_tags=options.create_tags)
    ws = principal.workspace_id

    rows: list[Row] = []
    count = 0
    report("reading", 0, table.size_hint)
    for number, cells in table.rows():
        rows.append(check_row(ctx, columns, number, cells))
        count += 1
        if count % 2000 == 0:
            report("reading", count, table.size_hint)
    report("reading", count, count)

    good = [r for r in rows if not r.problems]
    people, known, profiles = _people(session, ctx, good)
    bad = [r for r in rows if r.problems]
    record = ContactImport(
        workspace_id=ws,
        staff_id=principal.staff_id,
        api_key_id=principal.api_key_id,
        file_name=table.file_name[:255],
        file_format=table.file_format,
        encoding=table.encoding,
        skip_bad_rows=options.skip_bad_rows,
        rows=len(rows),
        errors=len(bad),
        mapping=mapping,
        error_rows=_error_rows(table.headers, bad) if bad else None,
        created=0,
        updated=0,
        skipped=0,
        tags_created=0,
    )
    if bad and not options.skip_bad_rows:
        record.status = ImportStatus.refused
        session.add(record)
        session.flush()
        return record

    new_tags = list(dict.fromkeys(k for p in people for k in p.tags if k not in ctx.tags))
    if new_tags and Scope.tags_write not in principal.scopes:
        names = ", ".join(f"{g}:{n}" for g, n in new_tags[:10])
        raise PermissionDenied(
            f"the file names tags that do not exist ({names}); creating them needs the scope 'tags:write': "
            "create them first, ask an operator, or import with create_tags=false to report those rows"
        )
    record.status = ImportStatus.completed
    record.skipped = len(bad)
    session.add(record)
    session.flush()
    now = utcnow()

    report("writing", 0, len(people))
    tag_ids = _create_tags(session, ctx, new_tags)
    record.tags_created = len(new_tags)

    owner_only = principal.owned_contacts_only
    fresh = [p for p in people if p.contact_id is None]
    new_rows = []
    for person in fresh:
        values = dict(person.fields)
        values["attributes"] = person.attributes
        if owner_only is not None:
            values["owner_id"] = owner_only
        new_rows.append(values)
    for person, contact_id in zip(fresh, repository.insert_contacts(session, ws, new_rows, now), strict=True):
        person.contact_id = contact_id
    report("writing", len(fresh), len(people))
    placed = [(p, p.contact_id) for p in people if p.contact_id is not None]
    assert len(placed) == len(people)

    updates = []
    for person, cid in placed:
        if cid in profiles:
            filled = _filled(profiles[cid], person)
            if filled is not None:
                updates.append(filled)
    repository.update_profiles(session, updates, now)

    identities = [(cid, t, v) for p, cid in placed for t, v in p.pairs if (t, v) not in known]
    contacts_repo.insert_identities(session, ws, identities, now)

    old = sorted({cid for _, cid in placed if cid in profiles})
    seen_notes = repository.existing_notes(session, old) if old else set()
    notes = [(cid, n) for p, cid in placed for n in p.notes if (cid, n) not in seen_notes]
    repository.insert_notes(session, ws, notes, staff_id=principal.staff_id, api_key_id=principal.api_key_id, now=now)

    pairs = list(dict.fromkeys((tag_ids[k], cid) for p, cid in placed for k in p.tags))
    if pairs:
        report("tagging", 0, len(pairs))
        repository.fill_tag_table(session, pairs)
        reason = f"import {record.id}: {table.file_name}"[:500]
        temp = repository.import_tags
        for tag_id in dict.fromkeys(t for t, _ in pairs):
            selection = select(temp.c.contact_id).where(temp.c.tag_id == tag_id)
            tags_service.change_tags(
                session, principal, selection, add=[tag_id], remove=[], reason=reason, source=TagSource.import_
            )
        repository.drop_tag_table(session)
        report("tagging", len(pairs), len(pairs))

    record.created = len(fresh)
    record.updated = len(people) - len(fresh)
    session.flush()
    report("writing", len(people), len(people))
    return record


def _create_tags(session: Session, ctx: Context, new_tags: list[TagKey]) -> dict[TagKey, int]:
    ids = {key: tag.id for key, tag in ctx.tags.items()}
    ws = ctx.principal.workspace_id
    for group_name in dict.fromkeys(g for g, _ in new_tags):
        if group_name not in ctx.groups:
            group = TagGroup(workspace_id=ws, name=group_name, exclusive=False)
            session.add(group)
            ctx.groups[group_name] = group
    session.flush()
    created = [Tag(workspace_id=ws, group_id=ctx.groups[g].id, name=n) for g, n in new_tags]
    session.add_all(created)
    session.flush()
    for key, tag in zip(new_tags, created, strict=True):
        ctx.tags[key] = tag
        ids[key] = tag.id
    return ids


def _error_rows(headers: list[str], bad: list[Row]) -> dict[str, Any]:
    return {
        "headers": headers,
        "rows": [[r.number, [cell_text(c) for c in r.cells], "; ".join(r.problems)] for r in bad],
    }


def list_imports(session: Session, principal: Principal, limit: int = 50) -> list[ContactImport]:
    """The workspace's imports, newest first; a consultant (owned_contacts_only) sees only their own."""
    q = select(ContactImport).where(ContactImport.workspace_id == principal.workspace_id)
    if principal.owned_contacts_only is not None:
        q = q.where(ContactImport.staff_id == principal.staff_id)
    return list(session.scalars(q.order_by(ContactImport.id.desc()).limit(limit)))


def get_import(session: Session, principal: Principal, import_id: int) -> ContactImport:
    """One import of the workspace; a consultant sees only their own (NotFound otherwise)."""
    record = get_in_workspace(session, ContactImport, principal.workspace_id, import_id, "import")
    if principal.owned_contacts_only is not None and record.staff_id != principal.staff_id:
        raise NotFound(f"import {import_id} not found among your imports")
    return record


def summary(record: ContactImport) -> dict[str, Any]:
    return {
        "id": record.id,
        "status": record.status.value,
        "file_name": record.file_name,
        "file_format": record.file_format,
        "encoding": record.encoding,
        "skip_bad_rows": record.skip_bad_rows,
        "rows": record.rows,
        "created": record.created,
        "updated": record.updated,
        "skipped": record.skipped,
        "errors": record.errors,
        "tags_created": record.tags_created,
        "mapping": record.mapping,
        "staff_id": record.staff_id,
        "api_key_id": record.api_key_id,
        "created_at": record.created_at.isoformat(),
        "error_file": f"/api/v1/imports/{record.id}/errors" if record.errors else None,
    }


def error_file_rows(record: ContactImport) -> Iterator[list[Any]]:
    """The error file: the original columns, then the row number and the reasons."""
    data = record.error_rows or {"headers": [], "rows": []}
    yield [*data["headers"], "row", "error"]
    for number, cells, reason in data["rows"]:
        yield [*cells, number, reason]
