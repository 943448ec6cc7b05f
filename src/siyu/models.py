"""Imports every domain's models so that Base.metadata is complete (Alembic, tests)."""

import siyu.broadcasts.models
import siyu.delivery.models
import siyu.journeys.models
import siyu.stafftasks.models  # noqa: F401 - tables of the later domains register themselves on import
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
from siyu.content.models import (
    ContentItem,
    ContentItemTag,
    ContentPush,
    ContentPushRecipient,
    ContentTag,
    ContentTagGroup,
    ContentVersion,
    ContentView,
)
from siyu.db import Base
from siyu.events.models import Event, EventInbox, IngestBatch
from siyu.groups.models import ChatGroup, ChatGroupHelper, ChatGroupMember, GroupCode, GroupCodeDay
from siyu.imports.models import ContactImport
from siyu.jobs.models import CronTick, Job
from siyu.recommend.models import ContactContentAffinity, ContactContentSeen, ContentReach, RecommendSettings
from siyu.scoring.models import ContactScore, ScoringSettings
from siyu.scripts.models import ScriptUse
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
    "ChatGroup",
    "ChatGroupHelper",
    "ChatGroupMember",
    "Contact",
    "ContactContentAffinity",
    "ContactContentSeen",
    "ContactDirty",
    "ContactEventDay",
    "ContactEventStat",
    "ContactImport",
    "ContactMerge",
    "ContactScore",
    "ContactTag",
    "ContentItem",
    "ContentItemTag",
    "ContentPush",
    "ContentPushRecipient",
    "ContentReach",
    "ContentTag",
    "ContentTagGroup",
    "ContentVersion",
    "ContentView",
    "CronTick",
    "Event",
    "EventInbox",
    "GroupCode",
    "GroupCodeDay",
    "Identity",
    "IngestBatch",
    "Job",
    "Note",
    "OwnerChange",
    "RecommendSettings",
    "ScoringSettings",
    "ScriptUse",
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
