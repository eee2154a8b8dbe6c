"""What the core needs from the outside: a store and one deliverer per network.

The core depends only on these protocols; ``app/store`` implements the store, and each adapter
(``app/slack``, ``app/matrix``, ``app/federation``) implements a :class:`Deliverer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.core.endpoints import Endpoint, Network
from app.core.events import Kind
from app.core.payloads import Payload


@dataclass(frozen=True, slots=True)
class SyncTargets:
    """A sync the source endpoint belongs to, and the endpoints to copy to."""

    sync_id: int
    targets: tuple[Endpoint, ...]
    allow_broadcast: bool = False


@dataclass(frozen=True, slots=True)
class PostTargets:
    """Everything the relay needs to know about a new post, found in one read."""

    # ``(source, native_id)`` is already in the message map: one of our copies coming back.
    echo: bool
    syncs: tuple[SyncTargets, ...]
    # The post the thread parent ``(source, thread_native_id)`` belongs to, if it is mapped.
    thread_parent: PostRef | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """Rows written already leased to whoever will deliver them inline (no claim pass)."""

    owner: str
    seconds: float


@dataclass(frozen=True, slots=True)
class PostRef:
    """A canonical post found through the message map."""

    post_id: str
    sync_id: int
    source: Endpoint
    native_id: str
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Copy:
    """Where one copy of a post lives at one endpoint."""

    endpoint: Endpoint
    native_id: str
    thread_native_id: str | None = None
    # Its other native ids (file shares): a delete removes them too.
    parts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """An outbox row to write (the relay decides these inside the claim's transaction)."""

    uid: str
    sync_id: int
    post_id: str | None
    target: Endpoint
    kind: Kind
    payload: Payload
    source_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """A delivery not yet done: where it goes and how long until it can next be attempted."""

    uid: str
    target: Endpoint
    attempts: int
    due_in: float


@dataclass(frozen=True, slots=True)
class DeliveryTask:
    """A claimed delivery, with the message-map facts the deliverer needs resolved."""

    uid: str
    kind: Kind
    target: Endpoint
    post_id: str | None
    payload: Payload
    attempts: int
    # The previous attempt may have taken effect: check the target before repeating it.
    outcome_unknown: bool
    # The copy at the target this edit/delete/reaction applies to.
    copy: Copy | None = None
    # For a thread reply: the parent's copy at the target (None: parent never synced there).
    parent_copy: Copy | None = None
    source_time: datetime | None = None
    # When the row was written, and the error of its previous attempt (holds read both).
    queued_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Taken:
    """Fresh rows a lane took over: their uids in their target's order, and the copies at the
    target of the posts it asked for, by post id."""

    order: tuple[str, ...]
    copies: dict[str, Copy]


@dataclass(frozen=True, slots=True)
class Delivered:
    """What a deliverer reports back: the native id of a new copy (posts only), and the
    native ids of its other parts (file shares) that a delete must remove too."""

    native_id: str | None = None
    thread_native_id: str | None = None
    parts: tuple[str, ...] = ()
    # Where the copy was made when it is not the task's target: a message that waited for a
    # Matrix portal under a placeholder endpoint lands in the portal's room.
    endpoint: Endpoint | None = None


class RelayTransaction(Protocol):
    """Store operations the relay performs inside one transaction."""

    def claim(self, key: str, *, ttl_seconds: int) -> bool:
        """Record an inbound event key; False if it was already claimed (a retry/duplicate)."""

    def sync_targets(self, source: Endpoint) -> list[SyncTargets]:
        """Active syncs containing ``source`` as an active endpoint, with the other endpoints."""

    def find_post(self, endpoint: Endpoint, native_id: str) -> PostRef | None:
        """The post any copy ``(endpoint, native_id)`` belongs to."""

    def is_copy(self, endpoint: Endpoint, native_id: str) -> bool:
        """True when ``(endpoint, native_id)`` is a copy we made (an echo of our own post)."""

    def post_targets(
        self, source: Endpoint, native_id: str, thread_native_id: str | None
    ) -> PostTargets:
        """The echo check, :meth:`sync_targets` and the thread parent's :meth:`find_post`,
        in one read."""

    def claim_post(
        self,
        key: str,
        *,
        ttl_seconds: int,
        source: Endpoint,
        native_id: str,
        thread_native_id: str | None,
    ) -> PostTargets | None:
        """:meth:`claim` and :meth:`post_targets` together (one statement where the database
        returns rows from an insert); ``None`` when the key was claimed already."""

    def copies(
        self, post_ids: Sequence[str], targets: Sequence[Endpoint]
    ) -> list[tuple[str, Copy]]:
        """The copies of ``post_ids`` at ``targets``, as ``(post_id, copy)`` pairs."""

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
        """Create a canonical post and its source copy in the message map."""

    def mark_deleted(self, post_id: str) -> None: ...

    def lock_post(self, post_id: str) -> None:
        """Serialize concurrent changes to one post (reaction counts) until commit."""

    def endpoints_of_sync(self, sync_id: int) -> list[Endpoint]:
        """Every active endpoint of a sync."""

    def add_reaction(self, *, post_id: str, emoji: str, actor: str, source: Endpoint) -> bool:
        """Record a reaction; False when that actor already had it."""

    def remove_reaction(self, *, post_id: str, emoji: str, actor: str) -> bool:
        """Forget a reaction; False when it was not recorded."""

    def reaction_sources(self, *, post_id: str, emoji: str) -> list[Endpoint]:
        """The endpoint of every recorded reactor of ``emoji`` on the post (one per reactor)."""

    def set_endpoint_status(self, endpoint: Endpoint, status: str) -> int:
        """Pause/resume an endpoint in every sync; returns how many rows changed."""

    def enqueue(
        self, deliveries: Sequence[NewDelivery], *, lease: Lease | None = None
    ) -> set[str]:
        """Write the outbox rows; with ``lease``, those whose target has no earlier delivery
        waiting are written leased to its owner. Returns the uids so leased."""


class WritesOn(Protocol):
    """Where a store's writes run when called from an event loop (see :mod:`app.core.offload`)."""

    @property
    def write_executor(self) -> Executor | None:
        """Its own thread for writes (a single-writer database), or None: any thread of the
        loop's default pool."""


class RelayStore(WritesOn, Protocol):
    def transaction(self) -> AbstractContextManager[RelayTransaction]: ...


class OutboxStore(WritesOn, Protocol):
    """Durable deliveries: claimed with leases, completed, retried or declared dead."""

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
        """Lease up to ``limit`` due deliveries, at most the next ones of each target in order.

        ``only`` limits the claim to those deliveries, ``targets`` to those target endpoints,
        ``lanes`` to that many distinct targets (the rest are left to other workers);
        ``exclude`` leaves those targets out (lanes of the caller's process deliver them).
        Safe to call from any number of processes at once: a row is leased to one of them.
        """

    def take_fresh(
        self,
        target: str,
        uids: Sequence[str],
        *,
        owner: str,
        lease_seconds: float,
        copies_of: Sequence[str] = (),
    ) -> Taken | None:
        """Lease the fresh rows ``uids`` of ``target`` (handed over in memory, never attempted)
        to ``owner``, all or none: none when any is leased or attempted already, or when a
        pending row of ``target`` outside ``uids`` comes before one of them (its order).

        Returns ``None`` when none were taken, else their order (the relay's commits may
        have been reported out of it) and the copies at ``target`` of the posts ``copies_of``
        (an edit's copy, a thread reply's parent).
        """

    def complete(self, task: DeliveryTask, result: Delivered) -> None:
        """Mark delivered and record the new copy in the message map."""

    def complete_many(self, done: Sequence[tuple[DeliveryTask, Delivered]]) -> None:
        """:meth:`complete` for a batch: one message-map insert, one status update.

        The copies are recorded before the rows are marked delivered, so a crash in between
        leaves rows whose lease expires and whose next attempt finds the copy already made.
        """

    def retry_later(
        self, task: DeliveryTask, *, error: str, delay_seconds: float, outcome_unknown: bool
    ) -> None: ...

    def mark_dead(self, task: DeliveryTask, *, error: str) -> None: ...

    def release(self, uids: Sequence[str]) -> None:
        """Give back leases of claimed deliveries that were not attempted."""

    def next_due_in(self) -> float | None:
        """Seconds until the next pending delivery is due (0 if due now, None if none)."""

    def pending(self, uids: Sequence[str]) -> list[PendingDelivery]:
        """Which of ``uids`` are not done yet, and when each can next be attempted."""


class Deliverer(Protocol):
    """Applies deliveries to one network."""

    network: Network

    async def deliver(self, task: DeliveryTask) -> Delivered:
        """Apply the delivery at its target.

        Raises:
            app.errors.RemoteError: the target refused or failed; ``retryable`` and
                ``retry_after`` say whether and when to try again.
        """
        ...
