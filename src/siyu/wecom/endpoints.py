"""/api/v1/wecom/* (settings, callback log, app messages to staff; scope wecom:write) and the public
/callbacks/wecom/{workspace_id}.

The callback endpoint takes no credential: WeCom's msg_signature, checked against the workspace's
Token, and the decryption with its EncodingAESKey and Corp ID are the authentication.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from siyu.adapters.wecom import CallbackRejected, WeComConfig, open_callback, verify_url
from siyu.auth.dependencies import Authorize, ReadSession, WriteSession, get_database
from siyu.auth.principal import Principal
from siyu.auth.scopes import Scope
from siyu.config import Settings
from siyu.errors import NotFound, PayloadTooLarge
from siyu.wecom import app_messages, service
from siyu.wecom.models import AppMessageStatus
from siyu.wecom.schemas import AppMessageRead, WeComCallbackRead, WeComConfigIn, WeComConfigRead

log = logging.getLogger("siyu.wecom")

MAX_CALLBACK_BYTES = 1024 * 1024

router = APIRouter(prefix="/wecom", tags=["wecom"])
callbacks_router = APIRouter(prefix="/callbacks/wecom", tags=["wecom"])

AdminWeCom = Annotated[Principal, Depends(Authorize(Scope.wecom_write))]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.get("/config", response_model=WeComConfigRead, summary="This workspace's WeCom settings (secrets masked)")
def get_config(session: ReadSession, principal: AdminWeCom) -> WeComConfigRead:
    return service.read_config(session, principal.workspace_id)


@router.put("/config", response_model=WeComConfigRead, summary="Set this workspace's WeCom settings")
def put_config(data: WeComConfigIn, request: Request, session: WriteSession, principal: AdminWeCom) -> WeComConfigRead:
    row = service.put_config(session, principal.workspace_id, data, _settings(request))
    result = service.config_read(row)
    session.commit()
    return result


@router.get("/callbacks", response_model=list[WeComCallbackRead], summary="Recent WeCom callbacks and outcomes")
def list_callbacks(
    session: ReadSession, principal: AdminWeCom, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[WeComCallbackRead]:
    rows = service.list_callbacks(session, principal.workspace_id, limit)
    return [WeComCallbackRead.model_validate(r) for r in rows]


@router.get(
    "/app-messages",
    response_model=list[AppMessageRead],
    summary="App messages (应用消息) sent to staff: reminders, digests, escalations, with their outcome",
)
def list_app_messages(
    session: ReadSession,
    principal: AdminWeCom,
    status: AppMessageStatus | None = None,
    staff_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=app_messages.LIST_MAX)] = 50,
) -> list[AppMessageRead]:
    rows = app_messages.list_messages(session, principal.workspace_id, status=status, staff_id=staff_id, limit=limit)
    return [AppMessageRead.model_validate(r) for r in rows]


# --- the public callback endpoint -------------------------------------------------------------------------


def _config(request: Request, workspace_id: int) -> WeComConfig:
    with get_database(request).transaction(write=False) as session:
        config = service.load_config(session, workspace_id, _settings(request))
    if config is None:
        raise NotFound(f"no WeCom settings for workspace {workspace_id}")
    return config


def _rejected(request: Request, workspace_id: int, exc: CallbackRejected) -> None:
    log.warning("WeCom callback for workspace %s refused: %s", workspace_id, exc)
    with get_database(request).transaction() as session:
        service.log_rejection(session, workspace_id, f"{exc.code}: {exc}")


Sig = Annotated[str, Query(max_length=100)]


@callbacks_router.get("/{workspace_id}", response_class=PlainTextResponse, summary="WeCom URL verification")
def verify(
    workspace_id: int,
    request: Request,
    msg_signature: Sig = "",
    timestamp: Sig = "",
    nonce: Sig = "",
    echostr: str = "",
) -> PlainTextResponse:
    config = _config(request, workspace_id)
    try:
        echo = verify_url(config, msg_signature, timestamp, nonce, echostr)
    except CallbackRejected as exc:
        _rejected(request, workspace_id, exc)
        raise
    return PlainTextResponse(echo)


def _receive(request: Request, workspace_id: int, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
    config = _config(request, workspace_id)
    try:
        callback = open_callback(config, body, msg_signature, timestamp, nonce)
    except CallbackRejected as exc:
        _rejected(request, workspace_id, exc)
        raise
    region = _settings(request).default_phone_region
    with get_database(request).transaction() as session:
        outcome = service.process_callback(session, workspace_id, callback, region=region)
        log.info("WeCom callback %s for workspace %s: %s", outcome.kind, workspace_id, outcome.outcome)
    return "success"


@callbacks_router.post("/{workspace_id}", response_class=PlainTextResponse, summary="WeCom event delivery")
async def receive(
    workspace_id: int, request: Request, msg_signature: Sig = "", timestamp: Sig = "", nonce: Sig = ""
) -> PlainTextResponse:
    body = await request.body()
    if len(body) > MAX_CALLBACK_BYTES:
        raise PayloadTooLarge("a WeCom callback is far smaller than this")
    text = await run_in_threadpool(_receive, request, workspace_id, body, msg_signature, timestamp, nonce)
    return PlainTextResponse(text)
