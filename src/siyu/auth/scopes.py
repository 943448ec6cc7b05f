"""Scopes name what a caller may do; roles are bundles of scopes.

A route declares the scope it needs (`Authorize(Scope.contacts_write)`); a caller without it gets 403
with the scope named. Consultants additionally see only the contacts they own (see auth.principal).
"""

from __future__ import annotations

import enum

from siyu.staff.models import Role


class Scope(enum.StrEnum):
    contacts_read = "contacts:read"
    contacts_write = "contacts:write"
    tags_read = "tags:read"
    tags_write = "tags:write"
    events_read = "events:read"
    events_write = "events:write"
    attributes_read = "attributes:read"
    attributes_write = "attributes:write"
    staff_read = "staff:read"
    staff_write = "staff:write"
    apikeys_write = "apikeys:write"
    jobs_read = "jobs:read"
    channels_read = "channels:read"
    channels_write = "channels:write"
    wecom_write = "wecom:write"
    segments_read = "segments:read"
    segments_write = "segments:write"
    groups_read = "groups:read"
    groups_write = "groups:write"
    content_read = "content:read"
    content_write = "content:write"
    journeys_read = "journeys:read"
    journeys_write = "journeys:write"
    broadcasts_read = "broadcasts:read"
    broadcasts_write = "broadcasts:write"
    delivery_read = "delivery:read"
    delivery_write = "delivery:write"
    tasks_read = "tasks:read"
    tasks_write = "tasks:write"


ALL_SCOPES = frozenset(Scope)

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.admin: ALL_SCOPES,
    Role.operator: ALL_SCOPES - {Scope.staff_write, Scope.apikeys_write, Scope.wecom_write},
    Role.consultant: frozenset(
        {
            Scope.contacts_read,
            Scope.contacts_write,
            Scope.tags_read,
            Scope.events_read,
            Scope.attributes_read,
            Scope.staff_read,
            # a consultant hands out the channel codes they stand behind (QR, link, their numbers)
            Scope.channels_read,
            # segments a consultant's contacts are in, and why, show on the contact page
            Scope.segments_read,
            # consultants look up scripts and content to send, and see the groups their customers are in
            Scope.content_read,
            Scope.groups_read,
            # their own inbox (staff tasks), and the journeys and deliveries their customers are in
            Scope.tasks_read,
            Scope.tasks_write,
            Scope.journeys_read,
            Scope.delivery_read,
        }
    ),
}

# What a new API key may do unless told otherwise: everything an integrator needs, not admin work.
DEFAULT_API_KEY_SCOPES = frozenset(ALL_SCOPES - {Scope.staff_write, Scope.apikeys_write, Scope.wecom_write})


def parse_scopes(values: list[str]) -> frozenset[Scope]:
    from siyu.errors import validation_error

    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise validation_error("scopes", f"unknown scope {value!r}; known scopes: {known}") from None
    return frozenset(scopes)
