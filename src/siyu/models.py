"""Imports every domain's models so that Base.metadata is complete (Alembic, tests)."""

from siyu.auth.models import ApiKey, StaffSession
from siyu.channels.models import (
    Channel,
    ChannelCode,
    ChannelCodeDay,
    ChannelCodeStaff,
    ChannelCodeStaffDay,
    ChannelCodeTag,
    ChannelCost,
    ChannelTouch,
)
from siyu.computed.models import ContactDirty, ContactEventDay, ContactEventStat, StreamCursor
from siyu.contacts.models import AttributeDefinition, Contact, ContactMerge, Identity, Note, OwnerChange
from siyu.db import Base
from siyu.events.models import Event
from siyu.imports.models import ContactImport
from siyu.jobs.models import CronTick, Job
from siyu.scoring.models import ContactScore, ScoringSettings
from siyu.segments.models import Segment, SegmentMember, SegmentSizeDay
from siyu.smarttags.models import SmartTagRule
from siyu.staff.models import Staff
from siyu.tags.models import ContactTag, Tag, TagChange, TagGroup
from siyu.wecom.models import WeComCallbackLog, WeComSettings
from siyu.workspaces.models import Workspace

__all__ = [
    "ApiKey",
    "AttributeDefinition",
    "Base",
    "Channel",
    "ChannelCode",
    "ChannelCodeDay",
    "ChannelCodeStaff",
    "ChannelCodeStaffDay",
    "ChannelCodeTag",
    "ChannelCost",
    "ChannelTouch",
    "Contact",
    "ContactDirty",
    "ContactEventDay",
    "ContactEventStat",
    "ContactImport",
    "ContactMerge",
    "ContactScore",
    "ContactTag",
    "CronTick",
    "Event",
    "Identity",
    "Job",
    "Note",
    "OwnerChange",
    "ScoringSettings",
    "Segment",
    "SegmentMember",
    "SegmentSizeDay",
    "SmartTagRule",
    "Staff",
    "StaffSession",
    "StreamCursor",
    "Tag",
    "TagChange",
    "TagGroup",
    "WeComCallbackLog",
    "WeComSettings",
    "Workspace",
]
