"""Console page /console/tasks: today's inbox of the signed-in staff member (operators and admins may
pick anyone's), with complete, snooze and hand-over through HTMX (plain forms work without it), and the
WeCom reminders (app messages) they were sent, with why one did not go out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pydantic
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from siyu.auth.dependencies import get_database
from siyu.auth.scopes import Scope
from siyu.console.render import ConsoleUser, flash, gettext_for, is_htmx, redirect, render
from siyu.console.security import CurrentUser
from siyu.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, validation_error
from siyu.kit.time import utcnow
from siyu.segments.console import lifecycle_labels
from siyu.staff.service import list_staff
from siyu.stafftasks import service
from siyu.stafftasks.models import StaffTask, TaskKind
from siyu.stafftasks.schemas import TaskComplete, TaskHandOver
from siyu.wecom import app_messages

router = APIRouter()

SNOOZE_PRESETS = ("1h", "3h", "tomorrow")
TOMORROW_AT = dt.time(9, 0)


async def form_data(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(form_data)]


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _can_pick_staff(user: ConsoleUser) -> bool:
    return user.principal.owned_contacts_only is None


def _whose(request: Request, user: ConsoleUser) -> int:
    raw = request.query_params.get("staff_id") or ""
    me = user.principal.staff_id
    assert me is not None  # the console is for staff sign-ins
    if raw.isdigit() and _can_pick_staff(user):
        return int(raw)
    return me


def _kind_labels(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        TaskKind.follow_up.value: _("Daily follow-up"),
        TaskKind.birthday.value: _("Birthday"),
        TaskKind.journey.value: _("From a journey"),
        TaskKind.unanswered.value: _("Unanswered message"),
        TaskKind.manual.value: _("Added by hand"),
    }


def _why(request: Request, task: StaffTask, tz: ZoneInfo) -> str:
    _ = gettext_for(request)
    if task.kind is TaskKind.follow_up:
        return str(_("Consulted, not converted yet: follow up today"))
    if task.kind is TaskKind.birthday:
        return str(_("Birthday today: send greetings"))
    if task.kind is TaskKind.unanswered and task.source_at is not None:
        at = task.source_at.astimezone(tz).strftime("%m-%d %H:%M")
        return str(_("The message of %(time)s still has no reply") % {"time": at})
    return task.detail or ""


def _inbox_context(session: Session, request: Request, user: ConsoleUser, staff_id: int) -> dict[str, Any]:
    _ = gettext_for(request)
    principal = user.principal
    now = utcnow()
    whose = service.whose_tasks(session, principal, staff_id)
    box = service.inbox(session, principal, whose, now=now)
    tz = ZoneInfo(user.timezone)
    everyone = list_staff(session, principal.workspace_id)
    shown = box.tasks + box.escalated
    briefs = service.contact_briefs(session, {t.contact_id for t in shown if t.contact_id is not None})
    intention = {"strong": _("Strong intention"), "weak": _("Weak intention"), "none": _("No intention")}
    return {
        "box": box,
        "now": now,
        "whose": whose,
        "whose_name": next((s.name for s in everyone if s.id == whose), ""),
        "is_me": whose == principal.staff_id,
        "can_pick": _can_pick_staff(user),
        "can_write": Scope.tasks_write in principal.scopes,
        "staff": [s for s in everyone if s.is_active],
        "staff_names": {s.id: s.name for s in everyone},
        "kinds": _kind_labels(request),
        "why": {t.id: _why(request, t, tz) for t in shown},
        "briefs": briefs,
        "stages": lifecycle_labels(request),
        "intentions": intention,
        "presets": SNOOZE_PRESETS,
        "notice": None,
    }


REMINDERS_SHOWN = 10


def _reminder_reasons(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        app_messages.NO_WECOM_USERID: _("no WeCom account (wecom_userid) is linked to this staff member"),
        app_messages.STAFF_INACTIVE: _("the staff member is deactivated"),
        app_messages.HOURLY_CAP_REACHED: _("too many reminders this hour"),
        app_messages.NOT_IN_APP_RANGE: _("not in the WeCom app's visible range"),
        app_messages.OUTCOME_UNKNOWN: _("a send was interrupted long ago; not repeated"),
        app_messages.SEND_FAILED: _("WeCom refused it"),
        app_messages.DEAD_LETTER: _("WeCom could not be reached after several tries"),
        app_messages.NOT_CONFIGURED: _("the WeCom app is no longer set up"),
    }


def _reminders(session: Session, request: Request, workspace_id: int, staff_id: int) -> dict[str, Any]:
    """The last WeCom reminders to this staff member; nothing when the workspace has no WeCom app."""
    _ = gettext_for(request)
    if app_messages.app_agent_id(session, workspace_id) is None:
        return {"reminders": None}
    return {
        "reminders": app_messages.list_messages(session, workspace_id, staff_id=staff_id, limit=REMINDERS_SHOWN),
        "reminder_statuses": {
            "queued": _("Sending"),
            "sent": _("Sent"),
            "failed": _("Failed"),
            "skipped": _("Not sent"),
        },
        "reminder_reasons": _reminder_reasons(request),
    }


@router.get("/tasks")
def tasks_page(request: Request, user: CurrentUser) -> Response:
    user.principal.require(Scope.tasks_read)
    with get_database(request).transaction(write=False) as session:
        context = _inbox_context(session, request, user, _whose(request, user))
        context.update(_reminders(session, request, user.principal.workspace_id, context["whose"]))
    return render(request, "stafftasks/index.html", context, user=user)


def _snooze_until(form: FormData, tz: ZoneInfo, now: dt.datetime) -> dt.datetime:
    """A preset ("1h", "3h", "tomorrow" at 9:00) or a local date and time from the picker."""
    preset = _text(form, "preset")
    if preset == "1h":
        return now + dt.timedelta(hours=1)
    if preset == "3h":
        return now + dt.timedelta(hours=3)
    if preset == "tomorrow":
        tomorrow = now.astimezone(tz).date() + dt.timedelta(days=1)
        return dt.datetime.combine(tomorrow, TOMORROW_AT, tz).astimezone(dt.UTC)
    raw = _text(form, "until")
    try:
        local = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise validation_error("until", "choose when the task should come back") from None
    return (local if local.tzinfo else local.replace(tzinfo=tz)).astimezone(dt.UTC)


def _act(request: Request, user: ConsoleUser, form: FormData, task_id: int, action: str) -> Response:
    _ = gettext_for(request)
    principal = user.principal
    principal.require(Scope.tasks_write)
    whose = int(_text(form, "whose")) if _text(form, "whose").isdigit() else principal.staff_id
    assert whose is not None
    now = utcnow()
    notice: tuple[str, str]
    with get_database(request).transaction() as session:
        try:
            if action == "complete":
                data = TaskComplete(
                    note=_text(form, "note") or None, note_to_contact=_text(form, "note_to_contact") != "0"
                )
                service.complete(session, principal, task_id, data, now=now)
                notice = ("ok", str(_("Task completed.")))
            elif action == "snooze":
                until = _snooze_until(form, ZoneInfo(user.timezone), now)
                service.snooze(session, principal, task_id, until, now=now)
                notice = ("ok", str(_("Task snoozed.")))
            else:
                to_raw = _text(form, "to_staff_id")
                hand = TaskHandOver(
                    to_staff_id=int(to_raw) if to_raw.isdigit() else 0,
                    note=_text(form, "note") or None,
                    change_owner=_text(form, "change_owner") == "on",
                )
                service.hand_over(session, principal, task_id, hand, now=now)
                notice = ("ok", str(_("Task handed over.")))
            session.commit()
        except (ValidationFailed, Conflict, NotFound, PermissionDenied) as exc:
            session.rollback()
            notice = ("error", exc.message)
        except pydantic.ValidationError as exc:
            session.rollback()
            first = exc.errors()[0]
            notice = ("error", f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    if not is_htmx(request):
        target = "/console/tasks" + (f"?staff_id={whose}" if whose != principal.staff_id else "")
        response = redirect(request, target)
        flash(response, notice[1], notice[0])
        return response
    with get_database(request).transaction(write=False) as session:
        context = _inbox_context(session, request, user, whose)
    context["notice"] = notice
    return render(request, "stafftasks/_inbox.html", context, user=user)


@router.post("/tasks/{task_id}/complete")
def complete_task(request: Request, user: CurrentUser, task_id: int, form: Form) -> Response:
    return _act(request, user, form, task_id, "complete")


@router.post("/tasks/{task_id}/snooze")
def snooze_task(request: Request, user: CurrentUser, task_id: int, form: Form) -> Response:
    return _act(request, user, form, task_id, "snooze")


@router.post("/tasks/{task_id}/hand-over")
def hand_over_task(request: Request, user: CurrentUser, task_id: int, form: Form) -> Response:
    return _act(request, user, form, task_id, "hand-over")
