"""Console pages under /console/delivery: the deliveries log with filters (each skipped or held delivery
says why), the workspace's contact budget (caps, quiet hours, welfare days, opt-out words, staff defaults,
webhook endpoint) and the staff accounts' limits and warm-up."""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.render import ConsoleUser, flash, gettext_for, redirect, render
from siyu.console.security import CurrentUser
from siyu.contacts.models import Contact
from siyu.delivery import policy, reasons, repository
from siyu.delivery.endpoints import save_config, save_staff_account
from siyu.delivery.models import Channel, DeliveryStatus, OptOut
from siyu.delivery.schemas import StaffAccountUpdate
from siyu.errors import NotFound, ValidationFailed

router = APIRouter()

PAGE = 50
Errors = dict[str, str]


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _require_read(user: ConsoleUser) -> None:
    user.principal.require(Scope.delivery_read)


def _can_write(user: ConsoleUser) -> bool:
    return Scope.delivery_write in user.principal.scopes


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def reason_labels(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        reasons.NO_CONTACT: _("No such contact"),
        reasons.CONTENT_UNAVAILABLE: _("Content not published"),
        reasons.OPTED_OUT: _("Opted out"),
        reasons.NO_ADDRESS: _("Not reachable on this channel"),
        reasons.QUIET_HOURS: _("Quiet hours"),
        reasons.CAP_DAY: _("Daily cap reached"),
        reasons.CAP_WEEK: _("Weekly cap reached"),
        reasons.CAP_MONTH: _("Monthly cap reached"),
        reasons.WELFARE_DAYS: _("Welfare days used up"),
        reasons.STAFF_LIMIT: _("Staff daily limit"),
        reasons.SEND_FAILED: _("Refused by the channel"),
        reasons.DEAD_LETTER: _("Out of attempts"),
        reasons.OUTCOME_UNKNOWN: _("Outcome unknown"),
        reasons.SENT_BY_CALLER: _("Sent by its broadcast task"),
    }


def channel_labels(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        Channel.sandbox.value: _("Sandbox"),
        Channel.webhook.value: _("Webhook"),
        Channel.email.value: _("E-mail"),
        Channel.wecom.value: _("WeCom"),
    }


def _state_of(config: policy.DeliveryConfig) -> dict[str, Any]:
    def number(value: int | None) -> str:
        return "" if value is None else str(value)

    quiet = config.quiet_hours
    return {
        "cap_day": number(config.caps.day),
        "cap_week": number(config.caps.week),
        "cap_month": number(config.caps.month),
        "quiet_enabled": quiet is not None,
        "quiet_start": quiet.start if quiet else "21:00",
        "quiet_end": quiet.end if quiet else "08:00",
        "welfare_days": number(config.welfare_days_per_month),
        "opt_out_words": "\n".join(config.opt_out_words),
        "staff_send_limit": number(config.staff.send_limit),
        "staff_add_limit": number(config.staff.add_limit),
        "staff_warmup_days": str(config.staff.warmup_days),
        "webhook_url": config.webhook_url or "",
    }


def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    status = q.get("status") or None
    reason = q.get("reason") or None
    channel = q.get("channel") or None
    contact = q.get("contact_id") or ""
    return {
        "status": status if status in {s.value for s in DeliveryStatus} else None,
        "reason": reason if reason in reasons.ALL else None,
        "channel": channel if channel in {c.value for c in Channel} else None,
        "source": (q.get("source") or "").strip()[:100] or None,
        "contact_id": int(contact) if contact.isdigit() else None,
    }


def _context(
    session: Session,
    request: Request,
    user: ConsoleUser,
    *,
    state: dict[str, Any] | None = None,
    errors: Errors | None = None,
) -> dict[str, Any]:
    principal = user.principal
    config, row = policy.load(session, principal.workspace_id)
    filters = _filters(request)
    before_raw = request.query_params.get("before") or ""
    before = int(before_raw) if before_raw.isdigit() else None
    rows = repository.list_deliveries(
        session,
        principal,
        before_id=before,
        limit=PAGE + 1,
        contact_id=filters["contact_id"],
        source=filters["source"],
        status=DeliveryStatus(filters["status"]) if filters["status"] else None,
        reason=filters["reason"],
        channel=Channel(filters["channel"]) if filters["channel"] else None,
    )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    contact_ids = sorted({r.contact_id for r in rows})
    names = (
        dict(session.execute(select(Contact.id, Contact.name).where(Contact.id.in_(contact_ids))).all())
        if contact_ids
        else {}
    )
    next_query = ""
    if more:
        params = {k: v for k, v in filters.items() if v is not None}
        params["before"] = rows[-1].id
        next_query = urllib.parse.urlencode(params)
    opt_q = select(func.count()).select_from(OptOut).where(OptOut.workspace_id == principal.workspace_id)
    if principal.owned_contacts_only is not None:
        opt_q = opt_q.join(Contact, Contact.id == OptOut.contact_id).where(
            Contact.owner_id == principal.owned_contacts_only
        )
    return {
        "deliveries": rows,
        "contact_names": names,
        "filters": filters,
        "next_before": rows[-1].id if more else None,
        "next_query": next_query,
        "statuses": [s.value for s in DeliveryStatus],
        "reason_codes": list(reasons.ALL),
        "reason_labels": reason_labels(request),
        "channels": [c.value for c in Channel],
        "channel_labels": channel_labels(request),
        "state": state if state is not None else _state_of(config),
        "errors": errors or {},
        "webhook_secret_hint": row.webhook_secret_hint if row is not None else None,
        "accounts": repository.staff_accounts(session, principal.workspace_id)
        if principal.owned_contacts_only is None
        else [],
        "opt_out_count": int(session.scalar(opt_q) or 0),
        "can_write": _can_write(user),
    }


@router.get("/delivery")
def delivery_page(request: Request, user: CurrentUser) -> Response:
    _require_read(user)
    with get_database(request).transaction(write=False) as session:
        context = _context(session, request, user)
    return render(request, "delivery/index.html", context, user=user)


def _state_from(form: FormData) -> dict[str, Any]:
    return {
        "cap_day": _text(form, "cap_day"),
        "cap_week": _text(form, "cap_week"),
        "cap_month": _text(form, "cap_month"),
        "quiet_enabled": bool(_text(form, "quiet_enabled")),
        "quiet_start": _text(form, "quiet_start"),
        "quiet_end": _text(form, "quiet_end"),
        "welfare_days": _text(form, "welfare_days"),
        "opt_out_words": _text(form, "opt_out_words"),
        "staff_send_limit": _text(form, "staff_send_limit"),
        "staff_add_limit": _text(form, "staff_add_limit"),
        "staff_warmup_days": _text(form, "staff_warmup_days"),
        "webhook_url": _text(form, "webhook_url"),
    }


def _config_body(state: dict[str, Any], current: policy.DeliveryConfig) -> dict[str, Any]:
    def number(value: str) -> str | None:
        return value or None

    body = current.model_dump(mode="json")
    body["caps"] = {
        "day": number(state["cap_day"]),
        "week": number(state["cap_week"]),
        "month": number(state["cap_month"]),
    }
    body["quiet_hours"] = (
        {"start": state["quiet_start"][:5], "end": state["quiet_end"][:5]} if state["quiet_enabled"] else None
    )
    body["welfare_days_per_month"] = number(state["welfare_days"])
    body["opt_out_words"] = [w for w in state["opt_out_words"].replace(",", "\n").splitlines() if w.strip()]
    body["staff"] = {
        **body["staff"],
        "send_limit": number(state["staff_send_limit"]),
        "add_limit": number(state["staff_add_limit"]),
        "warmup_days": state["staff_warmup_days"] or 0,
    }
    body["webhook_url"] = state["webhook_url"] or None
    return body


def _errors(exc: Exception) -> Errors:
    if isinstance(exc, ValidationFailed) and exc.details:
        return {str(d.get("field", "")): str(d.get("reason", exc.message)) for d in exc.details}
    if isinstance(exc, pydantic.ValidationError):
        return {".".join(str(p) for p in e["loc"]): str(e["msg"]) for e in exc.errors()}
    if isinstance(exc, ValidationFailed | NotFound):
        return {"": exc.message}
    raise exc


@router.post("/delivery/settings")
def save_settings(request: Request, user: CurrentUser, form: Form) -> Response:
    user.principal.require(Scope.delivery_write)
    _ = gettext_for(request)
    state = _state_from(form)
    with get_database(request).transaction() as session:
        current, _row = policy.load(session, user.principal.workspace_id)
        try:
            config = policy.validate(_config_body(state, current))
            new_secret = save_config(session, user.principal.workspace_id, config)
            session.commit()
        except (ValidationFailed, pydantic.ValidationError) as exc:
            session.rollback()
            context = _context(session, request, user, state=state, errors=_errors(exc))
            return render(request, "delivery/index.html", context, user=user, status_code=422)
    response = redirect(request, "/console/delivery")
    if new_secret:
        flash(response, _("Saved. The webhook signing secret, shown once: %(secret)s") % {"secret": new_secret})
    else:
        flash(response, _("Saved."))
    return response


@router.post("/delivery/staff/{staff_id}")
def save_staff(request: Request, user: CurrentUser, staff_id: int, form: Form) -> Response:
    user.principal.require(Scope.delivery_write)
    _ = gettext_for(request)

    def number(name: str) -> str | None:
        return _text(form, name) or None

    with get_database(request).transaction() as session:
        try:
            data = StaffAccountUpdate.model_validate(
                {
                    "started_on": number("started_on"),
                    "send_limit": number("send_limit"),
                    "add_limit": number("add_limit"),
                    "warmup_days": number("warmup_days"),
                }
            )
            save_staff_account(session, user.principal.workspace_id, staff_id, data)
            session.commit()
        except (ValidationFailed, pydantic.ValidationError) as exc:
            session.rollback()
            problems = "; ".join(f"{field}: {reason}" if field else reason for field, reason in _errors(exc).items())
            context = _context(session, request, user, errors={"": problems})
            return render(request, "delivery/index.html", context, user=user, status_code=422)
    response = redirect(request, "/console/delivery")
    flash(response, _("Saved."))
    return response
