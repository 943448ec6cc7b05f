"""Builds the demo workspace and simulates weeks of life in it, through the services the API uses.

Set-up (one transaction): the workspace, an admin who can sign in, a lead and three consultants per
business line (with WeCom user ids), tag groups, custom attributes, channels with weekly costs and one
channel code per channel (staff pool, rotation, caps, online hours, backup, tags, welcome message).

Simulation, week by week on the simulation's own clock (`siyu.kit.time`): people arrive through codes,
then do what people do (ask, read, join groups, attend lives, order, use coupons, invite friends) as
events stored through the events service in batches of 1,000. Everything is drawn from one seeded
random generator, so a seed gives the same workspace every time.

Arrivals go through `channels.attribution.record_add` one by one (the path of the link page and of
WeCom callbacks). For big sizes (bulk mode) that is too slow, so arrivals are stored 1,000 at a time
as `contact.added` events (which create the contacts and their identities) while staff are picked in
memory with the same rotation rules, caps, hours and backup (`channels.rotation.pick`); touches, day
counters, owners and code tags are then written in bulk with the same meaning.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from faker import Faker
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.channels import rotation as rotation_rules
from siyu.channels.attribution import record_add
from siyu.channels.models import (
    ChannelCode,
    ChannelCodeDay,
    ChannelCodeStaff,
    ChannelCodeStaffDay,
    ChannelKind,
    ChannelTouch,
    Rotation,
    TouchSource,
)
from siyu.channels.schemas import ChannelCreate, CodeCreate, CostIn, HoursIn, PoolEntryIn
from siyu.channels.service import bump, create_channel, create_code
from siyu.contacts import repository as contacts_repo
from siyu.contacts.attributes import create_definition
from siyu.contacts.models import AttributeType, Contact, Gender
from siyu.contacts.schemas import AttributeDefinitionCreate, ContactUpdate
from siyu.contacts.service import birthday_mmdd, change_owner, update_contact
from siyu.db import Database
from siyu.demo.catalog import CUSTOMER_TIERS, INDUSTRIES, INTENTION_LEVELS, Industry
from siyu.events import service as events
from siyu.events.models import Event
from siyu.kit import time as siyu_time
from siyu.staff.models import Role, Staff
from siyu.staff.schemas import StaffCreate
from siyu.staff.service import add_staff
from siyu.tags.models import TagSource
from siyu.tags.schemas import TagCreate, TagGroupCreate
from siyu.tags.service import change_tags, create_group, create_tag
from siyu.workspaces.models import Workspace
from siyu.workspaces.service import create_workspace

DEFAULT_NAME = "siyu 演示 Demo"
DEFAULT_EMAIL = "demo@siyu.local"
DEFAULT_PASSWORD = "siyu-demo-2026"  # noqa: S105 - a demo account, printed on purpose
DEFAULT_CONTACTS = 2000
DEFAULT_WEEKS = 6
DEFAULT_SEED = 4
BULK_THRESHOLD = 20_000  # above this many contacts, arrivals are stored in bulk
BATCH = 1000  # events per events-service batch
BATCHES_PER_COMMIT = 20  # one commit (one fsync on SQLite) per 20,000 events
TAG_CHUNK = 5000  # contact ids per tag/owner change statement
REGION = "CN"
PHONE_PREFIXES = tuple(
    f"1{p}" for p in (*range(30, 40), 50, 51, 52, 55, 56, 57, 58, 59, 76, 77, 78, 80, 81, 82, 85, 86, 87, 88, 89)
)
ACTIVE_DAYS = 14  # a contact with no event in the last two weeks is "lost"

Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True, slots=True)
class DemoOptions:
    contacts: int = DEFAULT_CONTACTS
    weeks: int = DEFAULT_WEEKS
    seed: int = DEFAULT_SEED
    workspace_name: str = DEFAULT_NAME
    admin_email: str = DEFAULT_EMAIL
    admin_password: str = DEFAULT_PASSWORD
    timezone: str = "Asia/Shanghai"
    end: dt.datetime | None = None  # the simulation ends here (UTC); default: now
    bulk: bool | None = None  # None: bulk above BULK_THRESHOLD contacts


@dataclass(slots=True)
class DemoResult:
    workspace_id: int
    admin_email: str
    admin_password: str
    bulk: bool
    contacts: int
    events: dict[str, int]
    seconds: dict[str, float]


@dataclass(slots=True)
class _Line:
    """One business line as set up: its staff, codes and tags."""

    industry: Industry
    lead_id: int
    consultant_ids: list[int]
    code_ids: list[int]
    channel_ids: list[int]
    industry_tag: int
    interest_tags: dict[str, int]


@dataclass(slots=True)
class _Setup:
    workspace_id: int
    admin_id: int
    tz: ZoneInfo
    lines: list[_Line]
    intention: dict[str, int]
    tiers: dict[str, int]


@dataclass(slots=True)
class _Person:
    line: int
    plan: int
    at: dt.datetime
    phone: str
    name: str
    gender: Gender
    birthday: dt.date
    region: str
    occupation: str
    budget: int
    contact_time: str
    question: str | None
    orders: int = 0
    views: int = 0
    last_active: float = 0.0
    inviter: int | None = None
    first_order: float | None = None
    contact_id: int | None = None
    owner_id: int | None = None


# An event waiting for its week: (timestamp, person, number within the person, kind, argument).
_Pending = tuple[float, int, int, str, Any]


@dataclass(slots=True)
class _World:
    people: list[_Person] = field(default_factory=list)
    pending: dict[int, list[_Pending]] = field(default_factory=lambda: defaultdict(list))  # week -> events


# --- finding, deleting ----------------------------------------------------------------------------


def building_name(name: str) -> str:
    """The demo workspace's name while it is being built: an interrupted build is never taken for a demo."""
    return f"{name}（搭建中）"


def find_demo(session: Session, name: str = DEFAULT_NAME) -> Workspace | None:
    return session.scalar(select(Workspace).where(Workspace.name == name).order_by(Workspace.id).limit(1))


def delete_workspace(session: Session, workspace_id: int) -> None:
    """Deletes a workspace and, through the foreign keys' ON DELETE CASCADE, everything in it."""
    session.execute(update(Contact).where(Contact.workspace_id == workspace_id).values(merged_into_id=None))
    session.execute(delete(Workspace).where(Workspace.id == workspace_id))


# --- set-up ---------------------------------------------------------------------------------------


def _set_up(session: Session, options: DemoOptions, start_day: dt.date) -> _Setup:
    workspace = create_workspace(session, building_name(options.workspace_name), timezone=options.timezone)
    ws = workspace.id
    admin = add_staff(
        session,
        ws,
        StaffCreate(email=options.admin_email, name="演示管理员", role=Role.admin, password=options.admin_password),
    )
    add_staff(session, ws, StaffCreate(email="operator@siyu.local", name="运营-小林", role=Role.operator))

    intention_group = create_group(session, ws, TagGroupCreate(name="意向等级", exclusive=True))
    intention = {
        n: create_tag(session, ws, TagCreate(group_id=intention_group.id, name=n)).id for n in INTENTION_LEVELS
    }
    tier_group = create_group(session, ws, TagGroupCreate(name="客户分层", exclusive=True))
    tiers = {n: create_tag(session, ws, TagCreate(group_id=tier_group.id, name=n)).id for n in CUSTOMER_TIERS}
    line_group = create_group(session, ws, TagGroupCreate(name="业务线", exclusive=True))
    interest_group = create_group(session, ws, TagGroupCreate(name="兴趣", exclusive=False))

    create_definition(
        session,
        ws,
        AttributeDefinitionCreate(
            key="business_line", label="业务线", type=AttributeType.choice, choices=[i.name for i in INDUSTRIES]
        ),
    )
    create_definition(session, ws, AttributeDefinitionCreate(key="budget", label="预算(元)", type=AttributeType.number))
    create_definition(
        session,
        ws,
        AttributeDefinitionCreate(
            key="contact_time", label="方便联系时段", type=AttributeType.choice, choices=["上午", "下午", "晚上"]
        ),
    )

    scale = max(1.0, options.contacts / DEFAULT_CONTACTS)
    lines: list[_Line] = []
    for industry in INDUSTRIES:
        staff_ids: list[int] = []
        for n, name in enumerate(industry.consultants):
            member = add_staff(
                session,
                ws,
                StaffCreate(
                    email=f"{industry.key}{n + 1}@siyu.local",
                    name=name,
                    role=Role.consultant,
                    lead_id=staff_ids[0] if staff_ids else None,
                ),
            )
            member.wecom_userid = f"{industry.key}_{n + 1:02d}"
            staff_ids.append(member.id)
        lead, consultants = staff_ids[0], staff_ids[1:]
        line_tag = create_tag(session, ws, TagCreate(group_id=line_group.id, name=industry.name)).id
        interests = {
            i: create_tag(session, ws, TagCreate(group_id=interest_group.id, name=i)).id for i in industry.interests
        }
        code_ids: list[int] = []
        channel_ids: list[int] = []
        for plan in industry.channels:
            costs = [
                CostIn(
                    period_start=start_day + dt.timedelta(days=7 * w),
                    period_end=start_day + dt.timedelta(days=7 * w + 6),
                    amount=round(plan.weekly_cost * scale),
                )
                for w in range(options.weeks)
            ]
            channel = create_channel(session, ws, ChannelCreate(kind=plan.kind, name=plan.name, costs=costs))
            cap = None if plan.daily_cap is None else math.ceil(plan.daily_cap * scale)
            hours = HoursIn(start=plan.hours[0], end=plan.hours[1]) if plan.hours else None
            code = create_code(
                session,
                ws,
                CodeCreate(
                    channel_id=channel.id,
                    name=f"{plan.name}活码",
                    rotation=plan.rotation,
                    pool=[
                        PoolEntryIn(
                            staff_id=s,
                            weight=3 - k if plan.rotation.value == "weighted" else 1,
                            daily_cap=cap,
                            hours=hours,
                        )
                        for k, s in enumerate(consultants)
                    ],
                    backup_staff_id=lead,
                    tag_ids=[line_tag, *([interests[plan.interest]] if plan.interest else [])],
                    welcome_text=plan.welcome,
                    welcome_link_title="新人福利" if plan.kind is not ChannelKind.referral else None,
                    welcome_link_url="https://example.com/welcome" if plan.kind is not ChannelKind.referral else None,
                ),
            )
            code_ids.append(code.id)
            channel_ids.append(channel.id)
        lines.append(_Line(industry, lead, consultants, code_ids, channel_ids, line_tag, interests))
    session.flush()
    return _Setup(ws, admin.id, ZoneInfo(options.timezone), lines, intention, tiers)


# --- people and what they do ----------------------------------------------------------------------


class _Fakes:
    """Chinese names, regions and occupations from Faker's zh_CN data, drawn with the demo's generator."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        fake = Faker("zh_CN")
        fake.seed_instance(seed)
        provider = fake.provider("faker.providers.person")
        address = fake.provider("faker.providers.address")
        job = fake.provider("faker.providers.job")
        assert provider is not None and address is not None and job is not None
        last: dict[str, float] = provider.last_names  # type: ignore[attr-defined]
        self.last_names = list(last)
        self.last_cum = list(_cumulative(list(last.values())))
        self.male: list[str] = list(provider.first_names_male)  # type: ignore[attr-defined]
        self.female: list[str] = list(provider.first_names_female)  # type: ignore[attr-defined]
        self.provinces: list[str] = list(address.provinces)  # type: ignore[attr-defined]
        self.cities: list[str] = list(address.cities)  # type: ignore[attr-defined]
        self.jobs: list[str] = [j for j in job.jobs if j != "其他"]  # type: ignore[attr-defined]
        self.rng = rng

    def name(self, gender: Gender) -> str:
        rng = self.rng
        last = self.last_names[bisect.bisect(self.last_cum, rng.random() * self.last_cum[-1])]
        first = rng.choice(self.female if gender is Gender.female else self.male)
        if rng.random() < 0.6:
            first += rng.choice(self.female if gender is Gender.female else self.male)
        return last + first

    def region(self) -> str:
        return f"{self.rng.choice(self.provinces)} {self.rng.choice(self.cities)}"


def _cumulative(values: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for v in values:
        total += v
        yield total


class _Simulator:
    def __init__(self, options: DemoOptions, setup: _Setup, start: dt.datetime, end: dt.datetime) -> None:
        self.options = options
        self.setup = setup
        self.start = start
        self.end = end
        self.rng = random.Random(options.seed)  # noqa: S311 - a simulation, not secrets
        self.fakes = _Fakes(self.rng, options.seed)
        self.world = _World()
        self.phones: set[str] = set()

    # Arrivals: when, where, who.
    def arrivals(self) -> None:
        rng, opts, tz = self.rng, self.options, self.setup.tz
        days = opts.weeks * 7
        start_local = self.start.astimezone(tz).date()
        counts = _split(opts.contacts, [i.share for i in INDUSTRIES], rng)
        drafts: list[tuple[dt.datetime, int, int]] = []
        for line, (industry, count) in enumerate(zip(INDUSTRIES, counts, strict=True)):
            weekend = 1.5 if industry.online == "low" else 1.1
            weights = [
                (1 + 0.6 * d / days) * (weekend if (start_local + dt.timedelta(days=d)).weekday() >= 5 else 1.0)
                for d in range(days)
            ]
            day_cum = list(_cumulative(weights))
            plan_cum = list(_cumulative([p.share for p in industry.channels]))
            for _ in range(count):
                day = bisect.bisect(day_cum, rng.random() * day_cum[-1])
                hour = rng.choice(industry.peak_hours) if rng.random() < 0.6 else rng.randint(7, 23)
                local = dt.datetime.combine(
                    start_local + dt.timedelta(days=min(day, days - 1)),
                    dt.time(hour, rng.randint(0, 59), rng.randint(0, 59)),
                    tz,
                )
                at = local.astimezone(dt.UTC)
                if at >= self.end:
                    at = self.end - dt.timedelta(minutes=rng.randint(1, 600))
                elif at < self.start:
                    at = self.start + dt.timedelta(minutes=rng.randint(1, 600))
                plan = min(bisect.bisect(plan_cum, rng.random() * plan_cum[-1]), len(industry.channels) - 1)
                drafts.append((at, line, plan))
        drafts.sort()
        buyers: list[list[int]] = [[] for _ in INDUSTRIES]
        earlier: list[list[int]] = [[] for _ in INDUSTRIES]
        for at, line, plan in drafts:
            n = len(self.world.people)
            person = self._person(at, line, plan)
            self.world.people.append(person)
            if INDUSTRIES[line].channels[plan].kind is ChannelKind.referral:
                person.inviter = self._inviter(at, buyers[line], earlier[line])
                if person.inviter is not None:
                    hours_before = rng.uniform(0.5, 48)
                    invited_at = max(
                        self.world.people[person.inviter].at.timestamp() + 60, at.timestamp() - hours_before * 3600
                    )
                    self._pend(person.inviter, invited_at, "invite", n)
            self._behave(n, person)
            earlier[line].append(n)
            if person.first_order is not None:
                buyers[line].append(n)

    def _inviter(self, at: dt.datetime, buyers: list[int], earlier: list[int]) -> int | None:
        rng, ts = self.rng, at.timestamp()
        for _ in range(5):
            if buyers:
                candidate = rng.choice(buyers)
                first = self.world.people[candidate].first_order
                if first is not None and first < ts:
                    return candidate
        return rng.choice(earlier) if earlier else None

    def _phone(self) -> str:
        while True:
            phone = self.rng.choice(PHONE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if phone not in self.phones:
                self.phones.add(phone)
                return phone

    def _person(self, at: dt.datetime, line: int, plan: int) -> _Person:
        rng, fakes, industry = self.rng, self.fakes, INDUSTRIES[line]
        female_share = {"beauty": 0.85, "baby": 0.9, "education": 0.55, "home": 0.45}[industry.key]
        gender = Gender.female if rng.random() < female_share else Gender.male
        age = {"beauty": (18, 40), "baby": (24, 38), "education": (19, 35), "home": (26, 55)}[industry.key]
        birthday = dt.date(at.year - rng.randint(*age), rng.randint(1, 12), rng.randint(1, 28))
        low = {"beauty": 200, "baby": 500, "education": 3000, "home": 50000}[industry.key]
        return _Person(
            line=line,
            plan=plan,
            at=at,
            phone=self._phone(),
            name=fakes.name(gender),
            gender=gender,
            birthday=birthday,
            region=fakes.region(),
            occupation=rng.choice(fakes.jobs),
            budget=low * rng.randint(1, 10),
            contact_time=rng.choice(("上午", "下午", "晚上")),
            question=rng.choice(industry.questions) if rng.random() < 0.7 else None,
            last_active=at.timestamp(),
        )

    def _pend(self, n: int, ts: float, kind: str, arg: Any) -> None:
        if ts >= self.end.timestamp():
            return
        week = int((ts - self.start.timestamp()) // (7 * 86400))
        pending = self.world.pending[min(max(week, 0), self.options.weeks - 1)]
        pending.append((ts, n, len(pending), kind, arg))
        person = self.world.people[n]
        person.last_active = max(person.last_active, ts)

    def _behave(self, n: int, person: _Person) -> None:
        rng, industry, t0 = self.rng, INDUSTRIES[person.line], person.at.timestamp()
        end = self.end.timestamp()
        weeks_present = max((end - t0) / (7 * 86400), 0.05)
        if person.question is not None:
            asked = t0 + rng.uniform(30, 3600)
            self._pend(n, asked, "ask", person.question)
            self._pend(n, asked + rng.uniform(60, 1800), "reply", None)
        for _ in range(_poisson(rng, industry.views * weeks_present)):
            seen = rng.uniform(t0, end)
            content = rng.randrange(len(industry.contents))
            self._pend(n, seen, "view", content)
            person.views += 1
            if rng.random() < 0.15:
                self._pend(n, seen + 30, "favorite", content)
            if rng.random() < 0.06:
                self._pend(n, seen + 60, "share", content)
        if rng.random() < industry.join_group:
            self._pend(n, t0 + rng.uniform(600, 3 * 86400), "group", rng.randrange(len(industry.groups)))
        for _ in range(_poisson(rng, industry.lives * weeks_present)):
            self._pend(n, rng.uniform(t0, end), "live", None)
        if rng.random() < industry.convert:
            at = t0 + rng.uniform(*industry.first_order_days) * 86400
            first = True
            while at < end:
                product = (
                    rng.randrange(len(industry.products))
                    if not first
                    else rng.randrange(min(2, len(industry.products)))
                )
                self._pend(n, at, "order", (product, person.orders))
                if first:
                    person.first_order = at
                person.orders += 1
                if industry.frequency == "high" and rng.random() < 0.3:
                    self._pend(n, at - 120, "coupon", person.orders)
                if rng.random() >= industry.repeat:
                    break
                at += rng.uniform(*industry.repeat_days) * 86400
                first = False


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method; the means here are small)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _split(total: int, shares: Sequence[float], rng: random.Random) -> list[int]:
    counts = [int(total * s) for s in shares]
    for _ in range(total - sum(counts)):
        counts[rng.randrange(len(counts))] += 1
    return counts


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- writing --------------------------------------------------------------------------------------


class _Writer:
    def __init__(self, database: Database, sim: _Simulator, progress: Progress) -> None:
        self.database = database
        self.sim = sim
        self.setup = sim.setup
        self.progress = progress
        self.system = Principal(workspace_id=sim.setup.workspace_id, scopes=frozenset())
        self.arrived = 0
        self.stored = 0
        self.total_events = sum(len(p) for p in sim.world.pending.values())
        # Bulk mode's in-memory rotation state.
        self.rr_next: dict[int, int] = {}
        self.wrr: dict[tuple[int, int], int] = {}
        self.code_day: Counter[tuple[int, dt.date]] = Counter()
        self.staff_day: Counter[tuple[int, int, dt.date]] = Counter()
        self.load: Counter[tuple[int, dt.date]] = Counter()
        self.pools: dict[int, list[ChannelCodeStaff]] = {}

    def run(self, bulk: bool) -> None:
        weeks = self.sim.options.weeks
        people = self.sim.world.people
        start = self.sim.start
        by_week: dict[int, list[int]] = defaultdict(list)
        for n, person in enumerate(people):
            week = int((person.at - start).total_seconds() // (7 * 86400))
            by_week[min(max(week, 0), weeks - 1)].append(n)
        if bulk:
            self._load_pools()
        for week in range(weeks):
            week_end = min(start + dt.timedelta(days=7 * (week + 1)), self.sim.end)
            if bulk:
                self._arrive_bulk(by_week[week])
            else:
                self._arrive_one_by_one(by_week[week])
            self._store_events(self.sim.world.pending.get(week, []), week_end)
        if bulk:
            self._save_rotation_state()

    # Arrivals through record_add, one by one.
    def _arrive_one_by_one(self, numbers: list[int]) -> None:
        people = self.sim.world.people
        ws = self.setup.workspace_id
        for chunk in _chunks(numbers, 200):
            with self.database.transaction() as session:
                for n in chunk:
                    person = people[n]
                    line = self.setup.lines[person.line]
                    siyu_time.set_clock(lambda at=person.at: at)  # type: ignore[misc]
                    source = TouchSource.link if line.industry.online == "low" else TouchSource.wecom
                    added = record_add(
                        session,
                        ws,
                        line.code_ids[person.plan],
                        {"phone": person.phone},
                        occurred_at=person.at,
                        source=source,
                        region=REGION,
                        event_id=f"demo:{n}:added",
                    )
                    person.contact_id, person.owner_id = added.contact_id, added.staff_id
                    update_contact(
                        session,
                        self.system,
                        added.contact_id,
                        ContactUpdate(
                            name=person.name,
                            region=person.region,
                            occupation=person.occupation,
                            gender=person.gender,
                            birthday=person.birthday,
                            attributes=self._attributes(person),
                        ),
                    )
            self.arrived += len(chunk)
            self.progress("people arriving", self.arrived, len(people))

    def _attributes(self, person: _Person) -> dict[str, Any]:
        return {
            "business_line": INDUSTRIES[person.line].name,
            "budget": person.budget,
            "contact_time": person.contact_time,
        }

    # Arrivals in bulk: contact.added events 1,000 at a time, staff picked in memory by the same rules.
    def _load_pools(self) -> None:
        with self.database.transaction(write=False) as session:
            codes = [c for line in self.setup.lines for c in line.code_ids]
            rows = session.scalars(
                select(ChannelCodeStaff).where(ChannelCodeStaff.code_id.in_(codes)).order_by(ChannelCodeStaff.position)
            )
            for row in rows:
                self.pools.setdefault(row.code_id, []).append(row)
                session.expunge(row)
            for code in codes:
                self.rr_next[code] = 0

    def _pick(self, code_id: int, rule: Rotation, backup: int, local: dt.datetime) -> int:
        day = local.date()
        pool = [
            rotation_rules.Candidate(
                staff_id=e.staff_id,
                position=e.position,
                weight=e.weight,
                daily_cap=e.daily_cap,
                adds_today=self.staff_day[(code_id, e.staff_id, day)],
                load_today=self.load[(e.staff_id, day)],
                hours_start=e.hours_start,
                hours_end=e.hours_end,
                wrr_current=self.wrr.get((code_id, e.staff_id), 0),
            )
            for e in self.pools[code_id]
        ]
        chosen = rotation_rules.pick(rule, pool, rr_next=self.rr_next[code_id], local_time=local.time())
        if chosen.staff_id is None:
            return backup
        self.rr_next[code_id] = chosen.rr_next
        for staff_id, current in chosen.wrr.items():
            self.wrr[(code_id, staff_id)] = current
        return chosen.staff_id

    def _arrive_bulk(self, numbers: list[int]) -> None:
        people = self.sim.world.people
        for group in _chunks(numbers, BATCH * BATCHES_PER_COMMIT):
            with self.database.transaction() as session:
                for chunk in _chunks(group, BATCH):
                    self._arrive_chunk(session, chunk)
                    self.arrived += len(chunk)
                    self.progress("people arriving", self.arrived, len(people))

    def _arrive_chunk(self, session: Session, chunk: Sequence[int]) -> None:
        people = self.sim.world.people
        ws, tz = self.setup.workspace_id, self.setup.tz
        last = people[chunk[-1]].at
        siyu_time.set_clock(lambda at=last: at)  # type: ignore[misc]
        raw: list[dict[str, Any]] = []
        touches: list[dict[str, Any]] = []
        for n in chunk:
            person = people[n]
            line = self.setup.lines[person.line]
            plan = line.industry.channels[person.plan]
            code_id = line.code_ids[person.plan]
            local = person.at.astimezone(tz)
            staff_id = self._pick(code_id, plan.rotation, line.lead_id, local)
            day = local.date()
            self.code_day[(code_id, day)] += 1
            self.staff_day[(code_id, staff_id, day)] += 1
            self.load[(staff_id, day)] += 1
            person.owner_id = staff_id
            raw.append(
                {
                    "id": f"demo:{n}:added",
                    "type": "contact.added",
                    "contact": {"phone": person.phone},
                    "timestamp": person.at.isoformat(),
                    "properties": {
                        "channel": plan.kind.value,
                        "channel_id": line.channel_ids[person.plan],
                        "channel_code": str(code_id),
                        "channel_code_name": f"{plan.name}活码",
                        "staff_id": staff_id,
                        "source": (TouchSource.link if line.industry.online == "low" else TouchSource.wecom).value,
                    },
                }
            )
        items = events.prepare(raw, tz=tz, region=REGION, now=last)
        events.store(session, ws, items, now=last)
        found = contacts_repo.contacts_by_identities(session, ws, [item.pairs[0] for item in items])
        by_owner: dict[int, list[int]] = defaultdict(list)
        by_code: dict[tuple[int, int], list[int]] = defaultdict(list)
        profiles: list[dict[str, Any]] = []
        for n, item in zip(chunk, items, strict=True):
            person = people[n]
            line = self.setup.lines[person.line]
            contact_id = found[item.pairs[0]]
            person.contact_id = contact_id
            assert person.owner_id is not None
            by_owner[person.owner_id].append(contact_id)
            by_code[(person.line, person.plan)].append(contact_id)
            touches.append(
                {
                    "workspace_id": ws,
                    "contact_id": contact_id,
                    "channel_id": line.channel_ids[person.plan],
                    "code_id": line.code_ids[person.plan],
                    "staff_id": person.owner_id,
                    "source": item.properties["source"],
                    "first": True,
                    "created_contact": True,
                    "at": person.at,
                }
            )
            profiles.append(
                {
                    "id": contact_id,
                    "name": person.name,
                    "region": person.region,
                    "occupation": person.occupation,
                    "gender": person.gender,
                    "birthday": person.birthday,
                    "birthday_mmdd": birthday_mmdd(person.birthday),
                    "attributes": self._attributes(person),
                }
            )
        session.execute(insert(ChannelTouch), touches)
        session.execute(update(Contact), profiles)
        for owner, ids in by_owner.items():
            change_owner(session, self.system, select(Contact.id).where(Contact.id.in_(ids)), owner, "channel code")
        for (line_index, plan_index), ids in by_code.items():
            tags = self._code_tags(self.setup.lines[line_index], plan_index)
            change_tags(
                session,
                self.system,
                select(Contact.id).where(Contact.id.in_(ids)),
                add=tags,
                remove=[],
                reason="channel code",
                source=TagSource.channel,
            )

    @staticmethod
    def _code_tags(line: _Line, plan: int) -> list[int]:
        interest = line.industry.channels[plan].interest
        return [line.industry_tag, *([line.interest_tags[interest]] if interest else [])]

    def _save_rotation_state(self) -> None:
        ws = self.setup.workspace_id
        with self.database.transaction() as session:
            for (code_id, day), adds in self.code_day.items():
                bump(session, ChannelCodeDay, {"workspace_id": ws, "code_id": code_id, "day": day}, adds=adds)
            for (code_id, staff_id, day), adds in self.staff_day.items():
                keys = {"workspace_id": ws, "code_id": code_id, "staff_id": staff_id, "day": day}
                bump(session, ChannelCodeStaffDay, keys, adds=adds)
            for code_id, rr in self.rr_next.items():
                session.execute(update(ChannelCode).where(ChannelCode.id == code_id).values(rr_next=rr))
            for (code_id, staff_id), current in self.wrr.items():
                session.execute(
                    update(ChannelCodeStaff)
                    .where(ChannelCodeStaff.code_id == code_id, ChannelCodeStaff.staff_id == staff_id)
                    .values(wrr_current=current)
                )

    # Behaviour: events through the events service, 1,000 a batch.
    def _store_events(self, pending: list[_Pending], week_end: dt.datetime) -> None:
        pending.sort()
        ws, tz = self.setup.workspace_id, self.setup.tz
        siyu_time.set_clock(lambda: week_end)
        for group in _chunks(pending, BATCH * BATCHES_PER_COMMIT):
            with self.database.transaction() as session:
                for chunk in _chunks(group, BATCH):
                    raw = [self._event(p) for p in chunk]
                    items = events.prepare(raw, tz=tz, region=REGION, now=week_end)
                    events.store(session, ws, items, now=week_end)
                    self.stored += len(chunk)
                    self.progress("events", self.stored, self.total_events)

    def _event(self, pending: _Pending) -> dict[str, Any]:
        ts, n, k, kind, arg = pending
        person = self.sim.world.people[n]
        industry = INDUSTRIES[person.line]
        at = dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()
        event: dict[str, Any] = {"id": f"demo:{n}:{kind}:{k}", "contact": {"phone": person.phone}, "timestamp": at}
        if kind == "ask":
            event.update(type="message.received", properties={"text": arg, "staff_id": person.owner_id})
        elif kind == "reply":
            text = "您好，我是您的专属顾问，这就为您解答～"
            event.update(type="message.sent", properties={"text": text, "staff_id": person.owner_id})
        elif kind in ("view", "favorite", "share"):
            names = {"view": "content.viewed", "favorite": "content.favorited", "share": "content.shared"}
            channel = "group" if industry.online == "high" else "wecom"
            event.update(type=names[kind], properties={"content_id": industry.contents[arg], "channel": channel})
        elif kind == "group":
            group = industry.groups[arg]
            event.update(
                type="group.joined", properties={"group_id": f"{industry.key}-g{arg + 1}", "group_name": group}
            )
        elif kind == "live":
            event.update(type="live.attended", properties={"live_id": f"{industry.key}-live"})
        elif kind == "order":
            product_index, number = arg
            product = industry.products[product_index]
            items = [{"name": product.name, "price": product.price, "quantity": 1}]
            order_id = f"D{n:07d}-{number + 1}"
            event.update(type="order.paid", properties={"order_id": order_id, "amount": product.price, "items": items})
        elif kind == "coupon":
            event.update(
                type="coupon.redeemed",
                properties={"coupon_id": f"{industry.key}-new-30", "order_id": f"D{n:07d}-{arg}"},
            )
        elif kind == "invite":
            invitee = self.sim.world.people[arg]
            event.update(
                type="referral.invited", properties={"invitee": {"phone": invitee.phone}, "campaign_id": "老带新"}
            )
        else:  # pragma: no cover - every kind is above
            raise AssertionError(kind)
        return event

    # Behaviour tags: intention level, customer tier, interests.
    def tag_people(self) -> None:
        setup, end = self.setup, self.sim.end.timestamp()
        intention: dict[int, list[int]] = defaultdict(list)
        tier: dict[int, list[int]] = defaultdict(list)
        interest: dict[int, list[int]] = defaultdict(list)
        rng = random.Random(self.sim.options.seed + 1)  # noqa: S311
        for person in self.sim.world.people:
            if person.contact_id is None:
                continue
            if person.orders:
                level = INTENTION_LEVELS[0]
            elif person.question and person.views >= 2:
                level = INTENTION_LEVELS[1]
            elif person.views:
                level = INTENTION_LEVELS[2]
            else:
                level = INTENTION_LEVELS[3]
            intention[setup.intention[level]].append(person.contact_id)
            active = end - person.last_active < ACTIVE_DAYS * 86400
            if person.orders >= 4:
                name = CUSTOMER_TIERS[0]
            elif person.orders >= 2:
                name = CUSTOMER_TIERS[1]
            elif person.orders == 1:
                name = CUSTOMER_TIERS[2]
            elif active:
                name = CUSTOMER_TIERS[3]
            else:
                name = CUSTOMER_TIERS[4]
            tier[setup.tiers[name]].append(person.contact_id)
            if person.views >= 2:
                tags = setup.lines[person.line].interest_tags
                interest[tags[rng.choice(sorted(tags))]].append(person.contact_id)
        siyu_time.set_clock(lambda: self.sim.end)
        for groups in (intention, tier, interest):
            for tag_id, ids in groups.items():
                for chunk in _chunks(ids, TAG_CHUNK):
                    with self.database.transaction() as session:
                        change_tags(
                            session,
                            self.system,
                            select(Contact.id).where(Contact.id.in_(chunk)),
                            add=[tag_id],
                            remove=[],
                            reason="演示：行为打标",
                            source=TagSource.rule,
                        )


# --- the whole thing ------------------------------------------------------------------------------


def build_demo(database: Database, options: DemoOptions, progress: Progress | None = None) -> DemoResult:
    """Sets the demo workspace up and simulates its weeks. The caller checks it does not exist yet."""
    report = progress or (lambda _stage, _done, _total: None)
    began = time.perf_counter()
    end = (options.end or siyu_time.utcnow()).astimezone(dt.UTC).replace(microsecond=0)
    start = end - dt.timedelta(weeks=options.weeks)
    bulk = options.contacts > BULK_THRESHOLD if options.bulk is None else options.bulk
    real_clock = siyu_time._clock  # restored when done
    seconds: dict[str, float] = {}
    try:
        siyu_time.set_clock(lambda: start)
        report("setting up", 0, 1)
        tz = ZoneInfo(options.timezone)
        with database.transaction() as session:
            setup = _set_up(session, options, start.astimezone(tz).date())
        report("setting up", 1, 1)
        sim = _Simulator(options, setup, start, end)
        sim.arrivals()
        seconds["setup_and_plan"] = time.perf_counter() - began
        writer = _Writer(database, sim, report)
        mark = time.perf_counter()
        writer.run(bulk)
        seconds["simulate"] = time.perf_counter() - mark
        mark = time.perf_counter()
        report("tagging", 0, 1)
        writer.tag_people()
        report("tagging", 1, 1)
        seconds["tag"] = time.perf_counter() - mark
    finally:
        siyu_time.set_clock(real_clock)
    with database.transaction() as session:
        ws = setup.workspace_id
        session.execute(update(Workspace).where(Workspace.id == ws).values(name=options.workspace_name))
        contacts = session.scalar(select(func.count()).select_from(Contact).where(Contact.workspace_id == ws)) or 0
        counts = {
            str(t): int(c)
            for t, c in session.execute(
                select(Event.type, func.count())
                .where(Event.workspace_id == ws)
                .group_by(Event.type)
                .order_by(Event.type)
            )
        }
    seconds["total"] = time.perf_counter() - began
    return DemoResult(ws, options.admin_email, options.admin_password, bulk, int(contacts), counts, seconds)


DEMO_JOURNEY_NAME = "新客户欢迎 SOP"


def start_demo_journeys(database: Database, workspace_id: int) -> int:
    """After the simulated weeks: the onboarding SOP live on the sandbox channel (people added from now on
    go through it; nothing leaves siyu), and sandbox messages that simulate opens and clicks. Returns the
    journey id."""
    from siyu.delivery import policy
    from siyu.delivery.endpoints import save_config
    from siyu.journeys import service as journeys
    from siyu.journeys.templates import TEMPLATES, instantiate

    with database.transaction() as session:
        admin = session.scalars(
            select(Staff.id).where(Staff.workspace_id == workspace_id, Staff.role == Role.admin).order_by(Staff.id)
        ).first()
        operator = Principal(workspace_id=workspace_id, scopes=frozenset(), staff_id=admin, role=Role.admin)
        config, _ = policy.load(session, workspace_id)
        engaged = config.model_copy(update={"sandbox": policy.SandboxSimulation(open_rate=0.4, click_rate=0.5, seed=1)})
        save_config(session, workspace_id, engaged)
        journey = journeys.create_journey(
            session,
            operator,
            name=DEMO_JOURNEY_NAME,
            definition=instantiate("onboarding"),
            description=TEMPLATES["onboarding"].description,
        )
        journeys.publish(session, operator, journey.id)
        journeys.activate(session, operator, journey.id)
        return journey.id
