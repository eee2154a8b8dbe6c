"""One contract, two stores: the in-memory store (what core tests run on) and the SQL store on
SQLite, PostgreSQL and MariaDB answer every port call of ``app/core/ports.py`` alike.

Each test runs four times (``memory``, ``sqlite``, ``postgresql``, ``mysql``) and observes the
stores only through the ports, so a change to either store that the other does not follow
fails here."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.endpoints import Endpoint
from app.core.events import Author, Kind
from app.core.payloads import EditPayload, PostPayload
from app.core.ports import (
    Copy,
    Delivered,
    DeliveryTask,
    Lease,
    NewDelivery,
    PostRef,
    SyncTargets,
    Taken,
)
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.memory import MemoryStore
from app.store.relay_store import SqlStore
from app.store.syncs import SyncAdmin
from tests import builders
from tests.conftest import TEST_KEY, local_settings
from tests.databases import BACKENDS, MigratedTemplates

A = Endpoint.slack("T1", "C1")
B = Endpoint.slack("T2", "C2")
C = Endpoint.slack("T3", "C3")
D = Endpoint.slack("T4", "C4")
LONELY = Endpoint.slack("T5", "C5")


@dataclass
class Contract:
    """A store under test, and how to set up syncs in it (SyncAdmin's job for SQL)."""

    store: MemoryStore | SqlStore
    make_sync: Callable[..., object]
    pause_sync: Callable[[str], object]


@pytest.fixture(params=("memory", *BACKENDS))
def contract(
    request: pytest.FixtureRequest, tmp_path: Path, templates: MigratedTemplates
) -> Iterator[Contract]:
    if request.param == "memory":
        memory = MemoryStore()
        yield Contract(
            memory,
            lambda name, *eps: memory.add_sync(name, *eps),
            lambda name: memory.set_sync_status(name, "paused"),
        )
        return
    with templates.clone(request.param, tmp_path) as url:
        engine = make_engine(local_settings(), url=url)
        sessions = session_factory(engine)
        cipher = TokenCipher(TEST_KEY)
        for team in ("T1", "T2", "T3", "T4", "T5"):
            builders.workspace(sessions, cipher, team)
        admin = SyncAdmin(sessions)

        def make_sync(name: str, *endpoints: Endpoint) -> None:
            builders.sync(sessions, name, *endpoints)

        try:
            yield Contract(
                SqlStore(sessions), make_sync, lambda name: admin.set_status(name, "paused")
            )
        finally:
            engine.dispose()


def _sync_id(c: Contract, source: Endpoint) -> int:
    with c.store.transaction() as tx:
        (found,) = tx.sync_targets(source)
    return found.sync_id


def _new(
    sync_id: int, target: Endpoint, post_id: str | None = None, thread_post_id: str | None = None
) -> NewDelivery:
    payload = PostPayload(
        source=A,
        source_native_id="1.1",
        author=Author("Ada", "T1/U1", None, "Acme"),
        body=builders.body("hello *there*"),
        thread_post_id=thread_post_id,
    )
    return NewDelivery(uuid.uuid4().hex, sync_id, post_id, target, Kind.POST, payload)


def _enqueue(c: Contract, *deliveries: NewDelivery, lease: Lease | None = None) -> set[str]:
    with c.store.transaction() as tx:
        return tx.enqueue(list(deliveries), lease=lease)


def _claim(c: Contract, **kw: object) -> list[DeliveryTask]:
    args: dict[str, object] = {"worker": "w", "limit": 50, "lease_seconds": 60.0} | kw
    return c.store.claim_due(**args)  # type: ignore[arg-type]


def test_an_event_is_claimed_once_and_a_failed_transaction_leaves_nothing(c: Contract) -> None:
    with c.store.transaction() as tx:
        assert tx.claim("slack:Ev1", ttl_seconds=60)
        assert not tx.claim("slack:Ev1", ttl_seconds=60)
        # Keys are cut to their column's width, so two keys alike in it are one claim.
        assert tx.claim("k" * 300, ttl_seconds=60)
        assert not tx.claim("k" * 255 + "different tail", ttl_seconds=60)
    with pytest.raises(RuntimeError), c.store.transaction() as tx:
        assert tx.claim("slack:Ev2", ttl_seconds=60)
        raise RuntimeError("the relay failed after claiming")
    with c.store.transaction() as tx:
        assert tx.claim("slack:Ev2", ttl_seconds=60)  # rolled back: still unclaimed


@pytest.fixture
def c(contract: Contract) -> Contract:
    contract.make_sync("general", A, B, C)
    contract.make_sync("alone", LONELY)
    return contract


def test_targets_are_the_other_active_endpoints_of_active_syncs(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    with c.store.transaction() as tx:
        assert tx.sync_targets(A) == [SyncTargets(sync_id, (B, C), False)]
        assert tx.sync_targets(D) == []
        assert tx.sync_targets(LONELY) == []  # nothing to copy to: no sync to report
        assert tx.endpoints_of_sync(sync_id) == [A, B, C]
        assert tx.set_endpoint_status(B, "paused") == 1
        assert tx.set_endpoint_status(D, "paused") == 0
    with c.store.transaction() as tx:
        assert tx.sync_targets(A) == [SyncTargets(sync_id, (C,), False)]
        assert tx.sync_targets(B) == []  # a paused endpoint is no source either
        assert tx.endpoints_of_sync(sync_id) == [A, C]
    c.pause_sync("general")
    with c.store.transaction() as tx:
        assert tx.sync_targets(A) == []


def test_the_message_map_finds_posts_through_any_copy(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    with c.store.transaction() as tx:
        assert tx.claim_post(
            "ev-1", ttl_seconds=60, source=A, native_id="1.1", thread_native_id=None
        ) == tx.post_targets(A, "1.1", None)
        tx.create_post(
            post_id="p1",
            sync_id=sync_id,
            source=A,
            native_id="1.1",
            thread_native_id=None,
            thread_post_id=None,
            author_name="x" * 300,
        )
        assert (
            tx.claim_post("ev-1", ttl_seconds=60, source=A, native_id="1.1", thread_native_id=None)
            is None
        )
    ref = PostRef("p1", sync_id, A, "1.1")
    with c.store.transaction() as tx:
        assert tx.find_post(A, "1.1") == ref
        assert tx.find_post(B, "1.1") is None
        assert tx.is_copy(A, "1.1") and not tx.is_copy(A, "1.2")
        reply = tx.post_targets(A, "1.2", "1.1")
        assert not reply.echo and reply.thread_parent == ref
        assert reply.syncs == (SyncTargets(sync_id, (B, C), False),)
        assert tx.post_targets(A, "1.1", None).echo  # our own copy coming back
        tx.mark_deleted("p1")
    with c.store.transaction() as tx:
        assert tx.find_post(A, "1.1") == PostRef("p1", sync_id, A, "1.1", deleted=True)
    # The same source message cannot become a second post: the transaction fails whole.
    with pytest.raises(Exception), c.store.transaction() as tx:  # noqa: B017
        assert tx.claim("ev-dup", ttl_seconds=60)
        tx.create_post(
            post_id="p2",
            sync_id=sync_id,
            source=A,
            native_id="1.1",
            thread_native_id=None,
            thread_post_id=None,
            author_name="",
        )
    with c.store.transaction() as tx:
        assert tx.claim("ev-dup", ttl_seconds=60)


def test_reactions_are_counted_once_per_actor(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    with c.store.transaction() as tx:
        tx.create_post(
            post_id="p1",
            sync_id=sync_id,
            source=A,
            native_id="1.1",
            thread_native_id=None,
            thread_post_id=None,
            author_name="ada",
        )
        tx.lock_post("p1")
        assert tx.add_reaction(post_id="p1", emoji="tada", actor="T1/U1", source=A)
        assert not tx.add_reaction(post_id="p1", emoji="tada", actor="T1/U1", source=A)
        assert tx.add_reaction(post_id="p1", emoji="tada", actor="T2/U2", source=B)
        assert tx.add_reaction(post_id="p1", emoji="eyes", actor="T2/U2", source=B)
    with c.store.transaction() as tx:
        assert sorted(map(str, tx.reaction_sources(post_id="p1", emoji="tada"))) == [
            str(A),
            str(B),
        ]
        assert tx.remove_reaction(post_id="p1", emoji="tada", actor="T1/U1")
        assert not tx.remove_reaction(post_id="p1", emoji="tada", actor="T1/U1")
        assert tx.reaction_sources(post_id="p1", emoji="tada") == [B]


def test_claims_go_in_order_per_target_with_leases(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    b1, c1, b2, c2 = (_new(sync_id, t) for t in (B, C, B, C))
    assert _enqueue(c, b1, c1, b2, c2) == set()  # no lease asked: none leased
    assert c.store.next_due_in() == 0.0
    # Lanes: the next rows of at most that many targets; only: just those rows.
    assert [t.uid for t in _claim(c, lanes=1, lease_seconds=-1)] == [b1.uid, b2.uid]
    assert [t.uid for t in _claim(c, only=[c2.uid], lease_seconds=-1)] == []  # c1 is first
    assert [t.uid for t in _claim(c, targets=[str(C)], limit=1)] == [c1.uid]
    # c1 is leased: c2 waits behind it; b1's lease expired: taken again, outcome unknown.
    again = _claim(c)
    assert [t.uid for t in again] == [b1.uid, b2.uid]
    assert all(t.outcome_unknown for t in again)
    assert _claim(c) == []
    c.store.release([c1.uid])
    (c_again,) = _claim(c, targets=[str(C)], limit=1)
    assert c_again.uid == c1.uid and not c_again.outcome_unknown  # released, not expired


def test_retries_wait_and_hold_back_their_target(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    b1, b2, c1 = (_new(sync_id, t) for t in (B, B, C))
    _enqueue(c, b1, b2, c1)
    first = {t.uid: t for t in _claim(c)}
    c.store.retry_later(first[b1.uid], error="429", delay_seconds=30, outcome_unknown=True)
    c.store.release([b2.uid])
    c.store.mark_dead(first[c1.uid], error="channel_not_found")
    # b2's own time has come, but it waits behind b1: nothing is due before b1's retry (a
    # worker that looked now would find nothing, and look again and again while b1 backs off).
    due = c.store.next_due_in()
    assert due is not None and 25 < due <= 30
    assert _claim(c) == []  # b1 backs off, and b2 may not overtake it
    pending = {p.uid: p for p in c.store.pending([b1.uid, b2.uid, c1.uid])}
    assert set(pending) == {b1.uid, b2.uid}  # the dead row is not pending
    assert pending[b1.uid].attempts == 1 and 25 < pending[b1.uid].due_in <= 30
    assert 25 < pending[b2.uid].due_in <= 30  # behind its target's head
    assert c.store.pending([]) == []


def test_a_held_target_with_a_backlog_is_not_due_before_its_head(c: Contract) -> None:
    """A target held for hours keeps its backlog pending behind the held row: the worker must
    sleep until the head's next try, not poll the outbox every moment meanwhile."""
    sync_id = _sync_id(c, A)
    head, *backlog = (_new(sync_id, B) for _ in range(4))
    other = _new(sync_id, C)
    _enqueue(c, head, *backlog, other)
    (first,) = _claim(c, targets=[str(B)], limit=1)
    c.store.retry_later(first, error="503", delay_seconds=600, outcome_unknown=False)
    assert c.store.next_due_in() == 0.0  # C's row is due
    (c1,) = _claim(c, targets=[str(C)])
    c.store.complete(c1, Delivered("C-1"))
    due = c.store.next_due_in()
    assert due is not None and 590 < due <= 600


def test_completions_record_copies_and_settle_rows(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    with c.store.transaction() as tx:
        tx.create_post(
            post_id="p1",
            sync_id=sync_id,
            source=A,
            native_id="1.1",
            thread_native_id=None,
            thread_post_id=None,
            author_name="ada",
        )
    to_b, to_c = _new(sync_id, B, "p1"), _new(sync_id, C, "p1")
    _enqueue(c, to_b, to_c)
    tasks = {t.uid: t for t in _claim(c)}
    assert tasks[to_b.uid].copy is None and tasks[to_b.uid].kind is Kind.POST
    c.store.complete_many(
        [
            (tasks[to_b.uid], Delivered("B-1", None, ("file:F1",))),
            (tasks[to_c.uid], Delivered("C-1", "C-0")),
        ]
    )
    c.store.complete(tasks[to_b.uid], Delivered("B-1"))  # a repeated completion changes nothing
    assert c.store.pending([to_b.uid, to_c.uid]) == []
    assert c.store.next_due_in() is None
    with c.store.transaction() as tx:
        found = sorted(tx.copies(["p1"], [B, C]), key=lambda pc: str(pc[1].endpoint))
        assert [(p, cp.endpoint, cp.native_id) for p, cp in found] == [
            ("p1", B, "B-1"),
            ("p1", C, "C-1"),
        ]
        assert found[0][1].parts == ("file:F1",) and found[1][1].thread_native_id == "C-0"
        assert tx.find_post(B, "B-1") == PostRef("p1", sync_id, A, "1.1")
        assert tx.is_copy(C, "C-1")
    # An edit claimed later finds the copy at its target, and a reply its parent's copy; the
    # payloads come back as they were written.
    edit = NewDelivery(
        uuid.uuid4().hex, sync_id, "p1", B, Kind.EDIT, EditPayload(A, builders.body("new"))
    )
    reply = _new(sync_id, C, None, thread_post_id="p1")
    _enqueue(c, edit, reply)
    tasks = {t.uid: t for t in _claim(c)}
    assert tasks[edit.uid].copy is not None and tasks[edit.uid].copy.native_id == "B-1"
    assert tasks[edit.uid].payload == edit.payload
    parent = tasks[reply.uid].parent_copy
    assert parent is not None and parent.native_id == "C-1"
    assert tasks[reply.uid].payload == reply.payload


def test_rows_written_leased_skip_the_claim_unless_their_target_is_busy(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    waiting = _new(sync_id, C)
    _enqueue(c, waiting)  # C has a delivery waiting
    b1, c1 = _new(sync_id, B), _new(sync_id, C)
    leased = _enqueue(c, b1, c1, lease=Lease(owner="inline", seconds=60))
    assert leased == {b1.uid}  # C's new row queues behind the waiting one
    assert [t.uid for t in _claim(c)] == [waiting.uid, c1.uid]  # b1 is the inline drain's
    due = c.store.next_due_in()
    assert due is not None and 55 < due <= 60  # nothing due before the leases end


def _take(c: Contract, target: Endpoint, *rows: NewDelivery, **kw: object) -> Taken | None:
    return c.store.take_fresh(
        str(target),
        [d.uid for d in rows],
        owner=str(kw.pop("owner", "lane:1")),
        lease_seconds=60.0,
        **kw,  # type: ignore[arg-type]
    )


def test_fresh_rows_are_taken_all_or_none_and_never_ahead_of_their_target(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    c1, c2, c3 = (_new(sync_id, C) for _ in range(3))
    _enqueue(c, c1)
    _enqueue(c, c2)
    _enqueue(c, c3)
    assert _take(c, C, c3, c2) is None  # c1 waits ahead of them and was not handed over
    # Handed over out of order (the relay's commits reported out of theirs): taken in order;
    # the refused take above left none of them leased.
    taken = _take(c, C, c3, c2, c1)
    assert taken is not None and taken.order == (c1.uid, c2.uid, c3.uid)
    assert _claim(c, targets=[str(C)]) == []  # all leased to the lane
    assert _take(c, C, c1, owner="lane:2") is None  # taken once


def test_a_fresh_row_another_worker_leased_is_not_taken_nor_the_rows_after_it(
    c: Contract,
) -> None:
    sync_id = _sync_id(c, A)
    b1, b2 = _new(sync_id, B), _new(sync_id, B)
    _enqueue(c, b1, b2)
    assert [t.uid for t in _claim(c, targets=[str(B)], limit=1)] == [b1.uid]
    assert _take(c, B, b1, b2) is None
    # b2 alone may not overtake b1 either, and was not left leased by the attempt.
    assert _take(c, B, b2) is None
    c.store.release([b1.uid])
    assert [t.uid for t in _claim(c, targets=[str(B)])] == [b1.uid, b2.uid]


def test_a_fresh_row_tried_once_is_left_to_claims(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    b1 = _new(sync_id, B)
    _enqueue(c, b1)
    (task,) = _claim(c)
    c.store.retry_later(task, error="429", delay_seconds=0, outcome_unknown=True)
    assert _take(c, B, b1) is None  # its task would say first attempt, outcome known


def test_taking_fresh_rows_looks_up_the_copies_asked_for(c: Contract) -> None:
    sync_id = _sync_id(c, A)
    with c.store.transaction() as tx:
        tx.create_post(
            post_id="p1",
            sync_id=sync_id,
            source=A,
            native_id="1.1",
            thread_native_id=None,
            thread_post_id=None,
            author_name="ada",
        )
    post = _new(sync_id, B, "p1")
    _enqueue(c, post)
    (task,) = _claim(c)
    c.store.complete(task, Delivered("B-1", "B-0"))
    edit = NewDelivery(
        uuid.uuid4().hex, sync_id, "p1", B, Kind.EDIT, EditPayload(A, builders.body("new"))
    )
    _enqueue(c, edit)
    taken = _take(c, B, edit, copies_of=["p1", "p-unknown"])
    assert taken is not None and taken.order == (edit.uid,)
    assert taken.copies == {"p1": Copy(B, "B-1", "B-0")}
