"""The relay and outbox against the in-memory store, with a scripted deliverer."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from app.core.endpoints import Endpoint
from app.core.events import ChannelChange, ChannelEvent, Kind
from app.core.outbox import Outbox
from app.errors import RemoteError
from tests import builders

A = Endpoint.slack("T1", "C1")
B = Endpoint.slack("T2", "C2")
C = Endpoint.slack("T3", "C3")


async def drain_all(outbox: Outbox) -> None:
    for _ in range(20):
        report = await outbox.drain()
        if not (report.delivered or report.retried or report.dead):
            return


async def test_post_fans_out_to_every_other_endpoint_once(world) -> None:
    store, relay, outbox, deliverer = world
    result = relay.ingest(builders.post(A, "100.1", "hi"))
    assert len(result.deliveries) == 2
    await drain_all(outbox)
    assert sorted(str(c.target) for c in deliverer.calls) == [str(B), str(C)]
    copies = [(c.endpoint, c.is_source) for c in store.copies()]
    assert sorted(copies) == sorted([(str(A), True), (str(B), False), (str(C), False)])


async def test_duplicate_event_is_claimed_once(world) -> None:
    store, relay, _outbox, _deliverer = world
    event = builders.post(A, "100.1", dedupe_key="slack:Ev1")
    assert not relay.ingest(event).duplicate
    assert relay.ingest(event).duplicate
    assert len(store.rows()) == 2
    assert store.claims() == ["slack:Ev1"]


async def test_echo_of_a_copy_is_not_relayed(world) -> None:
    _store, relay, outbox, deliverer = world
    relay.ingest(builders.post(A, "100.1"))
    await drain_all(outbox)
    copy_ts = next(c for c in deliverer.calls if c.target == B)
    assert copy_ts
    echo = builders.post(B, "C2-1")  # the native id our deliverer gave the copy at B
    assert relay.ingest(echo).deliveries == ()


async def test_edit_delete_and_thread_resolve_through_the_message_map(world) -> None:
    _store, relay, outbox, deliverer = world
    relay.ingest(builders.post(A, "100.1", "parent"))
    await drain_all(outbox)
    relay.ingest(builders.post(A, "100.2", "reply", thread_native_id="100.1"))
    relay.ingest(builders.edit(A, "100.1", "parent edited"))
    relay.ingest(builders.delete(A, "100.1"))
    await drain_all(outbox)
    by_target = defaultdict(list)
    for call in deliverer.calls:
        by_target[str(call.target)].append(call)
    for target in (B, C):
        kinds = [c.kind for c in by_target[str(target)]]
        assert kinds == [Kind.POST, Kind.POST, Kind.EDIT, Kind.DELETE]
        reply = by_target[str(target)][1]
        parent_copy = by_target[str(target)][2].copy
        assert reply.parent_copy is not None and parent_copy is not None
        assert reply.parent_copy.native_id == parent_copy.native_id
    # A deleted post takes no more edits.
    assert relay.ingest(builders.edit(A, "100.1", "too late")).deliveries == ()


async def test_reactions_aggregate_per_emoji_per_target(world) -> None:
    store, relay, outbox, _deliverer = world
    relay.ingest(builders.post(A, "100.1"))
    await drain_all(outbox)
    (b_ts,) = [c.native_id for c in store.copies() if c.endpoint == str(B)]
    first = relay.ingest(builders.react(A, "100.1", "tada", "U1"))
    second = relay.ingest(builders.react(A, "100.1", "tada", "U2"))
    # B reacts on its own copy: A and C get the native reaction; B already shows U1's.
    third = relay.ingest(builders.react(B, b_ts, "tada", "U9"))
    assert len(first.deliveries) == 2  # B and C
    assert second.deliveries == ()  # already shown everywhere
    assert len(third.deliveries) == 1  # only A lacked a reaction from elsewhere
    removed = relay.ingest(builders.react(A, "100.1", "tada", "U1", added=False))
    assert removed.deliveries == ()  # U2 still reacts from A
    last = relay.ingest(builders.react(A, "100.1", "tada", "U2", added=False))
    assert len(last.deliveries) == 1  # B loses it (only its own U9 is left); C keeps B's


async def test_failures_retry_then_die_visibly_and_keep_order(world) -> None:
    store, relay, outbox, deliverer = world
    first = relay.ingest(builders.post(A, "1.1", "one"))
    to_b, to_c = first.deliveries
    deliverer.failures[(to_b, 1)] = RemoteError(
        "slow down", network="slack", retryable=True, retry_after=0
    )
    deliverer.failures[(to_c, 1)] = RemoteError("nope", network="slack", code="channel_not_found")
    relay.ingest(builders.post(A, "1.2", "two"))
    await drain_all(outbox)
    b_calls = [c.payload.source_native_id for c in deliverer.calls if c.target == B]
    c_calls = [c.payload.source_native_id for c in deliverer.calls if c.target == C]
    assert b_calls == ["1.1", "1.1", "1.2"]  # the retry went first; order kept
    assert c_calls == ["1.1", "1.2"]  # a dead delivery does not hold up the next one
    dead = [r for r in store.rows() if r.status == "dead"]
    assert [d.uid for d in dead] == [to_c]
    assert "channel_not_found" in (dead[0].last_error or "")


async def test_expired_lease_marks_outcome_unknown(world) -> None:
    store, relay, _outbox, _deliverer = world
    relay.ingest(builders.post(A, "1.1"))
    claimed = store.claim_due(worker="dead-worker", limit=10, lease_seconds=-1)
    assert claimed and not any(t.outcome_unknown for t in claimed)
    again = store.claim_due(worker="new-worker", limit=10, lease_seconds=60)
    assert again and all(t.outcome_unknown for t in again)


async def test_archive_pauses_the_endpoint(world) -> None:
    _store, relay, _outbox, _deliverer = world
    relay.ingest(ChannelEvent(source=B, dedupe_key="k-arch", change=ChannelChange.ARCHIVE))
    assert len(relay.ingest(builders.post(A, "2.1")).deliveries) == 1
    assert relay.ingest(builders.post(B, "2.2")).deliveries == ()
    relay.ingest(ChannelEvent(source=B, dedupe_key="k-unarch", change=ChannelChange.UNARCHIVE))
    assert len(relay.ingest(builders.post(A, "2.3")).deliveries) == 2


async def test_concurrent_drains_deliver_each_once(world) -> None:
    _store, relay, outbox, deliverer = world
    for i in range(20):
        relay.ingest(builders.post(A, f"3.{i}"))
    await asyncio.gather(*(outbox.drain() for _ in range(4)))
    await drain_all(outbox)
    uids = [c.uid for c in deliverer.calls]
    assert len(uids) == len(set(uids)) == 40


async def test_an_edit_and_a_reply_claimed_with_their_post_find_its_new_copy(world) -> None:
    # A backlog (after an outage, say): post, edit and thread reply reach the worker together,
    # in one lane; the copy the post makes must reach the two deliveries behind it.
    _store, relay, outbox, deliverer = world
    relay.ingest(builders.post(A, "5.1", "first"))
    relay.ingest(builders.edit(A, "5.1", "first, edited"))
    relay.ingest(builders.post(A, "5.2", "a reply", thread_native_id="5.1"))
    await outbox.drain()
    to_b = [c for c in deliverer.calls if c.target == B]
    assert [c.kind for c in to_b] == [Kind.POST, Kind.EDIT, Kind.POST]
    _post, edit, reply = to_b
    assert edit.copy is not None and edit.copy.native_id.startswith("C2-")
    assert reply.parent_copy is not None and reply.parent_copy.native_id == edit.copy.native_id
