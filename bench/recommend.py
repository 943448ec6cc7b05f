"""Recommendations: the offline evaluation (hit-rate@5 against popularity and random), one contact's
ranking through the service on SQLite, and the batch kernel over contacts x items.

    python -m bench.recommend                                # 1,000,000 contacts x 2,000 items in batch
    python -m bench.recommend --quick                        # 100,000 x 2,000
    python -m bench.recommend --contacts 200000 --items 1000

Targets: one contact <= 20 ms (p50 over many contacts: siyu.recommend.service.recommend_for_contact,
its queries, the catalog from the fingerprint cache, numpy scoring and the reasons), printed next to the
bare per-contact queries it cannot beat; batch 1,000,000 contacts x 2,000 items <= 60 s (the numpy
kernel: interests @ item tags in chunks, stage factors, Thompson samples, seen penalties, top 5),
printed next to the chunked matrix product alone, its ceiling. A smaller --contacts is extrapolated
linearly to 1,000,000 for the verdict (the kernel is linear in contacts) and says so.

The evaluation's data: the demo simulator's content events name slugs, not library items, and pick
them uniformly at random, so siyu.recommend.evaluation builds a synthetic world with latent interests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

import numpy as np

from bench.common import Stats, Verdict, banner, cpu_note, migrated_engine, print_verdicts, section, temp_dir

TARGET_ONE_S = 0.020
TARGET_BATCH_S = 60.0
FULL_CONTACTS = 1_000_000
DEFAULT_ITEMS = 2_000
QUICK_CONTACTS = 100_000
TOPICS = 40
DB_CONTACTS = 3_000
SAMPLES = 300
SEED = 20261123


def _evaluation(quick: bool) -> None:
    from siyu.recommend.evaluation import World, evaluate

    section("offline evaluation: hold out each person's last view, recommend 5 from the history before it")
    world = World(people=1_500, items=200) if quick else World()
    started = time.perf_counter()
    result = evaluate(world, k=5)
    print(
        f"  synthetic world with latent interests: {result.people:,} people, {result.items:,} items, "
        f"{world.topics} topics ({time.perf_counter() - started:.1f}s)"
    )
    for name, rate in sorted(result.hit_rate.items(), key=lambda x: -x[1]):
        print(f"  hit-rate@5 {name:<11} {rate:.3f}")
    pop = result.hit_rate["popularity"]
    print(f"  siyu / popularity = {result.hit_rate['siyu'] / pop:.2f}x" if pop else "")


def _one_contact(items: int) -> tuple[Stats, Stats]:
    from sqlalchemy import insert, select

    from siyu.contacts.models import Contact
    from siyu.content.models import ContentItem, ContentItemTag, ContentKind, ContentStatus, ContentTag, ContentTagGroup
    from siyu.db import Database
    from siyu.kit.time import utcnow
    from siyu.recommend import service
    from siyu.recommend.models import ContactContentAffinity, ContactContentSeen, ContentReach
    from siyu.recommend.portrait import level_of
    from siyu.scoring.models import ContactScore
    from siyu.workspaces.service import create_workspace

    section(f"one contact: service.recommend_for_contact on SQLite ({items:,} items, {DB_CONTACTS:,} contacts)")
    rng = random.Random(SEED)
    today = dt.date(2026, 11, 23)
    now = utcnow()
    with temp_dir() as directory:
        database = Database(migrated_engine(directory / "recommend.db"))
        with database.transaction() as session:
            ws = create_workspace(session, "bench").id
            topic_group = ContentTagGroup(workspace_id=ws, name="主题")
            stage_group = ContentTagGroup(workspace_id=ws, name="阶段")
            session.add_all([topic_group, stage_group])
            session.flush()
            tags = [ContentTag(workspace_id=ws, group_id=topic_group.id, name=f"话题{n}") for n in range(TOPICS)]
            stages = [ContentTag(workspace_id=ws, group_id=stage_group.id, name=s) for s in ("激活", "成交", "复购")]
            session.add_all(tags + stages)
            session.flush()
            session.execute(
                insert(ContentItem),
                [
                    {
                        "workspace_id": ws,
                        "kind": ContentKind.article,
                        "title": f"文章{n}",
                        "data": {},
                        "status": ContentStatus.published,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(items)
                ],
            )
            item_ids = list(session.scalars(select(ContentItem.id).where(ContentItem.workspace_id == ws)))
            links = []
            for item_id in item_ids:
                for tag in rng.sample(tags, rng.randint(1, 3)):
                    links.append({"workspace_id": ws, "content_id": item_id, "tag_id": tag.id})
                if rng.random() < 0.3:
                    links.append({"workspace_id": ws, "content_id": item_id, "tag_id": rng.choice(stages).id})
            session.execute(insert(ContentItemTag), links)
            session.execute(
                insert(ContentReach),
                [{"workspace_id": ws, "content_id": i, "viewers": rng.randint(0, 200)} for i in item_ids],
            )
            session.execute(
                insert(Contact),
                [
                    {"workspace_id": ws, "name": f"客户{n}", "attributes": {}, "created_at": now, "updated_at": now}
                    for n in range(DB_CONTACTS)
                ],
            )
            contact_ids = list(session.scalars(select(Contact.id).where(Contact.workspace_id == ws)))
            affinities, seen, scores = [], [], []
            for c in contact_ids:
                for tag in rng.sample(tags, rng.randint(2, 8)):
                    score, as_of = rng.uniform(0.5, 20), today - dt.timedelta(days=rng.randint(0, 60))
                    affinities.append(
                        {
                            "workspace_id": ws,
                            "contact_id": c,
                            "content_tag_id": tag.id,
                            "score": score,
                            "as_of_day": as_of,
                            "level": level_of(score, as_of, 14.0),
                        }
                    )
                for item_id in rng.sample(item_ids, rng.randint(0, 20)):
                    seen.append(
                        {
                            "workspace_id": ws,
                            "contact_id": c,
                            "content_id": item_id,
                            "first_at": now,
                            "last_at": now,
                            "count": 1,
                        }
                    )
                scores.append(
                    {
                        "workspace_id": ws,
                        "contact_id": c,
                        "lifecycle_stage": "activated",
                        "reasons": {},
                        "computed_at": now,
                    }
                )
            session.execute(insert(ContactContentAffinity), affinities)
            session.execute(insert(ContactContentSeen), seen)
            session.execute(insert(ContactScore), scores)
        sample = rng.sample(contact_ids, min(SAMPLES, len(contact_ids)))
        service.clear_cache()
        with database.transaction(write=False) as session:
            service.recommend_for_contact(session, ws, sample[0], limit=5, seed=1)  # builds the catalog cache
            timings = []
            for c in sample:
                started = time.perf_counter()
                service.recommend_for_contact(session, ws, c, limit=5, seed=c)
                timings.append(time.perf_counter() - started)
            bare = []
            for c in sample:
                started = time.perf_counter()
                session.execute(
                    select(ContactContentAffinity.content_tag_id, ContactContentAffinity.score).where(
                        ContactContentAffinity.workspace_id == ws, ContactContentAffinity.contact_id == c
                    )
                ).all()
                session.execute(
                    select(ContactContentSeen.content_id).where(
                        ContactContentSeen.workspace_id == ws, ContactContentSeen.contact_id == c
                    )
                ).all()
                session.scalar(select(ContactScore.lifecycle_stage).where(ContactScore.contact_id == c))
                bare.append(time.perf_counter() - started)
        database.engine.dispose()
    one, floor = Stats.of(timings), Stats.of(bare)
    print(f"  recommend_for_contact (top 5, reasons) {one.ms()}")
    print(f"  baseline: its three bare queries        {floor.ms()}")
    return one, floor


def _batch(contacts: int, items: int) -> tuple[float, float]:
    from siyu.recommend.ranking import STAGES, Weights, batch_top_k, build_catalog, relative

    section(f"batch kernel: {contacts:,} contacts x {items:,} items, {TOPICS} topic tags, top 5")
    rng = np.random.default_rng(SEED)
    weights = Weights()
    item_topics = [
        sorted(rng.choice(TOPICS, size=int(rng.integers(1, 4)), replace=False).tolist()) for _ in range(items)
    ]
    item_stages = [[str(rng.choice(STAGES))] if rng.random() < 0.3 else [] for _ in range(items)]
    catalog = build_catalog(
        list(range(1, items + 1)),
        [""] * items,
        ["article"] * items,
        item_topics,
        item_stages,
        list(range(TOPICS)),
        [f"t{n}" for n in range(TOPICS)],
        weights,
    )
    catalog.engaged = rng.integers(0, 200, size=items).astype(float)
    catalog.exposed = catalog.engaged + rng.integers(0, 2000, size=items)
    # Portraits: each contact has a few tags (dense block, mostly zeros), a stage, ~10 seen items.
    interest = np.zeros((contacts, TOPICS), dtype=np.float32)
    per = 6
    rows = np.repeat(np.arange(contacts), per)
    interest[rows, rng.integers(0, TOPICS, size=contacts * per)] = rng.uniform(0.1, 10, size=contacts * per)
    interest = relative(interest)
    stages = rng.integers(0, len(STAGES) + 1, size=contacts).astype(np.intp)
    counts = rng.integers(0, 21, size=contacts)
    indptr = np.zeros(contacts + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(counts)
    indices = rng.integers(0, items, size=int(indptr[-1])).astype(np.intp)
    print(f"  seen entries: {int(indptr[-1]):,}; chunk 16,384 contacts")

    started = time.perf_counter()
    checksum = 0
    for _start, index, _values in batch_top_k(catalog, interest, stages, (indptr, indices), 5, weights, rng):
        checksum += int(index[:, 0].sum())
    full = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, contacts, 16_384):
        block = interest[start : start + 16_384] @ catalog.topic
        checksum += int(block[0, 0] > 2)
    ceiling = time.perf_counter() - started
    print(f"  batch_top_k (scores, stage, Thompson, seen, top 5)  {full:8.2f} s  ({contacts / full:,.0f} contacts/s)")
    print(f"  ceiling: the chunked matmul alone                   {ceiling:8.2f} s  ({full / ceiling:.1f}x of it)")
    return full, ceiling


def run(quick: bool = False, contacts: int | None = None, items: int = DEFAULT_ITEMS) -> list[Verdict]:
    contacts = contacts or (QUICK_CONTACTS if quick else FULL_CONTACTS)
    banner(f"recommendations ({cpu_note()})")
    _evaluation(quick)
    one, _floor = _one_contact(items)
    seconds, _ceiling = _batch(contacts, items)
    scaled = seconds * FULL_CONTACTS / contacts * (DEFAULT_ITEMS / items if items < DEFAULT_ITEMS else 1)
    note = "" if (contacts, items) == (FULL_CONTACTS, DEFAULT_ITEMS) else f", extrapolated from {contacts:,}x{items:,}"
    return [
        Verdict(
            "recommend one contact",
            "p50 <= 20 ms",
            f"p50 {one.p50 * 1e3:.1f} ms, p95 {one.p95 * 1e3:.1f} ms",
            one.p50 <= TARGET_ONE_S,
        ),
        Verdict(
            "recommend batch",
            "1,000,000 contacts x 2,000 items <= 60 s",
            f"{scaled:.1f} s{note}",
            scaled <= TARGET_BATCH_S,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recommend", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_CONTACTS:,} contacts in batch")
    parser.add_argument("--contacts", type=int, default=None, help="contacts in the batch run")
    parser.add_argument("--items", type=int, default=DEFAULT_ITEMS, help="published items")
    args = parser.parse_args(argv)
    print_verdicts(run(quick=args.quick, contacts=args.contacts, items=args.items))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
