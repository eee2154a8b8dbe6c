"""A target that keeps failing is held with its backlog, not killed row by row (#17 item 3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from app.core.endpoints import Network
from app.core.outbox import Outbox, RetryPolicy
from app.errors import RemoteError
from app.store import outbox_admin
from app.store.memory import MemoryStore
from app.store.models import Delivery
from app.store.relay_store import SqlStore
from tests import builders
from tests.core.conftest import A, C
from tests.core.test_relay import drain_all

POLICY = RetryPolicy(max_attempts=3, base_delay=0.0, jitter=0.0, hold_interval=0.0, max_age=3600)


def _outbox(store, deliverer) -> tuple[Outbox, list[str]]:
    outbox = Outbox(store, {Network.SLACK: deliverer}, policy=POLICY)
    told: list[str] = []

    async def listener(task, exc) -> None:
        told.append(f"{task.target} {exc.code}")

    outbox.on_hold.append(listener)
    return outbox, told


def _row_to(store: MemoryStore, uids, target) -> str:
    (uid,) = [r.uid for r in store.rows() if r.uid in uids and r.target_endpoint == str(target)]
    return uid


def _sql_row_to(sessions, uids, target) -> str:
    with sessions() as s:
        return s.execute(
            select(Delivery.uid).where(
                Delivery.uid.in_(uids), Delivery.target_endpoint == str(target)
            )
        ).scalar_one()


def _unavailable() -> RemoteError:
    return RemoteError("503", network="slack", status=503, code="http_503", retryable=True)


async def test_an_outage_longer_than_the_retry_budget_holds_the_backlog_in_order(world) -> None:
    store, relay, _unused, deliverer = world
    outbox, told = _outbox(store, deliverer)
    first = relay.ingest(builders.post(A, "100.1", "one")).deliveries
    relay.ingest(builders.post(A, "100.2", "two"))
    relay.ingest(builders.post(A, "100.3", "three"))
    head = _row_to(store, first, C)
    for attempt in range(1, 9):  # far past max_attempts=3
        deliverer.failures[(head, attempt)] = _unavailable()
    await drain_all(outbox)
    for _ in range(10):
        await outbox.drain()
    statuses = [r.status for r in store.rows() if r.target_endpoint == str(C)]
    assert "dead" not in statuses
    delivered_to_c = [t.payload.source_native_id for t in deliverer.calls if t.target == C]
    # Nothing overtook the held post, and every post arrived once, in order.
    assert [n for i, n in enumerate(delivered_to_c) if n not in delivered_to_c[:i]] == [
        "100.1",
        "100.2",
        "100.3",
    ]
    assert statuses == ["delivered"] * 3
    assert told == [f"{C} http_503"]  # the admins were told once, when the hold began


async def test_a_held_row_past_the_retention_dies_and_retry_requeues_in_order(
    sql_world,
) -> None:
    # On the SQL store, every backend: `syncbot deliveries retry` is app/store/outbox_admin.
    sessions, relay, _unused, deliverer = sql_world
    outbox, _told = _outbox(SqlStore(sessions), deliverer)
    uids = relay.ingest(builders.post(A, "100.1", "one")).deliveries
    head = _sql_row_to(sessions, uids, C)
    later = _sql_row_to(sessions, relay.ingest(builders.post(A, "100.2")).deliveries, C)
    for attempt in range(1, 5):
        deliverer.failures[(head, attempt)] = _unavailable()
    await outbox.drain()
    with sessions() as s, s.begin():
        s.execute(
            update(Delivery)
            .where(Delivery.uid == head)
            .values(created_at=datetime.now(UTC) - timedelta(hours=2))
        )
    await drain_all(outbox)
    with sessions() as s:
        assert s.get(Delivery, _id(s, head)).status == "dead"
        assert s.get(Delivery, _id(s, later)).status == "delivered"
        assert outbox_admin.dead_by_target(s) == {str(C): 1}
    assert outbox_admin.requeue_dead(sessions) == [head]
    await drain_all(outbox)
    with sessions() as s:
        assert s.get(Delivery, _id(s, head)).status == "delivered"
        assert outbox_admin.dead_by_target(s) == {}


def _id(s, uid: str) -> int:
    return s.execute(select(Delivery.id).where(Delivery.uid == uid)).scalar_one()
