from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import select

from siyu.auth.dependencies import Authorize, ReadSession, WriteSession
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.channels import service
from siyu.channels.models import ChannelTouch, CodeStatus
from siyu.channels.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelStats,
    ChannelUpdate,
    CodeCreate,
    CodeRead,
    CodeStats,
    CodeUpdate,
    ContactTouches,
    TouchRead,
)
from siyu.contacts import service as contacts
from siyu.kit.qr import public_url, qr_response

router = APIRouter(tags=["channels"])

ReadChannels = Annotated[Principal, Depends(Authorize(Scope.channels_read))]
WriteChannels = Annotated[Principal, Depends(Authorize(Scope.channels_write))]
ReadContacts = Annotated[Principal, Depends(Authorize(Scope.contacts_read))]
DateFrom = Annotated[dt.date | None, Query(alias="from", description="first day (workspace time); default 30 days ago")]
DateTo = Annotated[dt.date | None, Query(alias="to", description="last day, included; default today")]


@router.get("/channels", response_model=list[ChannelRead])
def list_channels(session: ReadSession, principal: ReadChannels) -> list[ChannelRead]:
    return service.channels_read(session, service.list_channels(session, principal.workspace_id))


@router.post("/channels", response_model=ChannelRead, status_code=status.HTTP_201_CREATED)
def create_channel(data: ChannelCreate, session: WriteSession, principal: WriteChannels) -> ChannelRead:
    (result,) = service.channels_read(session, [service.create_channel(session, principal.workspace_id, data)])
    session.commit()
    return result


@router.get("/channels/{channel_id}", response_model=ChannelRead)
def get_channel(channel_id: int, session: ReadSession, principal: ReadChannels) -> ChannelRead:
    (result,) = service.channels_read(session, [service.get_channel(session, principal.workspace_id, channel_id)])
    return result


@router.patch("/channels/{channel_id}", response_model=ChannelRead)
def update_channel(
    channel_id: int, data: ChannelUpdate, session: WriteSession, principal: WriteChannels
) -> ChannelRead:
    channel = service.update_channel(session, principal.workspace_id, channel_id, data)
    (result,) = service.channels_read(session, [channel])
    session.commit()
    return result


@router.delete("/channels/{channel_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_channel(channel_id: int, session: WriteSession, principal: WriteChannels) -> Response:
    service.delete_channel(session, principal.workspace_id, channel_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/channels/{channel_id}/stats",
    response_model=ChannelStats,
    summary="Contacts acquired, cost and cost per contact over a range of days",
)
def channel_stats(
    channel_id: int, session: ReadSession, principal: ReadChannels, date_from: DateFrom = None, date_to: DateTo = None
) -> ChannelStats:
    return service.channel_stats(session, principal.workspace_id, channel_id, date_from, date_to)


@router.get("/channel-codes", response_model=list[CodeRead])
def list_codes(session: ReadSession, principal: ReadChannels, channel_id: int | None = None) -> list[CodeRead]:
    return service.codes_read(session, service.list_codes(session, principal.workspace_id, channel_id))


@router.post("/channel-codes", response_model=CodeRead, status_code=status.HTTP_201_CREATED)
def create_code(data: CodeCreate, session: WriteSession, principal: WriteChannels) -> CodeRead:
    (result,) = service.codes_read(session, [service.create_code(session, principal.workspace_id, data)])
    session.commit()
    return result


@router.get("/channel-codes/{code_id}", response_model=CodeRead)
def get_code(code_id: int, session: ReadSession, principal: ReadChannels) -> CodeRead:
    (result,) = service.codes_read(session, [service.get_code(session, principal.workspace_id, code_id)])
    return result


@router.patch("/channel-codes/{code_id}", response_model=CodeRead)
def update_code(code_id: int, data: CodeUpdate, session: WriteSession, principal: WriteChannels) -> CodeRead:
    (result,) = service.codes_read(session, [service.update_code(session, principal.workspace_id, code_id, data)])
    session.commit()
    return result


@router.post("/channel-codes/{code_id}/pause", response_model=CodeRead, summary="Stop taking new contacts")
def pause_code(code_id: int, session: WriteSession, principal: WriteChannels) -> CodeRead:
    code = service.set_status(session, principal.workspace_id, code_id, CodeStatus.paused)
    (result,) = service.codes_read(session, [code])
    session.commit()
    return result


@router.post("/channel-codes/{code_id}/resume", response_model=CodeRead, summary="Take new contacts again")
def resume_code(code_id: int, session: WriteSession, principal: WriteChannels) -> CodeRead:
    code = service.set_status(session, principal.workspace_id, code_id, CodeStatus.active)
    (result,) = service.codes_read(session, [code])
    session.commit()
    return result


@router.get(
    "/channel-codes/{code_id}/stats",
    response_model=CodeStats,
    summary="Scans (link page views), adds, adds per staff member and per day",
)
def code_stats(
    code_id: int, session: ReadSession, principal: ReadChannels, date_from: DateFrom = None, date_to: DateTo = None
) -> CodeStats:
    return service.code_stats(session, principal.workspace_id, code_id, date_from, date_to)


def _code_url(request: Request, session: ReadSession, workspace_id: int, code_id: int) -> str:
    return public_url(request, f"/c/{service.get_code(session, workspace_id, code_id).slug}")


@router.get(
    "/channel-codes/{code_id}/qr.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="The code's QR image (PNG) pointing at its link page",
)
def qr_png(
    code_id: int,
    request: Request,
    session: ReadSession,
    principal: ReadChannels,
    scale: Annotated[int, Query(ge=1, le=40, description="pixels per module")] = 10,
) -> Response:
    return qr_response(_code_url(request, session, principal.workspace_id, code_id), "png", scale)


@router.get(
    "/channel-codes/{code_id}/qr.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
    summary="The code's QR image (SVG) pointing at its link page",
)
def qr_svg(code_id: int, request: Request, session: ReadSession, principal: ReadChannels) -> Response:
    return qr_response(_code_url(request, session, principal.workspace_id, code_id), "svg")


@router.get(
    "/contacts/{contact_id}/channel-touches",
    response_model=ContactTouches,
    summary="The channel codes a contact came through: first touch (its source), last touch, all",
)
def contact_touches(contact_id: int, session: ReadSession, principal: ReadContacts, _: ReadChannels) -> ContactTouches:
    contact = contacts.get_contact(session, principal, contact_id)
    rows = session.scalars(
        select(ChannelTouch)
        .where(ChannelTouch.workspace_id == principal.workspace_id, ChannelTouch.contact_id == contact.id)
        .order_by(ChannelTouch.at, ChannelTouch.id)
    )
    touches = [TouchRead.model_validate(t) for t in rows]
    return ContactTouches(
        contact_id=contact.id,
        first_touch=touches[0] if touches else None,
        last_touch=touches[-1] if touches else None,
        touches=touches,
    )
