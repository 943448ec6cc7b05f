"""Custom attributes: declared per workspace with a type, and every value checked against it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.contacts.models import AttributeDefinition, AttributeType
from siyu.contacts.schemas import AttributeDefinitionCreate
from siyu.errors import Conflict, ValidationFailed, validation_error

MAX_TEXT = 2000


def definitions(session: Session, workspace_id: int) -> dict[str, AttributeDefinition]:
    rows = session.scalars(select(AttributeDefinition).where(AttributeDefinition.workspace_id == workspace_id))
    return {row.key: row for row in rows}


def create_definition(session: Session, workspace_id: int, data: AttributeDefinitionCreate) -> AttributeDefinition:
    if data.type is AttributeType.choice and not data.choices:
        raise validation_error("choices", "a 'choice' attribute needs at least one choice")
    if data.type is not AttributeType.choice and data.choices:
        raise validation_error("choices", f"only 'choice' attributes take choices, not {data.type.value!r}")
    if data.key in definitions(session, workspace_id):
        raise Conflict(f"attribute {data.key!r} is already declared in this workspace")
    row = AttributeDefinition(
        workspace_id=workspace_id, key=data.key, label=data.label, type=data.type, choices=data.choices
    )
    session.add(row)
    session.flush()
    return row


def coerce_value(definition: AttributeDefinition, value: Any) -> Any:
    """Returns the value as stored (dates as ISO text) or raises ValueError with the reason."""
    kind = definition.type
    if kind is AttributeType.text:
        if not isinstance(value, str):
            raise ValueError("must be text")
        if len(value) > MAX_TEXT:
            raise ValueError(f"is longer than {MAX_TEXT} characters")
        return value
    if kind is AttributeType.number:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        return value
    if kind is AttributeType.date:
        if not isinstance(value, str):
            raise ValueError("must be a date written YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"{value!r} is not a date written YYYY-MM-DD") from None
    choices = definition.choices or []
    if value not in choices:
        raise ValueError(f"{value!r} is not one of the choices: {', '.join(choices)}")
    return value


def validate_attributes(
    defs: dict[str, AttributeDefinition], values: dict[str, Any], *, allow_null: bool, field: str = "attributes"
) -> dict[str, Any]:
    """Checks every key and value; raises one ValidationFailed listing every problem."""
    problems: list[dict[str, Any]] = []
    clean: dict[str, Any] = {}
    for key, value in values.items():
        definition = defs.get(key)
        if definition is None:
            problems.append(
                {"field": f"{field}.{key}", "reason": "not declared; declare it with POST /api/v1/attributes"}
            )
            continue
        if value is None:
            if allow_null:
                clean[key] = None
            else:
                problems.append({"field": f"{field}.{key}", "reason": "must not be null"})
            continue
        try:
            clean[key] = coerce_value(definition, value)
        except ValueError as exc:
            problems.append({"field": f"{field}.{key}", "reason": f"{definition.type.value} attribute {exc}"})
    if problems:
        raise ValidationFailed("; ".join(f"{p['field']}: {p['reason']}" for p in problems), details=problems)
    return clean
