"""One reading of contact filters, for GET /contacts query strings and bulk-action selections alike."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from siyu.auth.principal import Principal
from siyu.contacts import attributes as attrs
from siyu.contacts.identities import IdentityError, normalize
from siyu.contacts.models import Contact
from siyu.contacts.repository import (
    MAX_SEARCH_LENGTH,
    ContactFilter,
    filtered,
    identity_candidates,
    prepare_search,
)
from siyu.errors import validation_error

KNOWN = {"q", "tag", "owner_id", "unowned", "source_channel", "identity", "created_after", "created_before"}
DOC = (
    "q (search: name prefix, any identity exactly, note text), "
    "tag (repeatable; all of), owner_id, unowned=true, source_channel, identity=type:value or type, "
    "created_after, created_before (ISO 8601), attr.<name>=value"
)


def _values(raw: str | list[str]) -> list[str]:
    return raw if isinstance(raw, list) else [raw]


def _one(name: str, raw: str | list[str]) -> str:
    values = _values(raw)
    if len(values) != 1:
        raise validation_error(name, "give this filter once")
    return values[0]


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise validation_error(name, f"{value!r} is not an id (an integer)") from None


def _time(name: str, value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise validation_error(name, f"{value!r} is not an ISO 8601 time such as 2026-11-01T00:00:00+08:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_filter(params: Mapping[str, str | list[str]], *, region: str) -> ContactFilter:
    flt = ContactFilter()
    for name, raw in params.items():
        if name.startswith("attr."):
            flt.attributes[name[5:]] = _one(name, raw)
        elif name == "q":
            term = _one(name, raw).strip()
            if len(term) > MAX_SEARCH_LENGTH:
                raise validation_error("q", f"search text is longer than {MAX_SEARCH_LENGTH} characters")
            if term:
                flt.q = term
                flt.search_values = identity_candidates(term, region)
        elif name == "tag":
            flt.tag_ids = [_int("tag", v) for v in _values(raw)]
        elif name == "owner_id":
            flt.owner_id = _int(name, _one(name, raw))
        elif name == "unowned":
            flt.unowned = _one(name, raw).lower() in ("1", "true", "yes")
        elif name == "source_channel":
            flt.source_channel = _one(name, raw)
        elif name == "identity":
            identity_type, _, value = _one(name, raw).partition(":")
            flt.identity_type = identity_type
            if value:
                try:
                    flt.identity_value = normalize(identity_type, value, region=region)
                except IdentityError as exc:
                    raise validation_error("identity", str(exc)) from None
        elif name == "created_after":
            flt.created_after = _time(name, _one(name, raw))
        elif name == "created_before":
            flt.created_before = _time(name, _one(name, raw))
        else:
            raise validation_error(name, f"unknown filter; filters are: {DOC}")
    return flt


def selection_query(
    session: Session,
    principal: Principal,
    *,
    contact_ids: list[int] | None,
    filter_params: Mapping[str, str | list[str]] | None,
    region: str,
) -> Select[Any]:
    """The ids a bulk action applies to: listed ids, or every contact a filter matches, within what
    the caller may see (a consultant: their own contacts only)."""
    if contact_ids is not None:
        flt = ContactFilter(ids=contact_ids)
    else:
        flt = parse_filter(filter_params or {}, region=region)
    prepare_search(session, principal.workspace_id, flt)
    defs = attrs.definitions(session, principal.workspace_id)
    return filtered(select(Contact.id), principal.workspace_id, flt, principal.owned_contacts_only, defs)


def query_filter_params(query: QueryParams, *, skip: frozenset[str]) -> dict[str, str | list[str]]:
    """The filters of a query string, as parse_filter() takes them: `tag` may repeat, the rest once
    (the last one given wins). Parameters in `skip` (paging, format) are not filters."""
    params: dict[str, str | list[str]] = {}
    for key in query:
        if key not in skip:
            values = query.getlist(key)
            params[key] = values if key == "tag" else values[-1]
    return params
