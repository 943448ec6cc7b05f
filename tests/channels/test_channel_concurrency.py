"""Threads adding through one code at once: caps hold, every add is counted once, round robin stays even.

Runs on both backends: on PostgreSQL the code row is locked FOR UPDATE; on SQLite, BEGIN IMMEDIATE
gives one writer at a time.
"""

from __future__ import annotations

import threading
from collections import Counter

from channel_helpers import add_staff, make_channel, make_code, phone
from sqlalchemy import func, select

from siyu.channels.attribution import NoStaffAvailable, record_add
from siyu.channels.models import ChannelCodeDay, ChannelCodeStaffDay, ChannelTouch
from siyu.contacts.models import Contact

THREADS = 6
PER_THREAD = 8


def _hammer(db, tenant, code_id: int, clock) -> tuple[list[int], int, list[BaseException]]:  # type: ignore[no-untyped-def]
    picked: list[int] = []
    refused = 0
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        nonlocal refused
        for i in range(PER_THREAD):
            try:
                with db.transaction() as session:
                    result = record_add(
                        session, tenant.workspace_id, code_id, {"phone": phone(worker * 100 + i)}, occurred_at=clock.now
                    )
                with lock:
                    picked.append(result.staff_id)
            except NoStaffAvailable:
                with lock:
                    refused += 1
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return picked, refused, errors


def test_caps_hold_under_concurrent_adds(tenant, db, clock) -> None:
    a, b, c = add_staff(tenant, "甲"), add_staff(tenant, "乙"), add_staff(tenant, "丙")
    code = make_code(
        tenant,
        make_channel(tenant),
        [{"staff_id": a, "daily_cap": 7}, {"staff_id": b, "daily_cap": 5}, {"staff_id": c, "daily_cap": 3}],
    )
    picked, refused, errors = _hammer(db, tenant, code["id"], clock)
    assert not errors, errors
    total = THREADS * PER_THREAD
    assert Counter(picked) == {a: 7, b: 5, c: 3}
    assert refused == total - 15
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(ChannelTouch)) == 15
        assert session.scalar(select(func.count()).select_from(Contact)) == 15
        assert session.scalar(select(ChannelCodeDay.adds)) == 15
        per_staff = dict(session.execute(select(ChannelCodeStaffDay.staff_id, ChannelCodeStaffDay.adds)).all())
        assert per_staff == {a: 7, b: 5, c: 3}


def test_round_robin_stays_even_under_concurrent_adds(tenant, db, clock) -> None:
    pool = [add_staff(tenant, name) for name in ("甲", "乙", "丙", "丁")]
    code = make_code(tenant, make_channel(tenant), [{"staff_id": s} for s in pool])
    picked, refused, errors = _hammer(db, tenant, code["id"], clock)
    assert not errors and refused == 0, errors
    assert Counter(picked) == {s: THREADS * PER_THREAD // 4 for s in pool}
    with db.transaction(write=False) as session:
        assert session.scalar(select(func.count()).select_from(ChannelTouch)) == THREADS * PER_THREAD
        assert session.scalar(select(ChannelCodeDay.adds)) == THREADS * PER_THREAD
