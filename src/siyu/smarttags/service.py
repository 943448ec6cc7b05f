"""Smart tags: saving the rules, and applying them (docs/en/smart-tags.md).

The user-model pipeline calls, in its transaction and in this order, for each run of new events:
`apply_keyword_rules` (messages just received) and `apply_rule_tags` (contacts the events changed, or
everyone on the periodic full run). Both go through `siyu.tags.service.change_tags`, so every change is
in the contact's tag history with source `rule` and a reason naming the rule, and exclusive groups hold.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, not_, select, update
from sqlalchemy.orm import Session

from siyu.auth.principal import Principal
from siyu.computed.service import StreamEvent
from siyu.contacts.models import Contact
from siyu.errors import Conflict, validation_error
from siyu.kit.repository import flush_unique, get_in_workspace
from siyu.kit.sql import IdFilter
from siyu.kit.time import utcnow
from siyu.segments import service as segments
from siyu.segments.compiler import Compiler
from siyu.segments.context import RuleContext
from siyu.segments.rules import Node, RuleError, TagsCond, conditions, parse_rule
from siyu.smarttags.keywords import Message, has_matchable_text, normalize, tokens
from siyu.smarttags.models import SmartTagKind, SmartTagRule
from siyu.smarttags.schemas import (
    MAX_KEYWORD_LENGTH,
    MAX_KEYWORDS,
    KeywordRuleHit,
    KeywordTestResult,
    SmartTagCreate,
    SmartTagUpdate,
)
from siyu.tags import service as tags
from siyu.tags.models import ContactTag, Tag, TagGroup, TagSource

log = logging.getLogger(__name__)

MESSAGE_EVENT = "message.received"
# Contacts per change_tags call and per slice of `among`: well under SQLite's bound-parameter limit.
CHUNK = 5_000


def reason(rule: SmartTagRule, keyword: str | None = None) -> str:
    """What the tag history says about a change this rule made."""
    said = f': message said "{keyword}"' if keyword is not None else ""
    return f'smart tag rule "{rule.name}" (#{rule.id}){said}'


def _system(workspace_id: int) -> Principal:
    """The caller for work the rules do on their own: no staff member, no API key."""
    return Principal(workspace_id=workspace_id, scopes=frozenset())


# --------------------------------------------------------------------------- saving rules


def get_smart_tag(session: Session, workspace_id: int, smart_tag_id: int) -> SmartTagRule:
    return get_in_workspace(session, SmartTagRule, workspace_id, smart_tag_id, "smart tag")


def list_smart_tags(session: Session, workspace_id: int) -> list[SmartTagRule]:
    return list(
        session.scalars(select(SmartTagRule).where(SmartTagRule.workspace_id == workspace_id).order_by(SmartTagRule.id))
    )


def clean_keywords(raw: Sequence[str] | None) -> list[str]:
    """Trimmed, inner blanks collapsed, duplicates (ignoring case and width) dropped; or a 422 naming the item."""
    if not raw:
        raise validation_error("keywords", f"give 1 to {MAX_KEYWORDS} keywords for a keyword smart tag")
    if len(raw) > MAX_KEYWORDS:
        raise validation_error("keywords", f"at most {MAX_KEYWORDS} keywords, got {len(raw)}; split the rule in two")
    seen: set[str] = set()
    cleaned: list[str] = []
    for n, item in enumerate(raw):
        word = " ".join(item.split())
        if not word:
            raise validation_error(f"keywords[{n}]", "is blank; remove it or write a word")
        if len(word) > MAX_KEYWORD_LENGTH:
            raise validation_error(
                f"keywords[{n}]", f"{word[:20]!r}... is {len(word)} characters; at most {MAX_KEYWORD_LENGTH}"
            )
        if not has_matchable_text(word):
            raise validation_error(f"keywords[{n}]", f"{word!r} has no letters, digits or Chinese characters to match")
        if normalize(word) not in seen:
            seen.add(normalize(word))
            cleaned.append(word)
    return cleaned


def _tag_refs(raw: Any, path: str = "$") -> Iterator[tuple[str, Any]]:
    """(path, tag id) for every tag a rule's JSON names, with the paths the rule parser uses."""
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("tags"), list):
        for n, tag_id in enumerate(raw["tags"]):
            yield f"{path}.tags[{n}]", tag_id
    for key in ("and", "or"):
        if isinstance(raw.get(key), list):
            for n, child in enumerate(raw[key]):
                yield from _tag_refs(child, f"{path}.{key}[{n}]")
    if "not" in raw:
        yield from _tag_refs(raw["not"], f"{path}.not")


def _check_rule(session: Session, workspace_id: int, rule: dict[str, Any] | None, tag_id: int) -> None:
    if rule is None:
        raise validation_error("rule", "give a segment rule (docs/en/segments.md) for a rule-based smart tag")
    segments.parse(session, workspace_id, rule)
    for path, ref in _tag_refs(rule):
        if ref == tag_id:
            raise RuleError(path, "is the tag this smart tag puts on; a rule on its own tag would flip it every run")


def _check_tag(session: Session, workspace_id: int, tag_id: int) -> None:
    tag = session.get(Tag, tag_id)
    if tag is None or tag.workspace_id != workspace_id:
        raise validation_error("tag_id", f"no tag {tag_id} in this workspace; pick one from GET /api/v1/tags")


def create_smart_tag(session: Session, principal: Principal, data: SmartTagCreate) -> SmartTagRule:
    """Saves a smart tag. It applies from the next pipeline run on, or at once through `run_smart_tag`."""
    ws = principal.workspace_id
    _check_tag(session, ws, data.tag_id)
    keywords: list[str] | None = None
    if data.kind is SmartTagKind.rule:
        if data.keywords is not None:
            raise validation_error("keywords", "a rule-based smart tag has no keywords; send rule instead")
        _check_rule(session, ws, data.rule, data.tag_id)
    else:
        if data.rule is not None:
            raise validation_error("rule", "a keyword smart tag has no rule; send keywords instead")
        if data.remove_when_unmatched:
            raise validation_error(
                "remove_when_unmatched", "applies to rule-based smart tags only: a message once received stays said"
            )
        keywords = clean_keywords(data.keywords)
    row = SmartTagRule(
        workspace_id=ws,
        name=data.name,
        tag_id=data.tag_id,
        kind=data.kind,
        rule=data.rule if data.kind is SmartTagKind.rule else None,
        keywords=keywords,
        remove_when_unmatched=data.remove_when_unmatched,
        enabled=data.enabled,
        created_by_staff_id=principal.staff_id,
    )
    session.add(row)
    flush_unique(session, f"a smart tag named {data.name!r} already exists")
    return row


def update_smart_tag(session: Session, principal: Principal, smart_tag_id: int, data: SmartTagUpdate) -> SmartTagRule:
    """Changes what was given. The kind stays; tags already put on stay until the rule takes them off."""
    ws = principal.workspace_id
    row = get_smart_tag(session, ws, smart_tag_id)
    tag_id = row.tag_id
    if data.tag_id is not None:
        _check_tag(session, ws, data.tag_id)
        tag_id = data.tag_id
    if row.kind is SmartTagKind.rule:
        if data.keywords is not None:
            raise validation_error("keywords", "this smart tag is rule-based; change its rule instead")
        if data.rule is not None or tag_id != row.tag_id:
            rule = data.rule if data.rule is not None else row.rule
            _check_rule(session, ws, rule, tag_id)
            row.rule = rule
            row.last_error = None
        if data.remove_when_unmatched is not None:
            row.remove_when_unmatched = data.remove_when_unmatched
    else:
        if data.rule is not None:
            raise validation_error("rule", "this smart tag matches keywords; change its keywords instead")
        if data.remove_when_unmatched:
            raise validation_error(
                "remove_when_unmatched", "applies to rule-based smart tags only: a message once received stays said"
            )
        if data.keywords is not None:
            row.keywords = clean_keywords(data.keywords)
    row.tag_id = tag_id
    if data.enabled is not None:
        row.enabled = data.enabled
    if data.name is not None:
        row.name = data.name
    flush_unique(session, f"a smart tag named {data.name!r} already exists")
    return row


def delete_smart_tag(session: Session, workspace_id: int, smart_tag_id: int) -> None:
    """Deletes the rule; the tags it put on stay (take them off with the tags API if need be)."""
    session.delete(get_smart_tag(session, workspace_id, smart_tag_id))
    session.flush()


# --------------------------------------------------------------------------- applying: common


def _chunks(items: Sequence[int], size: int = CHUNK) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _change(
    session: Session, rule: SmartTagRule, contact_ids: Sequence[int], *, add: bool, keyword: str | None = None
) -> int:
    """Puts the rule's tag on (or takes it off) these contacts, a chunk at a time; returns how many changed."""
    principal = _system(rule.workspace_id)
    changed = 0
    for chunk in _chunks(contact_ids):
        selection = select(Contact.id).where(Contact.id.in_(chunk))
        added, removed = tags.change_tags(
            session,
            principal,
            selection,
            add=[rule.tag_id] if add else [],
            remove=[] if add else [rule.tag_id],
            reason=reason(rule, keyword),
            source=TagSource.rule,
        )
        changed += added if add else removed
    return changed


def _count(session: Session, rule: SmartTagRule, now: dt.datetime, *, added: int, removed: int, full: bool) -> None:
    values: dict[str, Any] = {"updated_at": SmartTagRule.updated_at}  # counters are not edits
    if added or removed:
        values |= {
            "added_total": SmartTagRule.added_total + added,
            "removed_total": SmartTagRule.removed_total + removed,
            "last_change_at": now,
        }
    if full:
        values |= {"last_run_at": now, "last_error": None}
    if len(values) > 1:
        session.execute(
            update(SmartTagRule)
            .where(SmartTagRule.id == rule.id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def _lacking_tag(tag_id: int) -> ColumnElement[bool]:
    return ~exists().where(ContactTag.contact_id == Contact.id, ContactTag.tag_id == tag_id)


def _enabled(session: Session, workspace_id: int, kind: SmartTagKind) -> list[SmartTagRule]:
    return list(
        session.scalars(
            select(SmartTagRule)
            .where(SmartTagRule.workspace_id == workspace_id, SmartTagRule.kind == kind, SmartTagRule.enabled)
            .order_by(SmartTagRule.id)
        )
    )


# --------------------------------------------------------------------------- applying: keywords


def apply_keyword_rules(session: Session, workspace_id: int, events: Sequence[StreamEvent]) -> set[int]:
    """Tags the senders of `message.received` events whose `text` contains a keyword of an enabled rule.

    Returns the contacts whose tags changed. The history names the rule and the keyword the message said.
    """
    messages = [
        (event.contact_id, event.properties["text"])
        for event in events
        if event.type == MESSAGE_EVENT and isinstance(event.properties.get("text"), str)
    ]
    messages = [(contact_id, text) for contact_id, text in messages if text.strip()]
    if not messages:
        return set()
    rules = _enabled(session, workspace_id, SmartTagKind.keywords)
    if not rules:
        return set()
    # rule id -> keyword said -> contacts who said it (the first keyword of the rule each message contains)
    hits: dict[int, dict[str, set[int]]] = defaultdict(lambda: defaultdict(set))
    for contact_id, text in messages:
        message = Message.of(text)
        for rule in rules:
            keyword = message.first_match(rule.keywords or [])
            if keyword is not None:
                hits[rule.id][keyword].add(contact_id)
    changed: set[int] = set()
    now = utcnow()
    for rule in rules:
        added = 0
        claimed: set[int] = set()  # one history line per contact, for the first keyword they said
        for keyword, senders in hits.get(rule.id, {}).items():
            said = senders - claimed
            claimed |= said
            lacking = list(
                session.scalars(
                    select(Contact.id)
                    .where(
                        Contact.workspace_id == workspace_id,
                        Contact.merged_into_id.is_(None),
                        Contact.id.in_(sorted(said)),
                        _lacking_tag(rule.tag_id),
                    )
                    .order_by(Contact.id)
                )
            )
            if lacking:
                added += _change(session, rule, lacking, add=True, keyword=keyword)
                changed.update(lacking)
        _count(session, rule, now, added=added, removed=0, full=False)
    return changed


def try_keywords(
    session: Session, workspace_id: int, text: str, extra_keywords: Sequence[str] | None = None
) -> KeywordTestResult:
    """Which keyword rules a message would trigger, and jieba's words of it: for operators trying keywords."""
    message = Message.of(text)
    hits = []
    for rule in list_smart_tags(session, workspace_id):
        if rule.kind is not SmartTagKind.keywords:
            continue
        found = message.matches(rule.keywords or [])
        if found:
            hits.append(
                KeywordRuleHit(
                    smart_tag_id=rule.id, name=rule.name, tag_id=rule.tag_id, enabled=rule.enabled, keywords=found
                )
            )
    tried = message.matches(clean_keywords(extra_keywords)) if extra_keywords else []
    return KeywordTestResult(tokens=tokens(text), rules=hits, keywords=tried)


# --------------------------------------------------------------------------- applying: segment rules


@dataclass
class _Prepared:
    rule: SmartTagRule
    node: Node
    reads_tags: frozenset[int]
    # Rules before it whose tags share its exclusive group: those contacts are theirs.
    yields_to: list[Node]


@dataclass
class RunResult:
    added: int = 0
    removed: int = 0
    changed: set[int] | None = None


def _tags_read(node: Node) -> set[int]:
    return {tag_id for leaf in conditions(node) if isinstance(leaf, TagsCond) for tag_id in leaf.tag_ids}


def _prepare(session: Session, workspace_id: int, rules: Sequence[SmartTagRule], ctx: RuleContext) -> list[_Prepared]:
    """Parses each rule (a rule that no longer validates is skipped and says why), in dependency order:
    a rule reading tag X runs after the rules that put X on, so one run sees the other's result."""
    catalog = segments.catalog(session, workspace_id)
    parsed: list[tuple[SmartTagRule, Node]] = []
    for rule in rules:
        try:
            parsed.append((rule, parse_rule(rule.rule, catalog)))
        except RuleError as error:
            log.warning("smart tag %s skipped: %s", rule.id, error.message)
            rule.last_error = error.message[:500]
    producers: dict[int, list[int]] = defaultdict(list)
    for index, (rule, _) in enumerate(parsed):
        producers[rule.tag_id].append(index)
    order: list[int] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done

    def visit(index: int) -> None:
        if state.get(index):
            return  # done, or a loop (rules tagging on each other's tags): keep id order there
        state[index] = 1
        for tag_id in sorted(_tags_read(parsed[index][1])):
            for producer in producers.get(tag_id, []):
                visit(producer)
        state[index] = 2
        order.append(index)

    for index in range(len(parsed)):
        visit(index)
    exclusive_group: dict[int, int] = {
        tag_id: group_id
        for tag_id, group_id in session.execute(
            select(Tag.id, Tag.group_id)
            .join(TagGroup, TagGroup.id == Tag.group_id)
            .where(Tag.id.in_({rule.tag_id for rule, _ in parsed}), TagGroup.exclusive)
        )
    }
    prepared: list[_Prepared] = []
    for index in order:
        rule, node = parsed[index]
        group = exclusive_group.get(rule.tag_id)
        yields_to = [
            p.node
            for p in prepared
            if group is not None and exclusive_group.get(p.rule.tag_id) == group and p.rule.tag_id != rule.tag_id
        ]
        prepared.append(_Prepared(rule, node, frozenset(_tags_read(node)), yields_to))
    return prepared


def _apply_one(
    session: Session, item: _Prepared, ctx: RuleContext, among: Sequence[int] | None
) -> tuple[list[int], list[int]]:
    rule = item.rule
    dialect = session.get_bind().dialect.name
    # With `among`, the rule's sets are cut to those contacts (Compiler): a step's cost follows its batch.
    only = IdFilter(dialect, among) if among is not None else None
    compiler = Compiler(ctx, dialect, among=only)
    clause = compiler.clause(item.node)
    live = [Contact.workspace_id == rule.workspace_id, Contact.merged_into_id.is_(None)]
    if only is not None:
        live.append(only(Contact.id))
    to_add_q: Select[Any] = select(Contact.id).where(*live, clause, _lacking_tag(rule.tag_id))
    for earlier in item.yields_to:
        # The first rule of an exclusive group to match a contact wins; otherwise two rules would
        # take each other's tag off on every run.
        to_add_q = to_add_q.where(not_(compiler.clause(earlier)))
    to_add = list(session.scalars(to_add_q.order_by(Contact.id)))
    to_remove: list[int] = []
    if rule.remove_when_unmatched:
        # Every compiled clause is true or false, never NULL, so NOT(clause) is exactly "does not match".
        to_remove = list(
            session.scalars(
                select(Contact.id)
                .join(ContactTag, (ContactTag.contact_id == Contact.id) & (ContactTag.tag_id == rule.tag_id))
                .where(*live, not_(clause))
                .order_by(Contact.id)
            )
        )
    return to_add, to_remove


def _run(
    session: Session, prepared: Iterable[_Prepared], ctx: RuleContext, among: Collection[int] | None, now: dt.datetime
) -> RunResult:
    result = RunResult(changed=set())
    assert result.changed is not None
    slices: list[Sequence[int] | None] = [None] if among is None else list(_chunks(sorted(among)))
    for item in prepared:
        added = removed = 0
        for part in slices:
            to_add, to_remove = _apply_one(session, item, ctx, part)
            if to_add:
                added += _change(session, item.rule, to_add, add=True)
            if to_remove:
                removed += _change(session, item.rule, to_remove, add=False)
            result.changed.update(to_add)
            result.changed.update(to_remove)
        _count(session, item.rule, now, added=added, removed=removed, full=among is None)
        result.added += added
        result.removed += removed
    return result


def apply_rule_tags(
    session: Session, workspace_id: int, *, among: Collection[int] | None, now: dt.datetime
) -> set[int]:
    """Applies every enabled rule-based smart tag to `among` (None: the whole workspace).

    Contacts matching a rule get its tag; with remove_when_unmatched, holders that no longer match lose it
    (only holders within `among` when given). Returns the contacts whose tags changed.
    """
    if among is not None and not among:
        return set()
    rules = _enabled(session, workspace_id, SmartTagKind.rule)
    if not rules:
        return set()
    ctx = segments.context(session, workspace_id, now)
    result = _run(session, _prepare(session, workspace_id, rules, ctx), ctx, among, now)
    return result.changed or set()


def run_smart_tag(session: Session, principal: Principal, smart_tag_id: int) -> RunResult:
    """Applies one rule-based smart tag over the whole workspace now (also when disabled: a one-off)."""
    rule = get_smart_tag(session, principal.workspace_id, smart_tag_id)
    if rule.kind is not SmartTagKind.rule:
        raise Conflict(
            f"smart tag {rule.name!r} matches keywords in messages as they arrive; "
            "try its keywords with POST /api/v1/smart-tags/keywords/test"
        )
    now = utcnow()
    ctx = segments.context(session, principal.workspace_id, now)
    others = [r for r in _enabled(session, principal.workspace_id, SmartTagKind.rule) if r.id != rule.id]
    prepared = _prepare(session, principal.workspace_id, sorted([*others, rule], key=lambda r: r.id), ctx)
    mine = [p for p in prepared if p.rule.id == rule.id]
    if not mine:
        # its rule no longer validates: say why, as a 422 naming the bad node
        parse_rule(rule.rule, segments.catalog(session, principal.workspace_id))
    return _run(session, mine, ctx, None, now)
