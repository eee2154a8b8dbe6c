"""The dispatcher: inline first, the rest to the notifier, and a queue
worker's view of one notice (settled, or when to look again)."""

from __future__ import annotations

from app.core.dispatch import Dispatcher
from app.core.endpoints import Endpoint
from app.errors import RemoteError
from app.store.memory import MemoryStore
from tests import builders
from tests.builders import RecordingNotifier
from tests.core.conftest import A, B, C
from tests.slack.harness import wait_for


def slow_down(seconds: float) -> RemoteError:
    return RemoteError("ratelimited", network="slack", retryable=True, retry_after=seconds)


async def test_inline_delivery_then_only_the_rest_is_notified(world) -> None:
    store, relay, outbox, deliverer = world
    notifier = RecordingNotifier()
    dispatcher = Dispatcher(outbox, store, notifier)
    result = relay.ingest(builders.post(A, "1.1"))
    to_b, to_c = result.deliveries
    deliverer.failures[(to_c, 1)] = slow_down(30)
    await dispatcher.after_commit(result.deliveries, budget=5.0)
    (notice,) = notifier.notices
    assert notice.uid == to_c and notice.target == C
    assert 25 < notice.due_in <= 30  # the Retry-After, not "now"
    assert notice.attempts == 1
    assert [c.uid for c in deliverer.calls] == [to_b, to_c]


async def test_without_budget_everything_goes_to_the_notifier(world) -> None:
    store, relay, outbox, deliverer = world
    notifier = RecordingNotifier()
    dispatcher = Dispatcher(outbox, store, notifier)
    result = relay.ingest(builders.post(A, "1.1"))
    await dispatcher.after_commit(result.deliveries, budget=None)
    assert sorted(n.uid for n in notifier.notices) == sorted(result.deliveries)
    assert all(n.due_in == 0 for n in notifier.notices)
    assert deliverer.calls == []


async def test_a_broken_queue_loses_nothing(world) -> None:
    store, relay, outbox, deliverer = world
    dispatcher = Dispatcher(outbox, store, RecordingNotifier(broken=True))
    result = relay.ingest(builders.post(A, "1.1"))
    await dispatcher.after_commit(result.deliveries, budget=None)  # does not raise
    pending = [r.uid for r in store.rows() if r.status == "pending"]
    assert sorted(pending) == sorted(result.deliveries)
    await outbox.drain()  # what the maintenance tick runs
    assert sorted(c.uid for c in deliverer.calls) == sorted(result.deliveries)


async def test_work_reports_when_to_look_again_then_settles(world) -> None:
    store, relay, outbox, deliverer = world
    dispatcher = Dispatcher(outbox, store, RecordingNotifier())
    result = relay.ingest(builders.post(A, "1.1"))
    to_b, _to_c = result.deliveries
    deliverer.failures[(to_b, 1)] = slow_down(0.5)
    waiting = await dispatcher.work(to_b)
    assert waiting is not None and waiting.uid == to_b and 0 < waiting.due_in <= 0.5
    early = await dispatcher.work(to_b)  # a notice that comes back too soon changes nothing
    assert early is not None and early.attempts == 1
    wait_for(lambda: store.pending([to_b])[0].due_in == 0, timeout=5)
    assert await dispatcher.work(to_b) is None
    assert await dispatcher.work(to_b) is None  # a duplicate notice of a settled row
    assert [c.uid for c in deliverer.calls] == [to_b, to_b]


async def test_a_notice_moves_its_whole_target_in_order(world) -> None:
    # The notice of the first row was lost: the second row's notice delivers both, in order.
    store, relay, outbox, deliverer = world
    dispatcher = Dispatcher(outbox, store, RecordingNotifier())
    first = relay.ingest(builders.post(A, "1.1")).deliveries
    second = relay.ingest(builders.post(A, "1.2")).deliveries
    to_b_second = next(uid for uid in second if uid not in first and _target(store, uid) == B)
    assert await dispatcher.work(to_b_second) is None
    to_b = [c.payload.source_native_id for c in deliverer.calls if c.target == B]
    assert to_b == ["1.1", "1.2"]


async def test_a_row_behind_a_waiting_one_waits_as_long(world) -> None:
    store, relay, outbox, deliverer = world
    dispatcher = Dispatcher(outbox, store, RecordingNotifier())
    first = relay.ingest(builders.post(A, "1.1")).deliveries
    second = relay.ingest(builders.post(A, "1.2")).deliveries
    first_b = next(uid for uid in first if _target(store, uid) == B)
    second_b = next(uid for uid in second if _target(store, uid) == B)
    deliverer.failures[(first_b, 1)] = slow_down(20)
    waiting = await dispatcher.work(second_b)
    assert waiting is not None and waiting.uid == second_b and 15 < waiting.due_in <= 20


def _target(store: MemoryStore, uid: str) -> Endpoint:
    (row,) = [r for r in store.rows() if r.uid == uid]
    return Endpoint.parse(row.target_endpoint)
