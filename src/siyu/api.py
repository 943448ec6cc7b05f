"""The /api/v1 tree. Everything hangs under `private`, which demands a credential, unless it is put on
`public` on purpose (tests/test_security.py lists the public routes and walks all the others)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from siyu.auth import endpoints as auth
from siyu.auth.dependencies import authenticated
from siyu.broadcasts import endpoints as broadcasts
from siyu.channels import endpoints as channels
from siyu.channels import links as channel_links
from siyu.contacts import endpoints as contacts
from siyu.content import endpoints as content
from siyu.content import links as content_links
from siyu.delivery import endpoints as delivery
from siyu.events import endpoints as events
from siyu.exports import endpoints as exports
from siyu.groups import endpoints as groups
from siyu.groups import links as group_links
from siyu.imports import endpoints as imports
from siyu.jobs import endpoints as jobs
from siyu.journeys import endpoints as journeys
from siyu.recommend import endpoints as recommend
from siyu.scoring import endpoints as scoring
from siyu.scripts import endpoints as scripts
from siyu.segments import endpoints as segments
from siyu.smarttags import endpoints as smart_tags
from siyu.staff import endpoints as staff
from siyu.stafftasks import endpoints as staff_tasks
from siyu.tags import endpoints as tags
from siyu.wecom import endpoints as wecom

public = APIRouter()
public.include_router(auth.public_router)

private = APIRouter(dependencies=[Depends(authenticated)])
private.include_router(auth.router)
private.include_router(staff.router)
# Before contacts: /contacts/export must not be read as /contacts/{contact_id}.
private.include_router(exports.router)
private.include_router(contacts.router)
private.include_router(imports.router)
private.include_router(tags.router)
private.include_router(events.router)
private.include_router(jobs.router)
private.include_router(channels.router)
private.include_router(wecom.router)
private.include_router(segments.router)
private.include_router(scoring.router)
private.include_router(smart_tags.router)
private.include_router(groups.router)
private.include_router(content.router)
private.include_router(scripts.router)
private.include_router(recommend.router)
private.include_router(delivery.router)
private.include_router(journeys.router)
private.include_router(broadcasts.router)
private.include_router(staff_tasks.router)

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(public)
api_router.include_router(private)

# Public pages outside /api/v1, on purpose: the link page of each channel code (/c/{slug}), which
# people scanning a QR code open without any credential. create_app() mounts it.
public_pages = APIRouter()
public_pages.include_router(channel_links.router)
public_pages.include_router(group_links.router)
public_pages.include_router(content_links.router)
# WeCom callbacks (/callbacks/wecom/{workspace_id}): no credential, the msg_signature authenticates them.
public_pages.include_router(wecom.callbacks_router)
