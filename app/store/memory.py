"""In-memory implementation of the core's relay and outbox ports, for tests of the core.

It keeps the SQL store's contract (``app/store/relay_store.py``), row for row: a claim is
recorded once, a source belongs to the active syncs it is active in, copies are unique per
``(endpoint, native id)``, reactions per ``(post, emoji, actor)``, deliveries are claimed with
leases in id order per target (a target's rows never overtake each other), an expired lease
makes the outcome unknown, and a transaction that raises leaves nothing behind. The contract
tests in ``tests/store/test_store_contract.py`` run the same assertions against this store and
the SQL store on every backend, so the two cannot drift apart.

Nothing here is persistent or shared between processes: it stands in for one database, as
SQLite does (one writer at a time; a lock serializes transactions and outbox calls).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.core.endpoints import Endpoint
from app.core.events import Kind
from app.core.payloads import Payload, PayloadError, payload_from_json
from app.core.ports import (
    Copy,
    Delivered,
    DeliveryTask,
    Lease,
    NewDelivery,
    PendingDelivery,
    PostRef,
    PostTargets,
    SyncTargets,
    Taken,
)
from app.store.delivery_tasks import delivery_task

__all__ = ["MemoryRelayTransaction", "MemoryStore"]

# Column widths the SQL store truncates to (app/store/models.py).
_KEY = 255
_AUTHOR = 255
_EMOJI = 128
_ACTOR = 319
# How many pending rows one claim pass looks at, as in the SQL store.
_SCAN = 2000

Clock = Callable[[], datetime]


class ConstraintViolation(ValueError):
    """A row broke a unique key or a foreign key (the SQL store raises IntegrityError)."""


@dataclass(frozen=True, slots=True)
class SyncRow:
    id: int
    name: str
    status: str = "active"
    allow_broadcast: bool = False


@dataclass(frozen=True, slots=True)
class EndpointRow:
    id: int
    sync_id: int
    endpoint: str
    status: str = "active"


@dataclass(frozen=True, slots=True)
class PostRow:
    id: str
    sync_id: int
    source_endpoint: str
    source_native_id: str
    thread_post_id: str | None
    author_name: str
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class CopyRow:
    post_id: str
    endpoint: str
    native_id: str
    thread_native_id: str | None
    is_source: bool
    parts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReactionRow:
    post_id: str
    emoji: str
    actor: str
    source_endpoint: str


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    uid: str
    sync_id: int | None
    post_id: str | None
    target_endpoint: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    next_attempt_at: datetime
    status: str = "pending"
    attempts: int = 0
    last_error: str | None = None
    outcome_unknown: bool = False
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    source_time: datetime | None = None
    delivered_at: datetime | None = None


@dataclass(slots=True)
class _Tables:
    """Every table; rows are immutable, so copying the dicts is a snapshot."""

    claims: dict[str, datetime] = field(default_factory=dict)
    syncs: dict[int, SyncRow] = field(default_factory=dict)
    endpoints: dict[int, EndpointRow] = field(default_factory=dict)
    posts: dict[str, PostRow] = field(default_factory=dict)
    copies: dict[tuple[str, str], CopyRow] = field(default_factory=dict)
    reactions: dict[tuple[str, str, str], ReactionRow] = field(default_factory=dict)
    deliveries: dict[int, DeliveryRow] = field(default_factory=dict)

    def snapshot(self) -> _Tables:
        return _Tables(
            dict(self.claims),
            dict(self.syncs),
            dict(self.endpoints),
            dict(self.posts),
            dict(self.copies),
            dict(self.reactions),
            dict(self.deliveries),
        )


class MemoryRelayTransaction:
    """The relay's view of one in-memory transaction (see :class:`RelayTransaction`)."""

    def __init__(self, tables: _Tables, ids: Iterator[int], now: datetime) -> None:
        self._t = tables
        self._ids = ids
        self._now = now

    def claim(self, key: str, *, ttl_seconds: int) -> bool:
        key = key[:_KEY]
        if key in self._t.claims:
            return False
        self._t.claims[key] = self._now + timedelta(seconds=ttl_seconds)
        return True

    def sync_targets(self, source: Endpoint) -> list[SyncTargets]:
        me = str(source)
        found: dict[int, tuple[bool, list[Endpoint]]] = {}
        mine = [
            row
            for row in self._t.endpoints.values()
            if row.endpoint == me
            and row.status == "active"
            and self._t.syncs[row.sync_id].status == "active"
        ]
        for row in sorted(mine, key=lambda r: r.id):
            sync = self._t.syncs[row.sync_id]
            others = [
                Endpoint.parse(o.endpoint)
                for o in sorted(self._t.endpoints.values(), key=lambda r: r.id)
                if o.sync_id == row.sync_id and o.status == "active" and o.id != row.id
            ]
            # As the SQL store's join: a sync without another active endpoint is not listed.
            if others:
                found.setdefault(row.sync_id, (sync.allow_broadcast, others))
        return [
            SyncTargets(sync_id=k, targets=tuple(v[1]), allow_broadcast=v[0])
            for k, v in found.items()
        ]

    def find_post(self, endpoint: Endpoint, native_id: str) -> PostRef | None:
        copy = self._t.copies.get((str(endpoint), native_id))
        if copy is None:
            return None
        post = self._t.posts[copy.post_id]
        return PostRef(
            post_id=post.id,
            sync_id=post.sync_id,
            source=Endpoint.parse(post.source_endpoint),
            native_id=post.source_native_id,
            deleted=post.deleted,
        )

    def is_copy(self, endpoint: Endpoint, native_id: str) -> bool:
        return (str(endpoint), native_id) in self._t.copies

    def post_targets(
        self, source: Endpoint, native_id: str, thread_native_id: str | None
    ) -> PostTargets:
        parent = None
        if thread_native_id:
            found = self.find_post(source, thread_native_id)
            # The SQL store's one read does not fetch the parent's deleted flag.
            parent = replace(found, deleted=False) if found is not None else None
        return PostTargets(
            echo=self.is_copy(source, native_id),
            syncs=tuple(self.sync_targets(source)),
            thread_parent=parent,
        )

    def claim_post(
        self,
        key: str,
        *,
        ttl_seconds: int,
        source: Endpoint,
        native_id: str,
        thread_native_id: str | None,
    ) -> PostTargets | None:
        if not self.claim(key, ttl_seconds=ttl_seconds):
            return None
        return self.post_targets(source, native_id, thread_native_id)

    def copies(
        self, post_ids: Sequence[str], targets: Sequence[Endpoint]
    ) -> list[tuple[str, Copy]]:
        posts, places = set(post_ids), {str(t) for t in targets}
        return [
            (c.post_id, _copy(c))
            for c in self._t.copies.values()
            if c.post_id in posts and c.endpoint in places
        ]

    def create_post(
        self,
        *,
        post_id: str,
        sync_id: int,
        source: Endpoint,
        native_id: str,
        thread_native_id: str | None,
        thread_post_id: str | None,
        author_name: str,
    ) -> None:
        key = (str(source), native_id)
        if post_id in self._t.posts or key in self._t.copies:
            raise ConstraintViolation(f"post {post_id} or copy {key} exists")
        self._t.posts[post_id] = PostRow(
            post_id, sync_id, str(source), native_id, thread_post_id, author_name[:_AUTHOR]
        )
        self._t.copies[key] = CopyRow(post_id, str(source), native_id, thread_native_id, True)

    def lock_post(self, post_id: str) -> None:
        """Nothing to do: transactions are serialized by the store's lock."""

    def mark_deleted(self, post_id: str) -> None:
        post = self._t.posts.get(post_id)
        if post is not None:
            self._t.posts[post_id] = replace(post, deleted=True)

    def endpoints_of_sync(self, sync_id: int) -> list[Endpoint]:
        rows = sorted(self._t.endpoints.values(), key=lambda r: r.id)
        return [
            Endpoint.parse(r.endpoint)
            for r in rows
            if r.sync_id == sync_id and r.status == "active"
        ]

    def add_reaction(self, *, post_id: str, emoji: str, actor: str, source: Endpoint) -> bool:
        if post_id not in self._t.posts:
            raise ConstraintViolation(f"no post {post_id}")  # the SQL store's foreign key
        key = (post_id, emoji[:_EMOJI], actor[:_ACTOR])
        if key in self._t.reactions:
            return False
        self._t.reactions[key] = ReactionRow(*key, str(source))
        return True

    def remove_reaction(self, *, post_id: str, emoji: str, actor: str) -> bool:
        return self._t.reactions.pop((post_id, emoji, actor), None) is not None

    def reaction_sources(self, *, post_id: str, emoji: str) -> list[Endpoint]:
        return [
            Endpoint.parse(r.source_endpoint)
            for r in self._t.reactions.values()
            if r.post_id == post_id and r.emoji == emoji
        ]

    def set_endpoint_status(self, endpoint: Endpoint, status: str) -> int:
        matched = [r for r in self._t.endpoints.values() if r.endpoint == str(endpoint)]
        for row in matched:
            self._t.endpoints[row.id] = replace(row, status=status)
        return len(matched)

    def enqueue(
        self, deliveries: Sequence[NewDelivery], *, lease: Lease | None = None
    ) -> set[str]:
        uids = {r.uid for r in self._t.deliveries.values()}
        leased: set[str] = set()
        until = self._now + timedelta(seconds=lease.seconds) if lease is not None else None
        if lease is not None:
            # A target with an earlier delivery waiting gets its new row through a claim,
            # which keeps the target's order.
            busy = {
                r.target_endpoint for r in self._t.deliveries.values() if r.status == "pending"
            }
            leased = {d.uid for d in deliveries if str(d.target) not in busy}
        for d in deliveries:
            if d.uid in uids:
                raise ConstraintViolation(f"delivery {d.uid} exists")
            uids.add(d.uid)
            row_id = next(self._ids)
            self._t.deliveries[row_id] = DeliveryRow(
                id=row_id,
                uid=d.uid,
                sync_id=d.sync_id,
                post_id=d.post_id,
                target_endpoint=str(d.target),
                kind=str(d.kind),
                # Stored in its JSON form and read back on claim, as the SQL store does.
                payload=d.payload.to_json(),
                created_at=self._now,
                next_attempt_at=self._now,
                source_time=d.source_time,
                lease_owner=lease.owner if lease is not None and d.uid in leased else None,
                lease_expires_at=until if d.uid in leased else None,
            )
        return leased


class MemoryStore:
    """The relay store and outbox store in memory (see the module docstring)."""

    # Its writes take a lock for microseconds: any thread will do.
    write_executor = None

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._tables = _Tables()
        self._delivery_ids = itertools.count(1)
        self._other_ids = itertools.count(1)

    # -- what the SQL store's admin modules do (SyncAdmin), for setting up a test ------------

    def add_sync(self, name: str, *endpoints: Endpoint, allow_broadcast: bool = False) -> int:
        """Create an active sync of ``endpoints``; returns its id."""
        with self._lock:
            t = self._tables
            taken = {r.endpoint for r in t.endpoints.values()}
            if any(s.name == name for s in t.syncs.values()):
                raise ConstraintViolation(f"sync {name!r} exists")
            if taken & {str(e) for e in endpoints}:
                raise ConstraintViolation("an endpoint belongs to one sync at most")
            sync_id = next(self._other_ids)
            t.syncs[sync_id] = SyncRow(sync_id, name, allow_broadcast=allow_broadcast)
            for endpoint in endpoints:
                row_id = next(self._other_ids)
                t.endpoints[row_id] = EndpointRow(row_id, sync_id, str(endpoint))
            return sync_id

    def set_sync_status(self, name: str, status: str) -> None:
        """Pause (``paused``) or resume (``active``) the sync ``name``."""
        with self._lock:
            for sync_id, sync in self._tables.syncs.items():
                if sync.name == name:
                    self._tables.syncs[sync_id] = replace(sync, status=status)
                    return
            raise KeyError(name)

    # -- reading, for tests ---------------------------------------------------------------

    def rows(self) -> list[DeliveryRow]:
        """Every outbox row, in id order."""
        with self._lock:
            return [self._tables.deliveries[k] for k in sorted(self._tables.deliveries)]

    def copies(self) -> list[CopyRow]:
        """Every copy in the message map."""
        with self._lock:
            return list(self._tables.copies.values())

    def claims(self) -> list[str]:
        """Every claimed event key."""
        with self._lock:
            return list(self._tables.claims)

    # -- relay ------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[MemoryRelayTransaction]:
        with self._lock:
            work = self._tables.snapshot()
            yield MemoryRelayTransaction(work, self._delivery_ids, self._clock())
            # Only reached without an exception: the work becomes the state (a commit).
            self._tables = work

    # -- outbox -------------------------------------------------------------------------------

    def claim_due(
        self,
        *,
        worker: str,
        limit: int,
        lease_seconds: float,
        only: Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
        lanes: int | None = None,
        exclude: Sequence[str] = (),
    ) -> list[DeliveryTask]:
        now = self._clock()
        wanted = set(only) if only is not None else None
        token = f"{worker[:40]}:{uuid.uuid4().hex[:12]}"
        with self._lock:
            t = self._tables
            pending = [r for r in self.rows() if r.status == "pending"]
            if targets is not None:
                only_these = set(targets)
                pending = [r for r in pending if r.target_endpoint in only_these]
            if exclude:
                left_out = set(exclude)
                pending = [r for r in pending if r.target_endpoint not in left_out]
            chosen = _due_prefixes(pending[:_SCAN], now, wanted, limit, lanes)
            lease_until = now + timedelta(seconds=lease_seconds)
            claimed = []
            for row in chosen:
                leased = replace(
                    row,
                    # A row whose earlier lease expired was being delivered by a process
                    # that died: its outcome is unknown.
                    outcome_unknown=row.outcome_unknown or row.lease_owner is not None,
                    lease_owner=token,
                    lease_expires_at=lease_until,
                )
                t.deliveries[row.id] = leased
                claimed.append(leased)
            return self._tasks(claimed)

    def take_fresh(
        self,
        target: str,
        uids: Sequence[str],
        *,
        owner: str,
        lease_seconds: float,
        copies_of: Sequence[str] = (),
    ) -> Taken | None:
        wanted = set(uids)
        if not wanted:
            return None
        until = self._clock() + timedelta(seconds=lease_seconds)
        with self._lock:
            rows = self.rows()
            fed = [r for r in rows if r.uid in wanted]
            if len(fed) != len(wanted):
                return None
            last = max(r.id for r in fed)
            ahead = any(
                r.target_endpoint == target
                and r.status == "pending"
                and r.uid not in wanted
                and r.id < last
                for r in rows
            )
            fresh = all(
                r.target_endpoint == target
                and r.status == "pending"
                and r.lease_owner is None
                and r.attempts == 0
                and not r.outcome_unknown
                for r in fed
            )
            if ahead or not fresh:
                return None
            for r in fed:
                self._tables.deliveries[r.id] = replace(
                    r, lease_owner=owner, lease_expires_at=until
                )
            posts = set(copies_of)
            return Taken(
                order=tuple(r.uid for r in fed),
                copies={
                    c.post_id: _copy(c)
                    for c in self._tables.copies.values()
                    if c.post_id in posts and c.endpoint == target
                },
            )

    def _tasks(self, rows: Sequence[DeliveryRow]) -> list[DeliveryTask]:
        payloads: dict[str, Payload] = {}
        for r in rows:
            try:
                payloads[r.uid] = payload_from_json(Kind(r.kind), r.payload)
            except PayloadError as exc:
                # As the SQL store: no deliverer could read it, so it is dead and visible.
                self._tables.deliveries[r.id] = replace(
                    r,
                    status="dead",
                    last_error=f"unreadable payload: {exc}"[:500],
                    lease_owner=None,
                    lease_expires_at=None,
                )
        by_post = {(c.post_id, c.endpoint): _copy(c) for c in self._tables.copies.values()}
        return [delivery_task(r, payloads[r.uid], by_post) for r in rows if r.uid in payloads]

    def _update(self, uid: str, change: Callable[[DeliveryRow], DeliveryRow]) -> None:
        with self._lock:
            for row_id, row in self._tables.deliveries.items():
                if row.uid == uid:
                    self._tables.deliveries[row_id] = change(row)
                    return

    def complete(self, task: DeliveryTask, result: Delivered) -> None:
        self.complete_many([(task, result)])

    def complete_many(self, done: Sequence[tuple[DeliveryTask, Delivered]]) -> None:
        now = self._clock()
        with self._lock:
            # The copies first, as the SQL store records them (ignoring a duplicate: a retried
            # completion), then the rows.
            for task, result in done:
                if task.kind is Kind.POST and result.native_id and task.post_id:
                    self._tables.copies.setdefault(
                        (str(task.target), result.native_id),
                        CopyRow(
                            task.post_id,
                            str(task.target),
                            result.native_id,
                            result.thread_native_id,
                            False,
                            tuple(result.parts),
                        ),
                    )
            for task, _result in done:
                self._update(
                    task.uid,
                    lambda r: replace(
                        r,
                        status="delivered",
                        delivered_at=now,
                        attempts=r.attempts + 1,
                        lease_owner=None,
                        lease_expires_at=None,
                        last_error=None,
                    ),
                )

    def retry_later(
        self, task: DeliveryTask, *, error: str, delay_seconds: float, outcome_unknown: bool
    ) -> None:
        due = self._clock() + timedelta(seconds=delay_seconds)
        self._update(
            task.uid,
            lambda r: replace(
                r,
                attempts=r.attempts + 1,
                next_attempt_at=due,
                last_error=error,
                outcome_unknown=outcome_unknown,
                lease_owner=None,
                lease_expires_at=None,
            ),
        )

    def mark_dead(self, task: DeliveryTask, *, error: str) -> None:
        self._update(
            task.uid,
            lambda r: replace(
                r,
                status="dead",
                attempts=r.attempts + 1,
                last_error=error,
                lease_owner=None,
                lease_expires_at=None,
            ),
        )

    def release(self, uids: Sequence[str]) -> None:
        wanted = set(uids)
        with self._lock:
            for row_id, row in list(self._tables.deliveries.items()):
                if row.uid in wanted and row.status == "pending":
                    self._tables.deliveries[row_id] = replace(
                        row, lease_owner=None, lease_expires_at=None
                    )

    def next_due_in(self) -> float | None:
        # Only each target's first pending row can move: the ones behind it wait for it (a
        # held target's backlog is not due while its head backs off). A row leased to a drain
        # still at work is not due before its lease ends.
        now = self._clock()
        with self._lock:
            rows = [r for r in self.rows() if r.status == "pending"]
        heads: dict[str, datetime] = {}
        for r in rows:  # id order: the first pending row of each target is its head
            heads.setdefault(
                r.target_endpoint,
                r.lease_expires_at
                if r.lease_expires_at is not None and r.lease_expires_at > r.next_attempt_at
                else r.next_attempt_at,
            )
        if not heads:
            return None
        return max(0.0, (min(heads.values()) - now).total_seconds())

    def pending(self, uids: Sequence[str]) -> list[PendingDelivery]:
        if not uids:
            return []
        now = self._clock()
        wanted = set(uids)
        with self._lock:
            rows = [r for r in self.rows() if r.status == "pending"]
        heads: dict[str, datetime] = {}
        for r in rows:  # id order: the first pending row of each target is its head
            heads.setdefault(r.target_endpoint, _ready_at(r, now))
        return [
            PendingDelivery(
                uid=r.uid,
                target=Endpoint.parse(r.target_endpoint),
                attempts=r.attempts,
                due_in=max(
                    0.0,
                    (max(_ready_at(r, now), heads[r.target_endpoint]) - now).total_seconds(),
                ),
            )
            for r in rows
            if r.uid in wanted
        ]


def _copy(row: CopyRow) -> Copy:
    return Copy(Endpoint.parse(row.endpoint), row.native_id, row.thread_native_id, row.parts)


def _ready_at(row: DeliveryRow, now: datetime) -> datetime:
    """When a row can next be attempted: its retry time, or later while another holds it."""
    if row.lease_expires_at is not None and row.lease_expires_at > now:
        return max(row.next_attempt_at, row.lease_expires_at)
    return row.next_attempt_at


def _due_prefixes(
    pending: Sequence[DeliveryRow],
    now: datetime,
    wanted: set[str] | None,
    limit: int,
    lanes: int | None,
) -> list[DeliveryRow]:
    """Per target, the consecutive due, unleased rows from its oldest pending one, for at most
    ``lanes`` targets (the SQL store's rule: what keeps one target's deliveries in order)."""
    blocked: set[str] = set()
    chosen: list[DeliveryRow] = []
    per_target: dict[str, int] = {}
    for row in pending:
        target = row.target_endpoint
        if target in blocked:
            continue
        due = row.next_attempt_at <= now
        free = row.lease_expires_at is None or row.lease_expires_at < now
        if not (due and free) or (wanted is not None and row.uid not in wanted):
            blocked.add(target)
            continue
        if target not in per_target and lanes is not None and len(per_target) >= lanes:
            blocked.add(target)
            continue
        chosen.append(row)
        per_target[target] = per_target.get(target, 0) + 1
        if len(chosen) >= limit:
            break
    return chosen
