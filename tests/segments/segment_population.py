"""Random contacts, events and rules for the differential tests (hypothesis strategies + DB writers)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from sqlalchemy.orm import Session

from siyu.contacts.models import AttributeDefinition, AttributeType, Contact, Identity
from siyu.contacts.service import birthday_mmdd
from siyu.content.models import ContentItem, ContentItemTag, ContentKind, ContentStatus, ContentTag, ContentTagGroup
from siyu.events.repository import allocate_seq, insert_events
from siyu.tags.models import ContactTag, Tag, TagGroup
from siyu.workspaces.service import create_workspace

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai
EVENT_TYPES = ["content.viewed", "order.paid", "order.refunded", "message.received", "content.favorited"]
# Content ids events name: slugs that are not items, and "@n" / "#n": the world's item n, as the string
# or the number of its id (both count for the user portrait).
CONTENT_REFS = ["a", "b", "@0", "@1", "@2", "#1"]
# The world's items: content tags (indexes into its 2 content tags) of each
ITEM_TAGS = [(0,), (0, 1), ()]
REGIONS = [None, "上海", "北京", "上海市"]
CHANNELS = [None, "douyin", "xiaohongshu"]


@dataclass
class Person:
    region: str | None
    source_channel: str | None
    gender: str | None
    birthday: dt.date | None
    created_hours_ago: int
    level: float | None
    plan: str | None
    phone: bool
    wecom: bool
    tags: frozenset[int]  # indexes into the workspace's 3 tags


@dataclass
class Happening:
    person: int
    type: str
    hours_ago: int
    properties: dict[str, Any]


people = st.builds(
    Person,
    region=st.sampled_from(REGIONS),
    source_channel=st.sampled_from(CHANNELS),
    gender=st.sampled_from([None, "male", "female"]),
    birthday=st.one_of(st.none(), st.dates(dt.date(1970, 1, 1), dt.date(2005, 12, 31))),
    created_hours_ago=st.integers(0, 24 * 60),
    level=st.one_of(st.none(), st.sampled_from([0.0, 1.0, 2.5, 3.0])),
    plan=st.sampled_from([None, "gold", "silver", "gold plus"]),
    phone=st.booleans(),
    wecom=st.booleans(),
    tags=st.frozensets(st.integers(0, 2)),
)


def happenings(n_people: int) -> st.SearchStrategy[Happening]:
    def props(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
        if event_type.startswith("order."):
            return st.fixed_dictionaries(
                {"order_id": st.sampled_from(["o1", "o2", "o3"]), "amount": st.sampled_from([0, 9.9, 100, 250.5])}
            )
        if event_type == "message.received":
            return st.fixed_dictionaries({"text": st.sampled_from(["多少钱", "hello", "考试时间"])})
        return st.fixed_dictionaries(
            {"content_id": st.sampled_from(CONTENT_REFS)},
            optional={"topic": st.sampled_from(["exam", "job", 7]), "seconds": st.sampled_from([3, 30, 300])},
        )

    return st.sampled_from(EVENT_TYPES).flatmap(
        lambda t: st.builds(
            Happening,
            person=st.integers(0, n_people - 1),
            type=st.just(t),
            hours_ago=st.integers(-3, 24 * 12),
            properties=props(t),
        )
    )


@st.composite
def populations(draw: st.DrawFn) -> tuple[list[Person], list[Happening]]:
    crowd = draw(st.lists(people, min_size=2, max_size=6))
    events = draw(st.lists(happenings(len(crowd)), min_size=10, max_size=60))
    return crowd, events


# --------------------------------------------------------------------------- rules

ATTRIBUTE_LEAVES = st.one_of(
    st.builds(lambda v: {"attribute": "region", "op": "eq", "value": v}, st.sampled_from(["上海", "北京"])),
    st.builds(lambda v: {"attribute": "region", "op": "ne", "value": v}, st.sampled_from(["上海", "北京"])),
    st.just({"attribute": "region", "op": "contains", "value": "上海"}),
    st.just({"attribute": "region", "op": "starts_with", "value": "上"}),
    st.just({"attribute": "region", "op": "is_set"}),
    st.just({"attribute": "source_channel", "op": "in", "value": ["douyin", "xiaohongshu"]}),
    st.just({"attribute": "source_channel", "op": "not_in", "value": ["douyin"]}),
    st.just({"attribute": "gender", "op": "eq", "value": "female"}),
    st.builds(lambda d: {"attribute": "birthday", "op": "within_next_days", "days": d}, st.integers(1, 40)),
    st.just({"attribute": "birthday", "op": "lt", "value": "1990-01-01"}),
    st.builds(lambda d: {"attribute": "created_at", "op": "within_last_days", "days": d}, st.integers(1, 30)),
    st.builds(lambda d: {"attribute": "created_at", "op": "more_than_days_ago", "days": d}, st.integers(1, 30)),
    st.just({"attribute": "created_at", "op": "gte", "value": "2026-11-01"}),
    st.builds(lambda v: {"attribute": "attributes.level", "op": "gte", "value": v}, st.sampled_from([1, 2.5])),
    st.just({"attribute": "attributes.level", "op": "between", "value": [1, 2.5]}),
    st.just({"attribute": "attributes.plan", "op": "contains", "value": "gold"}),
    st.just({"attribute": "attributes.plan", "op": "is_not_set"}),
    st.builds(lambda t: {"identity": t}, st.sampled_from(["phone", "wecom_external_userid"])),
    st.just({"identity": "phone", "present": False}),
)

# property filters that fit each event type (a filter on a property the type never has matches nothing)
WHERE_BY_TYPE: dict[str, list[list[dict[str, Any]]]] = {
    "content.viewed": [
        [{"property": "content_id", "op": "eq", "value": "a"}],
        [{"property": "topic", "op": "eq", "value": "exam"}],
        [{"property": "topic", "op": "ne", "value": "exam"}],
        [{"property": "topic", "op": "eq", "value": 7}],
        [{"property": "topic", "op": "is_not_set"}],
        [{"property": "seconds", "op": "gte", "value": 30}],
        [{"property": "content_id", "op": "in", "value": ["b", "c"]}],
    ],
    "order.paid": [
        [{"property": "amount", "op": "gt", "value": 50}],
        [{"property": "order_id", "op": "eq", "value": "o1"}],
    ],
    "order.refunded": [[{"property": "amount", "op": "lte", "value": 9.9}]],
    "message.received": [[{"property": "text", "op": "contains", "value": "钱"}]],
    "content.favorited": [[{"property": "content_id", "op": "eq", "value": "b"}]],
}


@st.composite
def event_leaves(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(EVENT_TYPES))
    rule: dict[str, Any] = {"event": event_type}
    if draw(st.booleans()):
        rule["where"] = draw(st.sampled_from(WHERE_BY_TYPE[event_type]))
    kind = draw(st.sampled_from(["count", "count", "performed", "first", "last"]))
    if kind in ("first", "last"):
        moment = draw(
            st.one_of(
                st.builds(lambda d: {"days_ago": d}, st.integers(0, 15)),
                st.builds(lambda d: {"date": d.isoformat()}, st.dates(dt.date(2026, 11, 5), dt.date(2026, 11, 24))),
            )
        )
        rule[kind] = {"op": draw(st.sampled_from(["before", "after"])), **moment}
        return rule
    if kind == "performed":
        rule["performed"] = draw(st.booleans())
    else:
        rule["count"] = {"op": draw(st.sampled_from(["gte", "lte", "eq"])), "value": draw(st.integers(0, 3))}
    window = draw(st.sampled_from(["last", "between", "none"]))
    if window == "last":
        rule["within_last_days"] = draw(st.integers(1, 10))
    elif window == "between":
        start = draw(st.dates(dt.date(2026, 11, 5), dt.date(2026, 11, 23)))
        rule["between"] = [start.isoformat(), (start + dt.timedelta(days=draw(st.integers(0, 5)))).isoformat()]
    return rule


COMPUTED_LEAVES = st.one_of(
    st.builds(
        lambda op, v: {"computed": "order_count", "op": op, "value": v},
        st.sampled_from(["eq", "gte", "lt", "ne"]),
        st.integers(0, 2),
    ),
    st.builds(
        lambda op, v: {"computed": "total_paid", "op": op, "value": v},
        st.sampled_from(["gt", "lte", "eq"]),
        st.sampled_from([0, 9.9, 100, 109.9]),
    ),
    st.builds(
        lambda op, v: {"computed": "days_since_last_order", "op": op, "value": v},
        st.sampled_from(["gte", "lt", "eq", "ne"]),
        st.integers(0, 10),
    ),
    st.just({"computed": "days_since_last_order", "op": "is_not_set"}),
    st.just({"computed": "days_since_last_order", "op": "between", "value": [1.5, 6]}),
)


def tag_leaves(tag_ids: list[int]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda ids, match: {"tags": ids, "match": match},
        st.lists(st.sampled_from(tag_ids), min_size=1, max_size=3, unique=True),
        st.sampled_from(["any", "all", "none"]),
    )


def interest_leaves(content_tag_ids: list[int]) -> st.SearchStrategy[dict[str, Any]]:
    # thresholds around what views (1) and favourites (3) add up to after some halvings
    return st.builds(
        lambda tag, at_least: {"interest": tag, "at_least": at_least},
        st.sampled_from(content_tag_ids),
        st.sampled_from([0.25, 0.5, 0.7, 1, 1.5, 2, 3, 4.5, 7]),
    )


def rules(
    tag_ids: list[int],
    segment_ids: list[int] = (),  # type: ignore[assignment]
    content_tag_ids: list[int] = (),  # type: ignore[assignment]
) -> st.SearchStrategy[dict[str, Any]]:
    # behaviour is where the two paths differ most (windows, counts, property types): draw it most
    leaves = [event_leaves(), ATTRIBUTE_LEAVES, event_leaves(), COMPUTED_LEAVES, event_leaves(), tag_leaves(tag_ids)]
    if content_tag_ids:
        leaves += [interest_leaves(content_tag_ids), interest_leaves(content_tag_ids)]
    if segment_ids:
        leaves.append(st.builds(lambda s: {"segment": s}, st.sampled_from(list(segment_ids))))
    leaf = st.one_of(*leaves)
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda x: {"not": x}, inner),
        ),
        max_leaves=6,
    )


# --------------------------------------------------------------------------- writing them down


@dataclass
class World:
    workspace_id: int
    contact_ids: list[int]
    tag_ids: list[int]
    content_tag_ids: list[int]
    item_ids: list[int]


def build_world(session: Session, crowd: list[Person], name: str = "差分") -> World:
    workspace = create_workspace(session, name)
    ws = workspace.id
    session.add_all(
        [
            AttributeDefinition(workspace_id=ws, key="level", label="等级", type=AttributeType.number),
            AttributeDefinition(workspace_id=ws, key="plan", label="套餐", type=AttributeType.text),
        ]
    )
    group = TagGroup(workspace_id=ws, name="兴趣")
    session.add(group)
    session.flush()
    tags = [Tag(workspace_id=ws, group_id=group.id, name=n) for n in ("考试", "就业", "直播")]
    session.add_all(tags)
    topics = ContentTagGroup(workspace_id=ws, name="主题")
    session.add(topics)
    session.flush()
    content_tags = [ContentTag(workspace_id=ws, group_id=topics.id, name=n) for n in ("考试", "就业")]
    session.add_all(content_tags)
    items = [
        ContentItem(workspace_id=ws, kind=ContentKind.article, title=f"文章{n}", status=ContentStatus.published)
        for n in range(len(ITEM_TAGS))
    ]
    session.add_all(items)
    session.flush()
    for item, indexes in zip(items, ITEM_TAGS, strict=True):
        for index in indexes:
            session.add(ContentItemTag(workspace_id=ws, content_id=item.id, tag_id=content_tags[index].id))
    contact_ids = []
    for n, person in enumerate(crowd):
        attributes: dict[str, Any] = {}
        if person.level is not None:
            attributes["level"] = person.level
        if person.plan is not None:
            attributes["plan"] = person.plan
        contact = Contact(
            workspace_id=ws,
            name=f"客户{n}",
            region=person.region,
            source_channel=person.source_channel,
            gender=person.gender,
            birthday=person.birthday,
            birthday_mmdd=birthday_mmdd(person.birthday),
            attributes=attributes,
            created_at=NOW - dt.timedelta(hours=person.created_hours_ago),
        )
        session.add(contact)
        session.flush()
        contact_ids.append(contact.id)
        if person.phone:
            session.add(Identity(workspace_id=ws, contact_id=contact.id, type="phone", value=f"+86138{ws:04d}{n:04d}"))
        if person.wecom:
            session.add(
                Identity(workspace_id=ws, contact_id=contact.id, type="wecom_external_userid", value=f"wm{ws}_{n}")
            )
        for index in person.tags:
            session.add(ContactTag(workspace_id=ws, contact_id=contact.id, tag_id=tags[index].id))
    session.flush()
    return World(ws, contact_ids, [t.id for t in tags], [t.id for t in content_tags], [i.id for i in items])


def _resolved(properties: dict[str, Any], world: World) -> dict[str, Any]:
    ref = properties.get("content_id")
    if isinstance(ref, str) and ref[:1] in ("@", "#"):
        item_id = world.item_ids[int(ref[1:])]
        return {**properties, "content_id": str(item_id) if ref[0] == "@" else item_id}
    return properties


def write_events(session: Session, world: World, events: list[Happening], start: int = 0) -> None:
    if not events:
        return
    first = allocate_seq(session, world.workspace_id, len(events))
    insert_events(
        session,
        [
            {
                "workspace_id": world.workspace_id,
                "seq": first + n,
                "event_id": f"e{start + n}",
                "type": e.type,
                "contact_id": world.contact_ids[e.person],
                "occurred_at": NOW - dt.timedelta(hours=e.hours_ago),
                "received_at": NOW,
                "properties": _resolved(e.properties, world),
            }
            for n, e in enumerate(events)
        ],
    )
