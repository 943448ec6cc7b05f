"""Imports every domain's models so that Base.metadata is complete (Alembic, tests)."""

from siyu.auth.models import ApiKey, StaffSession
from siyu.contacts.models import AttributeDefinition, Contact, ContactMerge, Identity, Note
from siyu.db import Base
from siyu.events.models import Event
from siyu.jobs.models import CronTick, Job
from siyu.staff.models import Staff
from siyu.tags.models import ContactTag, Tag, TagChange, TagGroup
from siyu.workspaces.models import Workspace

__all__ = [
    "ApiKey",
    "AttributeDefinition",
    "Base",
    "Contact",
    "ContactMerge",
    "ContactTag",
    "CronTick",
    "Event",
    "Identity",
    "Job",
    "Note",
    "Staff",
    "StaffSession",
    "Tag",
    "TagChange",
    "TagGroup",
    "Workspace",
]
