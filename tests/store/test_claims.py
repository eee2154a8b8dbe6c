"""Many workers, one outbox: claims on PostgreSQL and MariaDB skip rows another worker is
locking instead of waiting for it, never hand a row to two workers, and never let a later
row of a target overtake an earlier one. SQLite has one writer at a time (BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from app.store.engine import session_factory
from app.store.models import Delivery
from app.store.relay_store import SKIP_LOCKED_DIALECTS, SqlStore
from tests.builders import STORED_POST

TARGETS = [f"slack:T{i}/C{i}" for i in range(8)]


def fill(engine, per_target: int) -> dict[str, list[str]]:
    """Pending rows, interleaved across targets; returns each target's uids in order."""
    order: dict[str, list[str]] = defaultdict(list)
    past = datetime.now(UTC) - timedelta(seconds=1)
    with session_factory(engine)() as s, s.begin():
        for _ in range(per_target):
            for target in TARGETS:
                uid = uuid.uuid4().hex
                s.add(
                    Delivery(
                        uid=uid,
                        target_endpoint=target,
                        kind="post",
                        payload=STORED_POST,
                        status="pending",
                        next_attempt_at=past,
                        created_at=past,
                    )
                )
                s.flush()
                order[target].append(uid)
    return order


def test_concurrent_claims_hand_each_row_to_one_worker_in_order(engine) -> None:
    order = fill(engine, per_target=15)
    store = SqlStore(session_factory(engine))
    claimed: dict[str, list[tuple[str, str]]] = defaultdict(list)  # target -> (worker, uid)
    lock = threading.Lock()

    def worker(name: str) -> None:
        for _ in range(40):
            tasks = store.claim_due(worker=name, limit=5, lease_seconds=60)
            with lock:
                for task in tasks:
                    claimed[str(task.target)].append((name, task.uid))
            # Done at once, so the next row of the target becomes claimable.
            for task in tasks:
                store.mark_dead(task, error="test")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(worker, ["w1", "w2", "w3", "w4"]))
    every = [uid for rows in claimed.values() for _w, uid in rows]
    assert len(every) == len(set(every)) == 15 * len(TARGETS)
    for target, uids in order.items():
        # Claims of one target happen in its order (mark_dead follows each claim).
        assert [uid for _w, uid in claimed[target]] == uids


def test_a_locked_row_is_skipped_not_waited_for(engine, backend) -> None:
    if engine.dialect.name not in SKIP_LOCKED_DIALECTS:
        pytest.skip("SQLite has a single writer: claims are serialized, nothing to skip")
    order = fill(engine, per_target=2)
    busy, free = TARGETS[0], TARGETS[1:]
    with engine.connect() as other:
        tx = other.begin()
        # Another worker is in the middle of claiming the first row of `busy`.
        other.execute(select(Delivery.id).where(Delivery.uid == order[busy][0]).with_for_update())
        if engine.dialect.name == "postgresql":
            other.execute(text("SET LOCAL lock_timeout = '10s'"))
        store = SqlStore(session_factory(engine))
        with ThreadPoolExecutor(1) as pool:
            # Waiting on the lock would take the whole lock timeout; skipping is immediate.
            tasks = pool.submit(store.claim_due, worker="w", limit=100, lease_seconds=60).result(
                timeout=8
            )
        tx.rollback()
    got = {str(t.target): [] for t in tasks}
    for t in tasks:
        got[str(t.target)].append(t.uid)
    assert busy not in got  # neither its locked row nor the row behind it
    assert got == {target: order[target] for target in free}


def test_a_claim_that_loses_the_race_for_its_targets_takes_others(engine) -> None:
    if engine.dialect.name not in SKIP_LOCKED_DIALECTS:
        pytest.skip("SQLite has a single writer: claims are serialized, no race to lose")
    order = fill(engine, per_target=2)
    taken = TARGETS[:2]
    with engine.connect() as other:
        tx = other.begin()
        # Another worker scanned at the same moment, chose the same two targets first and is
        # locking them: this claim's plain scan still sees them as free.
        other.execute(
            select(Delivery.id)
            .where(Delivery.uid.in_([order[t][0] for t in taken]))
            .with_for_update()
        )
        store = SqlStore(session_factory(engine))
        with ThreadPoolExecutor(1) as pool:
            tasks = pool.submit(
                store.claim_due, worker="w", limit=100, lease_seconds=60, lanes=2
            ).result(timeout=8)
        tx.rollback()
    got: dict[str, list[str]] = defaultdict(list)
    for t in tasks:
        got[str(t.target)].append(t.uid)
    # Not nothing (and a sleep before the next pass): two other targets, whole and in order.
    assert got == {target: order[target] for target in TARGETS[2:4]}
