"""Console pages for segments (分群): the list with sizes and trends, the builder with a live count and
sample, a segment's page with its members, and the user-model panel of the contact page.

The builder edits the rule's JSON (docs/en/segments.md) through rows of conditions drawn by
`static/segments.js`; the JSON itself is the form field `rule` (the "advanced" view), so the server
only ever reads one thing, and everything the builder sends is checked by the same parser as the API.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.channels.models import ChannelCode
from siyu.computed.models import ContactEventStat
from siyu.console.dashboard import zone
from siyu.console.render import ConsoleUser, flash, gettext_for, language, redirect, render
from siyu.console.security import CurrentUser
from siyu.contacts import attributes as attrs
from siyu.contacts import service as contacts_service
from siyu.contacts.models import Contact
from siyu.content import service as content_service
from siyu.errors import Conflict, SiyuError
from siyu.events.catalog import STANDARD_EVENT_TYPES
from siyu.kit.time import utcnow
from siyu.recommend import portrait
from siyu.scoring import service as scoring_service
from siyu.scoring.config import INTENTION_LEVELS, LIFECYCLE_STAGES, TIERS, parse_config
from siyu.scoring.models import ContactScore, ScoringSettings
from siyu.segments import service
from siyu.segments.explain import Names, describe, explain_membership
from siyu.segments.models import Segment, SegmentMember, SegmentSizeDay
from siyu.segments.rules import (
    COMPUTED,
    COMPUTED_OPS,
    OPS_BY_KIND,
    PROPERTY_OPS,
    STANDARD_FIELDS,
    And,
    Node,
    Not,
    Or,
    RuleError,
)
from siyu.staff.service import list_staff
from siyu.tags import service as tags_service

router = APIRouter()

READ_SCOPE = Scope.segments_read
WRITE_SCOPE = Scope.segments_write

TREND_DAYS = 30
MEMBERS_PAGE = 50
EMPTY_RULE: dict[str, Any] = {"and": []}
OP_ORDER = (
    "eq",
    "ne",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "within_last_days",
    "within_next_days",
    "more_than_days_ago",
    "is_set",
    "is_not_set",
)
IDENTITY_TYPES = ("wecom_external_userid", "wechat_unionid", "wechat_openid", "phone", "email", "douyin_open_id")


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _can_write(user: ConsoleUser) -> bool:
    return WRITE_SCOPE in user.principal.scopes


# --- words -----------------------------------------------------------------------------------------


def _labels(request: Request) -> dict[str, dict[str, str]]:
    """Names operators read for the values the models produce (the rule language keeps the keys)."""
    _ = gettext_for(request)
    return {
        "lifecycle_stage": {
            "acquired": _("Acquired"),
            "activated": _("Activated"),
            "customer": _("Customer"),
            "repeat_customer": _("Repeat customer"),
            "advocate": _("Advocate"),
            "at_risk": _("At risk"),
            "churned": _("Churned"),
        },
        "value_tier": {
            "loyal": _("Loyal"),
            "high_quality": _("High-quality"),
            "ordinary": _("Ordinary"),
            "low_frequency": _("Low-frequency"),
            "lost": _("Lost"),
        },
        "intention_level": {"strong": _("Strong intention"), "weak": _("Weak intention"), "none": _("No intention")},
    }


def lifecycle_labels(request: Request) -> dict[str, str]:
    """Lifecycle stage key -> its name in the reader's language."""
    return _labels(request)["lifecycle_stage"]


def _transaction_stages(session: Session, workspace_id: int) -> dict[str, str]:
    """The workspace's transaction stages, key -> label, in order (none if not configured or unreadable)."""
    raw = session.scalar(select(ScoringSettings.config).where(ScoringSettings.workspace_id == workspace_id))
    if not raw:
        return {}
    try:
        config = parse_config(raw)
    except SiyuError:
        return {}
    return {stage.key: stage.label for stage in config.transaction_stages}


def _vocabulary(
    session: Session, request: Request, workspace_id: int, *, self_segment_id: int | None
) -> dict[str, Any]:
    """Everything the builder offers, with the words it shows, as one JSON object for segments.js."""
    _ = gettext_for(request)
    field_labels = {
        "name": _("Name"),
        "source_channel": _("Source channel"),
        "region": _("Region"),
        "occupation": _("Occupation"),
        "consult_question": _("Question asked"),
        "gender": _("Gender"),
        "birthday": _("Birthday"),
        "created_at": _("Created"),
        "first_consult_at": _("First consult"),
        "owner_id": _("Owner"),
    }
    genders = [
        {"value": "male", "label": _("Male")},
        {"value": "female", "label": _("Female")},
        {"value": "unknown", "label": _("Unknown")},
    ]
    fields: list[dict[str, Any]] = [
        {
            "value": key,
            "label": field_labels[key],
            "kind": kind,
            "choices": genders if key == "gender" else None,
        }
        for key, kind in STANDARD_FIELDS.items()
    ]
    for definition in sorted(attrs.definitions(session, workspace_id).values(), key=lambda d: d.id):
        fields.append(
            {
                "value": f"attributes.{definition.key}",
                "label": definition.label,
                "kind": definition.type.value,
                "choices": [{"value": c, "label": c} for c in definition.choices] if definition.choices else None,
            }
        )
    ops = {
        "eq": _("is"),
        "ne": _("is not"),
        "in": _("is one of"),
        "not_in": _("is none of"),
        "contains": _("contains"),
        "starts_with": _("starts with"),
        "gt": ">",
        "gte": "≥",
        "lt": "<",
        "lte": "≤",
        "between": _("between"),
        "within_last_days": _("in the last N days"),
        "within_next_days": _("in the next N days"),
        "more_than_days_ago": _("more than N days ago"),
        "is_set": _("is set"),
        "is_not_set": _("is not set"),
    }
    computed_labels = {
        "order_count": _("Paid orders"),
        "total_paid": _("Total paid (yuan)"),
        "days_since_last_order": _("Days since the last order"),
        "r_score": _("R score (recency)"),
        "f_score": _("F score (frequency)"),
        "m_score": _("M score (monetary)"),
        "intention_score": _("Intention score"),
        "lifecycle_stage": _("Lifecycle stage"),
        "value_tier": _("Value tier"),
        "intention_level": _("Intention level"),
        "transaction_stage": _("Transaction stage"),
    }
    labels = _labels(request)
    known_values: dict[str, list[str]] = {
        "lifecycle_stage": list(LIFECYCLE_STAGES),
        "value_tier": list(TIERS),
        "intention_level": list(INTENTION_LEVELS),
    }
    stages = _transaction_stages(session, workspace_id)
    config = portrait.load_config(session, workspace_id)
    computed = []
    for name, (kind, description) in COMPUTED.items():
        choices = None
        if name in known_values:
            choices = [{"value": v, "label": labels[name].get(v, v)} for v in known_values[name]]
        elif name == "transaction_stage":
            choices = [{"value": k, "label": v} for k, v in stages.items()] or None
        computed.append(
            {"value": name, "label": computed_labels[name], "kind": kind, "choices": choices, "help": description}
        )
    groups = tags_service.list_groups(session, workspace_id)
    tags = tags_service.list_tags(session, workspace_id)
    codes = session.scalars(
        select(ChannelCode).where(ChannelCode.workspace_id == workspace_id).order_by(ChannelCode.name)
    )
    event_types = set(STANDARD_EVENT_TYPES) | {"price.viewed"}
    event_types |= set(
        session.scalars(
            select(ContactEventStat.event_type)
            .where(ContactEventStat.workspace_id == workspace_id)
            .distinct()
            .limit(200)
        )
    )
    channels = session.scalars(
        select(Contact.source_channel)
        .where(Contact.workspace_id == workspace_id, Contact.source_channel.is_not(None))
        .distinct()
        .limit(100)
    )
    return {
        "fields": fields,
        "ops": ops,
        "opsByKind": {kind: [op for op in OP_ORDER if op in allowed] for kind, allowed in OPS_BY_KIND.items()},
        "computed": computed,
        "computedOps": {kind: [op for op in OP_ORDER if op in allowed] for kind, allowed in COMPUTED_OPS.items()},
        "propertyOps": [op for op in OP_ORDER if op in PROPERTY_OPS],
        "tagGroups": [
            {"name": g.name, "tags": [{"id": t.id, "name": t.name} for t in tags if t.group_id == g.id]} for g in groups
        ],
        "codes": [{"id": c.id, "name": c.name} for c in codes],
        "contentTags": [
            {"name": g.name, "tags": [{"id": t.id, "name": t.name} for t in group_tags]}
            for g, group_tags in content_service.list_tag_groups(session, workspace_id)
            if group_tags
        ],
        "segments": [
            {"id": s.id, "name": s.name}
            for s in service.list_segments(session, workspace_id)
            if s.id != self_segment_id
        ],
        "staff": [{"id": s.id, "name": s.name} for s in list_staff(session, workspace_id)],
        "eventTypes": sorted(event_types),
        "identityTypes": list(IDENTITY_TYPES),
        "sourceChannels": sorted(c for c in channels if c),
        "text": {
            "all": _("All of these (AND)"),
            "any": _("Any of these (OR)"),
            "not": _("NOT"),
            "addCondition": _("+ Condition"),
            "addGroup": _("+ Group"),
            "remove": _("Remove"),
            "empty": _("No conditions yet: add one."),
            "attribute": _("Profile field"),
            "identity": _("Identity"),
            "tags": _("Tags"),
            "channel_code": _("Channel code"),
            "event": _("Behaviour (event)"),
            "computed": _("Computed property"),
            "segment": _("In segment"),
            "interest": _("Content interest"),
            "interestAtLeast": _("affinity at least"),
            "interestHelp": _(
                "From the user portrait: a view of content with this tag adds %(view)s, a favourite %(favourite)s; "
                "the affinity halves every %(days)s days."
            )
            % {
                "view": _number(config.weights.get("content.viewed", 0.0)),
                "favourite": _number(config.weights.get("content.favorited", 0.0)),
                "days": _number(config.half_life_days),
            },
            "has": _("has"),
            "hasNot": _("has no"),
            "matchAny": _("has any of"),
            "matchAll": _("has all of"),
            "matchNone": _("has none of"),
            "touchFirst": _("first came through"),
            "touchAny": _("ever came through"),
            "performed": _("performed"),
            "notPerformed": _("never performed"),
            "firstTime": _("first time"),
            "lastTime": _("last time"),
            "atLeast": _("at least"),
            "atMost": _("at most"),
            "exactly": _("exactly"),
            "times": _("times"),
            "ever": _("ever"),
            "withinLast": _("in the last"),
            "betweenDates": _("between dates"),
            "days": _("days"),
            "before": _("before"),
            "after": _("after"),
            "onDate": _("a date"),
            "daysAgo": _("N days ago"),
            "where": _("+ Property filter"),
            "property": _("property"),
            "value": _("value"),
            "values": _("values, separated by commas"),
            "and": _("and"),
            "choose": _("choose…"),
            "unsupported": _("The builder cannot show this rule; edit it in the advanced (JSON) view."),
            "badJson": _("Not valid JSON yet: the builder shows the last valid rule."),
        },
    }


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# --- shared pieces ---------------------------------------------------------------------------------


def _trend(
    rows: list[SegmentSizeDay], today: dt.date, days: int = TREND_DAYS
) -> tuple[list[dt.date], list[int | None]]:
    """Size at the end of each of the last `days` local days; a day without a refresh kept the size of the
    day before; days before the segment existed have none."""
    by_day = {r.day: r.size for r in rows}
    span = [today - dt.timedelta(days=days - 1 - n) for n in range(days)]
    earlier = [r for r in rows if r.day < span[0]]
    current: int | None = earlier[-1].size if earlier else None
    sizes: list[int | None] = []
    for day in span:
        current = by_day.get(day, current)
        sizes.append(current)
    return span, sizes


def sparkline(sizes: list[int | None], width: int = 120, height: int = 28) -> Markup:
    """A tiny SVG line of the sizes (no script): the list page draws one per segment."""
    points = [(n, s) for n, s in enumerate(sizes) if s is not None]
    if not points:
        return Markup('<svg class="spark" width="{w}" height="{h}" aria-hidden="true"></svg>').format(w=width, h=height)
    low = min(s for _, s in points)
    high = max(s for _, s in points)
    spread = (high - low) or 1
    step = width / max(len(sizes) - 1, 1)
    coords = " ".join(
        f"{n * step:.1f},{(height - 3) - (s - low) / spread * (height - 6) if high != low else height / 2:.1f}"
        for n, s in points
    )
    return Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{label}">'
        '<polyline fill="none" stroke="#1677ff" stroke-width="1.5" points="{coords}"/></svg>'
    ).format(w=width, h=height, coords=coords, label=f"{points[0][1]} → {points[-1][1]}")


def _rule_lines(node: Node, names: Names, lang: str, depth: int = 0) -> list[tuple[int, str]]:
    """The rule in words, one condition a line, indented by nesting (the same words as "why")."""
    lines = [(depth, describe(node, names, lang))]
    if isinstance(node, And | Or):
        for child in node.children:
            lines += _rule_lines(child, names, lang, depth + 1)
    elif isinstance(node, Not):
        lines += _rule_lines(node.child, names, lang, depth + 1)
    return lines


def _rule_text(rule: Any) -> str:
    return json.dumps(rule, ensure_ascii=False, indent=2)


def _check(
    session: Session, principal: Principal, raw: str, self_segment_id: int | None
) -> tuple[Any, RuleError | None]:
    """The rule the form sent, parsed from JSON and checked; (rule, None) or (whatever it was, the error)."""
    try:
        rule = json.loads(raw) if raw.strip() else EMPTY_RULE
    except json.JSONDecodeError as exc:
        return None, RuleError("$", f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")
    if isinstance(rule, dict) and rule in ({"and": []}, {"or": []}):
        return rule, RuleError("$", "add at least one condition")
    try:
        service.parse(session, principal.workspace_id, rule, self_segment_id=self_segment_id)
    except RuleError as exc:
        return rule, exc
    return rule, None


def _contacts_by_id(session: Session, ids: list[int]) -> list[Contact]:
    if not ids:
        return []
    found = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


# --- list ------------------------------------------------------------------------------------------


@router.get("/segments")
def segments_page(request: Request, user: CurrentUser) -> Response:
    principal = user.principal
    principal.require(READ_SCOPE)
    today = utcnow().astimezone(zone(user)).date()
    with get_database(request).transaction(write=False) as session:
        segments = service.list_segments(session, principal.workspace_id)
        history: dict[int, list[SegmentSizeDay]] = {s.id: [] for s in segments}
        if segments:
            start = today - dt.timedelta(days=TREND_DAYS - 1)
            ws = SegmentSizeDay.workspace_id == principal.workspace_id
            # the window's days, and each segment's last day before it (the size the window starts from)
            last_before = (
                select(SegmentSizeDay.segment_id, func.max(SegmentSizeDay.day).label("day"))
                .where(ws, SegmentSizeDay.day < start)
                .group_by(SegmentSizeDay.segment_id)
                .subquery()
            )
            earlier = select(SegmentSizeDay).join(
                last_before,
                (SegmentSizeDay.segment_id == last_before.c.segment_id) & (SegmentSizeDay.day == last_before.c.day),
            )
            window = select(SegmentSizeDay).where(ws, SegmentSizeDay.day >= start).order_by(SegmentSizeDay.day)
            for row in [*session.scalars(earlier), *session.scalars(window)]:
                history.setdefault(row.segment_id, []).append(row)
        rows = []
        for segment in segments:
            _days, sizes = _trend(history.get(segment.id, []), today)
            rows.append({"segment": segment, "spark": sparkline(sizes), "sizes": sizes})
    return render(request, "segments/index.html", {"rows": rows, "can_write": _can_write(user)}, user=user)


# --- builder ---------------------------------------------------------------------------------------


def _builder(
    request: Request,
    user: ConsoleUser,
    session: Session,
    *,
    segment: Segment | None,
    name: str,
    description: str,
    rule_text: str,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    vocab = _vocabulary(session, request, user.principal.workspace_id, self_segment_id=segment.id if segment else None)
    return render(
        request,
        "segments/builder.html",
        {
            "segment": segment,
            "name": name,
            "description": description,
            "rule_text": rule_text,
            "vocab_json": orjson.dumps(vocab).decode(),  # an attribute: autoescaped
            "errors": errors or {},
            "can_write": _can_write(user),
        },
        user=user,
        status_code=status_code,
    )


@router.get("/segments/new")
def new_segment_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(WRITE_SCOPE)
    with get_database(request).transaction(write=False) as session:
        return _builder(request, user, session, segment=None, name="", description="", rule_text=_rule_text(EMPTY_RULE))


@router.post("/segments/preview")
def preview_rule(request: Request, user: CurrentUser, form: Form) -> Response:
    """The builder's live count and sample for the rule being edited (never saved)."""
    principal = user.principal
    principal.require(READ_SCOPE)
    raw_self = _text(form, "segment_id")
    self_id = int(raw_self) if raw_self.isdigit() else None
    count: int | None = None
    sample: list[Contact] = []
    with get_database(request).transaction(write=False) as session:
        rule, error = _check(session, principal, _text(form, "rule"), self_id)
        if error is None:
            try:
                result = service.preview(session, principal, rule)
                count = result.count
                sample = _contacts_by_id(session, result.sample)
            except RuleError as exc:
                error = exc
    empty = isinstance(rule, dict) and rule in ({"and": []}, {"or": []})
    return render(
        request,
        "segments/_preview.html",
        {"count": count, "sample": sample, "error": error, "empty": empty},
        user=user,
    )


def _save_errors(exc: SiyuError) -> dict[str, str]:
    if isinstance(exc, RuleError):
        return {"rule": f"{exc.path}: {exc.reason}", "rule_path": exc.path}
    if isinstance(exc, Conflict):
        return {"name": exc.message}
    return {"": exc.message}


def _save(request: Request, user: ConsoleUser, form: FormData, segment_id: int | None) -> Response:
    """Creates (segment_id None) or updates a segment from the builder's form; a refusal shows the form
    again with what was typed and the reasons (422), never a half-saved segment."""
    _ = gettext_for(request)
    principal = user.principal
    principal.require(WRITE_SCOPE)
    name, description, rule_text = _text(form, "name"), _text(form, "description"), _text(form, "rule")
    session = get_database(request).session(write=True)
    try:
        segment = service.get_segment(session, principal.workspace_id, segment_id) if segment_id else None
        errors: dict[str, str] = {}
        rule, error = _check(session, principal, rule_text, segment_id)
        if error is not None:
            errors = _save_errors(error)
        if not name:
            errors["name"] = _("Give the segment a name.")
        elif len(name) > 100:
            errors["name"] = _("At most 100 characters.")
        if not errors:
            try:
                if segment is None:
                    segment = service.create_segment(
                        session, principal, name=name, rule=rule, description=description or None
                    )
                else:
                    service.update_segment(
                        session,
                        principal,
                        segment.id,
                        name=name,
                        description=description,
                        rule=None if rule == segment.rule else rule,
                    )
                saved_id = segment.id
                session.commit()
            except SiyuError as exc:
                session.rollback()
                errors = _save_errors(exc)
        if errors:
            segment = service.get_segment(session, principal.workspace_id, segment_id) if segment_id else None
            return _builder(
                request,
                user,
                session,
                segment=segment,
                name=name,
                description=description,
                rule_text=rule_text,
                errors=errors,
                status_code=422,
            )
    finally:
        session.close()
    response = redirect(request, f"/console/segments/{saved_id}")
    flash(response, _("Segment “%(name)s” saved.") % {"name": name})
    return response


@router.post("/segments")
def create_segment(request: Request, user: CurrentUser, form: Form) -> Response:
    return _save(request, user, form, None)


@router.post("/segments/{segment_id:int}")
def update_segment(request: Request, user: CurrentUser, segment_id: int, form: Form) -> Response:
    return _save(request, user, form, segment_id)


@router.get("/segments/{segment_id:int}/edit")
def edit_segment_page(request: Request, user: CurrentUser, segment_id: int) -> Response:
    principal = user.principal
    principal.require(WRITE_SCOPE)
    with get_database(request).transaction(write=False) as session:
        segment = service.get_segment(session, principal.workspace_id, segment_id)
        return _builder(
            request,
            user,
            session,
            segment=segment,
            name=segment.name,
            description=segment.description or "",
            rule_text=_rule_text(segment.rule),
        )


# --- a segment's page ------------------------------------------------------------------------------


@router.get("/segments/{segment_id:int}")
def segment_page(request: Request, user: CurrentUser, segment_id: int, after: int | None = None) -> Response:
    principal = user.principal
    principal.require(READ_SCOPE)
    tz = zone(user)
    today = utcnow().astimezone(tz).date()
    with get_database(request).transaction(write=False) as session:
        segment = service.get_segment(session, principal.workspace_id, segment_id)
        history = service.size_history(session, segment, days=TREND_DAYS + 366)
        days, sizes = _trend(history, today)
        _ = gettext_for(request)
        # what console.js draws for data-chart=series; days before the segment existed are gaps
        chart = orjson.dumps(
            {"x": [d.isoformat() for d in days], "series": [{"name": _("Members"), "values": sizes}], "type": "line"}
        ).decode()
        try:
            rule_lines = _rule_lines(
                service.parse(session, principal.workspace_id, segment.rule),
                Names.of_workspace(session, principal.workspace_id),
                language(request),
            )
        except RuleError as exc:
            rule_lines = [(0, f"{exc.path}: {exc.reason}")]
        ids = service.list_member_ids(session, segment, principal, after=after, limit=MEMBERS_PAGE + 1)
        next_after = ids[MEMBERS_PAGE - 1] if len(ids) > MEMBERS_PAGE else None
        ids = ids[:MEMBERS_PAGE]
        members = _contacts_by_id(session, ids)
        entered = {
            contact_id: at
            for contact_id, at in session.execute(
                select(SegmentMember.contact_id, SegmentMember.entered_at).where(
                    SegmentMember.segment_id == segment.id, SegmentMember.contact_id.in_(ids)
                )
            )
        }
        staff = {s.id: s for s in list_staff(session, principal.workspace_id)}
        visible = segment.member_count
        if principal.owned_contacts_only is not None:
            visible = int(
                session.scalar(select(func.count()).select_from(service.members_query(segment, principal).subquery()))
                or 0
            )
        today_row = next((r for r in history if r.day == today), None)
        context = {
            "segment": segment,
            "rule_text": _rule_text(segment.rule),
            "chart_json": chart,
            "rule_lines": rule_lines,
            "members": members,
            "entered": entered,
            "staff": staff,
            "next_after": next_after,
            "is_first_page": after is None,
            "visible_count": visible,
            "today_row": today_row,
            "can_write": _can_write(user),
        }
    return render(request, "segments/detail.html", context, user=user)


@router.post("/segments/{segment_id:int}/refresh")
def refresh_segment(request: Request, user: CurrentUser, segment_id: int) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(WRITE_SCOPE)
    with get_database(request).transaction() as session:
        segment = service.get_segment(session, principal.workspace_id, segment_id)
        result = service.refresh(session, segment, service.context(session, principal.workspace_id))
    response = redirect(request, f"/console/segments/{segment_id}")
    flash(
        response,
        _("Refreshed: %(entered)s entered, %(exited)s left.") % {"entered": result.entered, "exited": result.exited},
    )
    return response


@router.post("/segments/{segment_id:int}/delete")
def delete_segment(request: Request, user: CurrentUser, segment_id: int) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(WRITE_SCOPE)
    with get_database(request).transaction() as session:
        name = service.get_segment(session, principal.workspace_id, segment_id).name
        service.delete_segment(session, principal, segment_id)
    response = redirect(request, "/console/segments")
    flash(response, _("Segment “%(name)s” deleted.") % {"name": name})
    return response


# --- the contact page: segments, scores, and why -----------------------------------------------------


def _reason_lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [line for item in value for line in _reason_lines(item)]
    if isinstance(value, dict):
        return [f"{k}: {v}" for k, v in value.items()]
    return [str(value)]


def contact_panel(session: Session, request: Request, principal: Principal, contact_id: int) -> dict[str, Any]:
    """The contact page's user-model panel: segments the contact is in, and what the models say, and why."""
    _ = gettext_for(request)
    workspace_id = principal.workspace_id
    score = session.get(ContactScore, contact_id)
    if score is not None and score.workspace_id != workspace_id:
        score = None
    labels = _labels(request)
    stages = _transaction_stages(session, workspace_id)
    reason_titles = {
        "lifecycle": _("Lifecycle stage"),
        "rfm": _("RFM"),
        "value_tier": _("Value tier"),
        "intention": _("Intention"),
        "transaction_stage": _("Transaction stage"),
    }
    reasons: list[tuple[str, list[str]]] = []
    if score is not None:
        # reasons are worked out on read, as of the scores' computation (bulk runs store none)
        raw = scoring_service.reasons_for(session, workspace_id, contact_id)
        for key, lines in raw.items():
            found = _reason_lines(lines)
            if found:
                reasons.append((reason_titles.get(key, key), found))
    return {
        "can_segments": READ_SCOPE in principal.scopes,
        "segments": [s for s in service.segments_of_contact(session, contact_id) if s.workspace_id == workspace_id]
        if READ_SCOPE in principal.scopes
        else [],
        "score": score,
        "lifecycle": labels["lifecycle_stage"].get(score.lifecycle_stage or "", score.lifecycle_stage)
        if score
        else None,
        "tier": labels["value_tier"].get(score.value_tier or "", score.value_tier) if score else None,
        "level": labels["intention_level"].get(score.intention_level or "", score.intention_level) if score else None,
        "stage": stages.get(score.transaction_stage or "", score.transaction_stage) if score else None,
        "reasons": reasons,
    }


@router.get("/segments/{segment_id:int}/why/{contact_id:int}")
def why_member(request: Request, user: CurrentUser, segment_id: int, contact_id: int) -> Response:
    """Why this contact is (or is not) in this segment: the rule's conditions, each met or not, with values."""
    principal = user.principal
    principal.require(READ_SCOPE)
    with get_database(request).transaction(write=False) as session:
        segment = service.get_segment(session, principal.workspace_id, segment_id)
        contact = contacts_service.get_contact(session, principal, contact_id)
        member = (
            session.get(SegmentMember, (segment.id, contact.id)) is not None  # the stored membership
        )
        error: str | None = None
        explanation = None
        try:
            explanation = explain_membership(
                session, principal.workspace_id, contact.id, segment, lang=language(request)
            )
        except SiyuError as exc:
            error = exc.message
    return render(
        request,
        "segments/_why.html",
        {"segment": segment, "contact": contact, "member": member, "explanation": explanation, "error": error},
        user=user,
    )
