"""Under sustained load a target always has a delivery waiting, so the relay leases nothing
and every new row used to wait for a claim. A lane of this process already delivering the
target takes its new rows over from the relay in memory instead (one statement, no claim),
and only when nothing of the target it does not have comes first."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine, select

from app.core.dispatch import Dispatcher, InProcessNotifier
from app.core.ingest import Ingest
from app.core.outbox import Outbox
from app.core.payloads import PostPayload
from app.core.ports import Delivered, DeliveryTask
from app.core.relay import Relay, RelayResult
from app.errors import RemoteError
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.memory import MemoryStore
from app.store.models import Delivery
from app.store.relay_store import SqlStore
from tests import builders
from tests.builders import Scripted
from tests.conftest import TEST_KEY
from tests.core.conftest import POLICY, A, B, C
from tests.wait import wait_for_async


class Gated(Scripted):
    """Holds the deliveries of ``held`` until ``gate`` opens; yields to the loop on each."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.held: set[str] = set()
        self.started: list[str] = []

    async def deliver(self, task: DeliveryTask) -> Delivered:
        self.started.append(task.uid)
        if task.uid in self.held:
            await self.gate.wait()
        await asyncio.sleep(0)  # a network call's turn of the loop
        return await super().deliver(task)


class Counting:
    """The store, counting the rows that reached a lane through a claim."""

    def __init__(self, store: MemoryStore | SqlStore) -> None:
        self.claimed: Counter[str] = Counter()
        self._store = store
        self._claim_due = store.claim_due
        store.claim_due = self.claim_due  # type: ignore[method-assign]

    def claim_due(self, **kwargs: object) -> list[DeliveryTask]:
        tasks = self._claim_due(**kwargs)  # type: ignore[arg-type]
        self.claimed.update(t.uid for t in tasks)
        return tasks


def _setup(store: MemoryStore | SqlStore | None = None) -> World:
    if store is None:
        store = MemoryStore()
        store.add_sync("general", A, B, C)
    deliverer = Gated()
    outbox = Outbox(store, {deliverer.network: deliverer}, policy=POLICY)
    dispatcher = Dispatcher(outbox, store, InProcessNotifier(outbox))
    return World(store, Relay(store), outbox, deliverer, dispatcher)


class Row(NamedTuple):
    uid: str
    target_endpoint: str
    status: str


def _rows(store: MemoryStore) -> list[Row]:
    return [Row(r.uid, r.target_endpoint, r.status) for r in store.rows()]


class World(NamedTuple):
    store: Any
    relay: Relay
    outbox: Outbox
    deliverer: Gated
    dispatcher: Dispatcher


def _delivered_in_order(rows: list[Row], deliverer: Scripted, *, strict: bool = True) -> None:
    """Every row delivered once, each target's in the order they were written (``strict``),
    or at least each sender's in the order it sent them: where ids are not handed out in
    commit order (PostgreSQL, MariaDB), two events relayed at once have no order."""
    assert all(r.status == "delivered" for r in rows)
    calls = [t.uid for t in deliverer.calls]
    assert sorted(calls) == sorted(r.uid for r in rows)  # none twice, none lost
    for target in {r.target_endpoint for r in rows}:
        done = [t for t in deliverer.calls if str(t.target) == target]
        if strict:
            written = [r.uid for r in rows if r.target_endpoint == target]
            assert [t.uid for t in done] == written, target
        sent: dict[str, list[int]] = {}
        for task in done:
            sender, number = _source_id(task).split(".")
            sent.setdefault(sender, []).append(int(number))
        assert all(numbers == sorted(numbers) for numbers in sent.values()), target


def _source_id(task: DeliveryTask) -> str:
    assert isinstance(task.payload, PostPayload)
    return task.payload.source_native_id


async def _sustained_load(
    world: World, rows: Callable[[], list[Row]], *, strict: bool = True
) -> None:
    """Eight senders, forty posts each, to the same two targets (as in the benchmark)."""
    counting = Counting(world.store)
    ingest = Ingest(world.relay, world.dispatcher)
    worker = asyncio.ensure_future(world.outbox.run_forever(idle=3600.0))
    results: list[RelayResult] = []

    async def sender(k: int) -> None:
        for i in range(40):
            event = builders.post(A, f"{k}.{i}", f"message {k}.{i}")
            results.append(await ingest(event, deadline=time.monotonic() + 30.0))

    try:
        await asyncio.gather(*(sender(k) for k in range(8)))
        await wait_for_async(lambda: all(r.status == "delivered" for r in rows()))
    finally:
        worker.cancel()
        await world.outbox.wait_idle()
    written = rows()
    assert len(written) == 8 * 40 * 2
    _delivered_in_order(written, world.deliverer, strict=strict)
    inline = sum(len(r.tasks) for r in results)
    claimed = sum(counting.claimed.values())
    # Before: all but a few rows went to the worker's claims (their target always busy).
    assert claimed < len(written) // 5, (claimed, inline, len(written))


async def test_under_sustained_load_lanes_take_the_new_rows_without_claims() -> None:
    world = _setup()
    await _sustained_load(world, lambda: _rows(world.store))


async def test_under_sustained_load_on_the_sql_store(engine: Engine) -> None:
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    for team in ("T1", "T2", "T3"):
        builders.workspace(sessions, cipher, team)
    builders.sync(sessions, "general", A, B, C)

    def rows() -> list[Row]:
        table = Delivery.__table__
        with engine.connect() as conn:
            found = conn.execute(
                select(table.c.uid, table.c.target_endpoint, table.c.status).order_by(table.c.id)
            )
            return [Row(*r) for r in found]

    strict = engine.dialect.name == "sqlite"  # one writer at a time: ids in commit order
    await _sustained_load(_setup(SqlStore(sessions)), rows, strict=strict)


async def test_rows_committed_out_of_after_commit_order_keep_their_target_order() -> None:
    store, relay, outbox, deliverer, dispatcher = _setup()
    first = relay.ingest(builders.post(A, "1.0"))
    (c1,) = [t.uid for t in first.fresh if t.target == C]
    deliverer.held.add(c1)
    drain = asyncio.ensure_future(outbox.drain())
    await wait_for_async(lambda: c1 in deliverer.started)
    second = relay.ingest(builders.post(A, "2.0"))
    third = relay.ingest(builders.post(A, "3.0"))
    # Their dispatches arrive in the other order than their commits.
    await dispatcher.after_commit(third.deliveries, fresh=third.fresh)
    await dispatcher.after_commit(second.deliveries, fresh=second.fresh)
    deliverer.gate.set()
    await drain
    await outbox.wait_idle()
    _delivered_in_order(_rows(store), deliverer)


async def test_a_row_another_worker_leased_is_not_taken_nor_those_after_it() -> None:
    store, relay, outbox, deliverer, dispatcher = _setup()
    counting = Counting(store)
    first = relay.ingest(builders.post(A, "1.0"))
    (c1,) = [t.uid for t in first.fresh if t.target == C]
    deliverer.held.add(c1)
    drain = asyncio.ensure_future(outbox.drain())
    await wait_for_async(lambda: c1 in deliverer.started)
    second = relay.ingest(builders.post(A, "2.0"))
    third = relay.ingest(builders.post(A, "3.0"))
    await dispatcher.after_commit(second.deliveries, fresh=second.fresh)
    (c2,) = [t.uid for t in second.fresh if t.target == C]
    (c3,) = [t.uid for t in third.fresh if t.target == C]
    # Another process's worker leases c2 meanwhile (as its claim would, once c1 is done).
    until = datetime.now(UTC) + timedelta(seconds=60)
    store._update(c2, lambda r: replace(r, lease_owner="elsewhere:1", lease_expires_at=until))
    await dispatcher.after_commit(third.deliveries, fresh=third.fresh)
    deliverer.gate.set()
    await drain
    await outbox.wait_idle()
    done = {t.uid for t in deliverer.calls}
    assert c1 in done and c2 not in done and c3 not in done  # c3 waits behind c2
    rows = {r.uid: r for r in store.rows()}
    assert rows[c2].lease_owner == "elsewhere:1" and rows[c3].lease_owner is None
    # The other worker dies: once its lease is gone, the claims deliver both, in order.
    store._update(c2, lambda r: replace(r, lease_expires_at=datetime.now(UTC)))
    while any(r.status == "pending" for r in store.rows()):
        await outbox.drain()
        await outbox.wait_idle()
    assert [t.uid for t in deliverer.calls if t.target == C] == [c1, c2, c3]
    assert counting.claimed[c2] == 1 and counting.claimed[c3] == 1


async def test_a_lane_that_fails_leaves_the_rows_handed_to_it_for_claims() -> None:
    store, relay, outbox, deliverer, dispatcher = _setup()
    first = relay.ingest(builders.post(A, "1.0"))
    (c1,) = [t.uid for t in first.fresh if t.target == C]
    deliverer.held.add(c1)
    deliverer.failures[(c1, 1)] = RemoteError("boom", network="slack", retryable=True)
    drain = asyncio.ensure_future(outbox.drain())
    await wait_for_async(lambda: c1 in deliverer.started)
    later = [relay.ingest(builders.post(A, f"{i}.0")) for i in (2, 3)]
    for result in later:
        await dispatcher.after_commit(result.deliveries, fresh=result.fresh)
    handed = [t.uid for r in later for t in r.fresh if t.target == C]
    deliverer.gate.set()
    await drain
    await outbox.wait_idle()
    # c1 backs off; what was handed to its lane stays pending, leased to nobody.
    rows = {r.uid: r for r in store.rows()}
    assert not {t.uid for t in deliverer.calls} & set(handed)
    assert all(rows[u].status == "pending" and rows[u].lease_owner is None for u in handed)
    while any(r.status == "pending" for r in store.rows()):
        await outbox.drain()
        await outbox.wait_idle()
    to_c = [t.uid for t in deliverer.calls if t.target == C]
    assert to_c == [c1, c1, *handed]  # the failed attempt, its retry, then the rest once


async def test_rows_handed_to_an_inline_lane_go_on_without_holding_up_its_sender() -> None:
    store, relay, outbox, deliverer, dispatcher = _setup()
    counting = Counting(store)
    first = relay.ingest(builders.post(A, "1.0"), lease=dispatcher.inline_lease(30.0))
    (c1,) = [t.uid for t in first.tasks if t.target == C]
    deliverer.held.add(c1)
    inline = asyncio.ensure_future(
        dispatcher.after_commit(first.deliveries, budget=30.0, leased=first.tasks)
    )
    await wait_for_async(lambda: c1 in deliverer.started)
    later = [
        relay.ingest(builders.post(A, f"{i}.0"), lease=dispatcher.inline_lease(30.0))
        for i in (2, 3)
    ]
    for result in later:
        assert not [t for t in result.tasks if t.target == C]  # C is busy: not leased
        await dispatcher.after_commit(
            result.deliveries, budget=30.0, leased=result.tasks, fresh=result.fresh
        )
    # Holding c1 back holds back the first sender alone; the later ones were answered.
    assert not inline.done()
    handed = [t.uid for r in later for t in r.fresh if t.target == C]
    deliverer.gate.set()
    await inline
    await outbox.wait_idle()
    # The inline lane did its own rows; a lane of their own took the handed ones, unclaimed.
    assert [t.uid for t in deliverer.calls if t.target == C] == [c1, *handed]
    assert not set(handed) & set(counting.claimed)
    while any(r.status == "pending" for r in store.rows()):  # B's, if they waited for a claim
        await outbox.drain()
        await outbox.wait_idle()
    _delivered_in_order(_rows(store), deliverer)
