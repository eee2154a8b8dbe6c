"""The relay: an inbound event becomes durable outbox rows, atomically with its dedupe claim.

claim -> resolve syncs and targets -> one outbox row per target, all in one transaction. Only
after that commits does the adapter acknowledge the sender, so a crash anywhere either loses the
claim too (and the sender's retry is processed) or leaves complete outbox rows behind.
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass

from app.core.endpoints import Endpoint
from app.core.events import (
    ChannelChange,
    ChannelEvent,
    DeletePost,
    EditPost,
    InboundEvent,
    Kind,
    NewPost,
    ReactionChange,
)
from app.core.payloads import (
    DeletePayload,
    EditPayload,
    PostPayload,
    ReactionPayload,
    thread_post_id,
)
from app.core.ports import (
    Copy,
    DeliveryTask,
    Lease,
    NewDelivery,
    PostTargets,
    RelayStore,
    RelayTransaction,
)

log = logging.getLogger("syncbot.core.relay")

# Slack retries for up to ~1 hour and Matrix transactions are replayed after restarts; a day
# covers both with margin.
CLAIM_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True, slots=True)
class RelayResult:
    """What ingesting one event produced."""

    duplicate: bool
    deliveries: tuple[str, ...] = ()
    # With a lease: the deliveries as tasks, leased to its owner and ready to deliver.
    tasks: tuple[DeliveryTask, ...] = ()
    # The other deliveries as tasks, not leased and their copies not looked up: what a lane
    # already working on their target takes over (see ``Outbox.hand_over``).
    fresh: tuple[DeliveryTask, ...] = ()


def new_id() -> str:
    return uuid.uuid4().hex


def post_payload(
    event: NewPost, *, thread_post_id: str | None, allow_broadcast: bool
) -> PostPayload:
    return PostPayload(
        source=event.source,
        source_native_id=event.native_id,
        author=event.author,
        body=event.body,
        files=event.files,
        thread_post_id=thread_post_id,
        broadcast=event.broadcast,
        parent_link=event.parent_link,
        allow_broadcast=allow_broadcast,
    )


class Relay:
    """Turns inbound events into outbox rows."""

    def __init__(self, store: RelayStore) -> None:
        self._store = store

    @property
    def write_executor(self) -> Executor | None:
        """Where :meth:`ingest` should run (its store's writes: see :mod:`app.core.offload`)."""
        return self._store.write_executor

    def ingest(self, event: InboundEvent, *, lease: Lease | None = None) -> RelayResult:
        """Claim ``event`` and write its deliveries in one transaction.

        With ``lease``, the rows are written already leased to ``lease.owner`` and returned as
        tasks, so whoever delivers them inline needs no claim pass (except rows to a target
        with an earlier delivery waiting: they are left to a claim, which keeps the order).
        Returns a duplicate result (and writes nothing) when the event was already claimed.
        """
        tasks: tuple[DeliveryTask, ...] = ()
        fresh: tuple[DeliveryTask, ...] = ()
        with self._store.transaction() as tx:
            if isinstance(event, NewPost):
                # The claim and the post's one read go together (a single statement where the
                # database can return rows from an insert).
                found = tx.claim_post(
                    event.dedupe_key,
                    ttl_seconds=CLAIM_TTL_SECONDS,
                    source=event.source,
                    native_id=event.native_id,
                    thread_native_id=event.thread_native_id,
                )
                if found is None:
                    return RelayResult(duplicate=True)
                deliveries = self._post(tx, event, found)
            elif not tx.claim(event.dedupe_key, ttl_seconds=CLAIM_TTL_SECONDS):
                return RelayResult(duplicate=True)
            else:
                deliveries = self._plan(tx, event)
            if deliveries:
                leased = tx.enqueue(deliveries, lease=lease)
                if leased:
                    tasks = _tasks(tx, [d for d in deliveries if d.uid in leased])
                fresh = tuple(_first_attempt(d) for d in deliveries if d.uid not in leased)
        if deliveries:
            log.info(
                "relayed",
                extra={
                    "event": type(event).__name__,
                    "source": str(event.source),
                    "targets": len(deliveries),
                },
            )
        return RelayResult(
            duplicate=False, deliveries=tuple(d.uid for d in deliveries), tasks=tasks, fresh=fresh
        )

    def _plan(self, tx: RelayTransaction, event: InboundEvent) -> list[NewDelivery]:
        match event:
            case NewPost():
                return self._post(
                    tx,
                    event,
                    tx.post_targets(event.source, event.native_id, event.thread_native_id),
                )
            case EditPost():
                return self._edit_or_delete(tx, event, Kind.EDIT)
            case DeletePost():
                return self._edit_or_delete(tx, event, Kind.DELETE)
            case ReactionChange():
                return self._reaction(tx, event)
            case ChannelEvent():
                self._channel(tx, event)
                return []

    def _post(self, tx: RelayTransaction, event: NewPost, found: PostTargets) -> list[NewDelivery]:
        # A message the map already knows at this endpoint is one of our own copies coming
        # back (an echo the adapter could not recognise by itself).
        if found.echo:
            return []
        out: list[NewDelivery] = []
        parent = found.thread_parent
        for sync in found.syncs:
            thread_post_id = None
            if parent is not None and parent.sync_id == sync.sync_id:
                thread_post_id = parent.post_id
            post_id = new_id()
            tx.create_post(
                post_id=post_id,
                sync_id=sync.sync_id,
                source=event.source,
                native_id=event.native_id,
                thread_native_id=event.thread_native_id,
                thread_post_id=thread_post_id,
                author_name=event.author.name,
            )
            payload = post_payload(
                event, thread_post_id=thread_post_id, allow_broadcast=sync.allow_broadcast
            )
            out.extend(
                NewDelivery(
                    uid=new_id(),
                    sync_id=sync.sync_id,
                    post_id=post_id,
                    target=target,
                    kind=Kind.POST,
                    payload=payload,
                    source_time=event.occurred_at,
                )
                for target in sync.targets
                # A Slack Connect channel in the sync twice is still one place.
                if not target.same_conversation(event.source)
            )
        return out

    def _edit_or_delete(
        self, tx: RelayTransaction, event: EditPost | DeletePost, kind: Kind
    ) -> list[NewDelivery]:
        post = tx.find_post(event.source, event.native_id)
        if post is None or post.deleted:
            return []
        payload: EditPayload | DeletePayload
        if isinstance(event, EditPost):
            payload = EditPayload(source=event.source, body=event.body)
        else:
            payload = DeletePayload(source=event.source)
            tx.mark_deleted(post.post_id)
        return [
            NewDelivery(
                uid=new_id(),
                sync_id=post.sync_id,
                post_id=post.post_id,
                target=target,
                kind=kind,
                payload=payload,
                source_time=event.occurred_at,
            )
            for target in tx.endpoints_of_sync(post.sync_id)
            if not target.same_conversation(event.source)
        ]

    def _reaction(self, tx: RelayTransaction, event: ReactionChange) -> list[NewDelivery]:
        post = tx.find_post(event.source, event.native_id)
        if post is None or post.deleted:
            return []
        # Two reactions to one post must not both count before either is recorded.
        tx.lock_post(post.post_id)
        before = tx.reaction_sources(post_id=post.post_id, emoji=event.emoji)
        if event.added:
            changed = tx.add_reaction(
                post_id=post.post_id, emoji=event.emoji, actor=event.actor, source=event.source
            )
        else:
            changed = tx.remove_reaction(
                post_id=post.post_id, emoji=event.emoji, actor=event.actor
            )
        if not changed:
            return []
        after = tx.reaction_sources(post_id=post.post_id, emoji=event.emoji)
        out = []
        for target in tx.endpoints_of_sync(post.sync_id):
            if target.same_conversation(event.source):
                continue
            # Each target shows one native reaction per emoji standing for every reactor
            # elsewhere: add it with the first such reactor, remove it with the last.
            was = _remote_count(before, target)
            now = _remote_count(after, target)
            if event.added and was == 0 and now > 0:
                kind = Kind.REACT
            elif not event.added and was > 0 and now == 0:
                kind = Kind.UNREACT
            else:
                continue
            out.append(
                NewDelivery(
                    uid=new_id(),
                    sync_id=post.sync_id,
                    post_id=post.post_id,
                    target=target,
                    kind=kind,
                    payload=ReactionPayload(
                        source=event.source,
                        emoji=event.emoji,
                        actor=event.actor,
                        actor_name=event.actor_name,
                        source_native_id=event.native_id,
                    ),
                    source_time=event.occurred_at,
                )
            )
        return out

    def _channel(self, tx: RelayTransaction, event: ChannelEvent) -> None:
        if event.change is ChannelChange.ARCHIVE:
            tx.set_endpoint_status(event.source, "paused")
        elif event.change is ChannelChange.UNARCHIVE:
            tx.set_endpoint_status(event.source, "active")
        log.info(
            "channel changed",
            extra={
                "source": str(event.source),
                "change": str(event.change),
                "channel_name": event.name,
            },
        )


def _tasks(tx: RelayTransaction, deliveries: list[NewDelivery]) -> tuple[DeliveryTask, ...]:
    """The fresh rows as the tasks a claim would have returned (their first attempt)."""
    wanted: set[str] = set()
    for d in deliveries:
        parent = thread_post_id(d.payload)
        if d.kind is not Kind.POST and d.post_id:
            wanted.add(d.post_id)
        elif parent:
            wanted.add(parent)
    copies: dict[tuple[str, Endpoint], Copy] = {}
    if wanted:
        targets = list({d.target: None for d in deliveries})
        copies = {(post_id, c.endpoint): c for post_id, c in tx.copies(sorted(wanted), targets)}
    out = []
    for d in deliveries:
        parent = thread_post_id(d.payload)
        out.append(
            _first_attempt(
                d,
                copy=copies.get((d.post_id, d.target))
                if d.post_id and d.kind is not Kind.POST
                else None,
                parent_copy=copies.get((parent, d.target)) if parent else None,
            )
        )
    return tuple(out)


def _first_attempt(
    d: NewDelivery, *, copy: Copy | None = None, parent_copy: Copy | None = None
) -> DeliveryTask:
    """The row as its first attempt's task. Without copies for a fresh row: whoever takes it
    resolves them (by then the copies made before it are recorded)."""
    return DeliveryTask(
        uid=d.uid,
        kind=d.kind,
        target=d.target,
        post_id=d.post_id,
        payload=d.payload,
        attempts=0,
        outcome_unknown=False,
        copy=copy,
        parent_copy=parent_copy,
        source_time=d.source_time,
    )


def _remote_count(sources: list[Endpoint], target: Endpoint) -> int:
    return sum(1 for s in sources if s != target)
