"""Getting outbox rows to a worker: right away, and again when a retry falls due.

The outbox in the database is the source of truth; a dispatcher only says "look at these rows".
After the relay commits, :meth:`Dispatcher.after_commit` delivers inline within the caller's
budget and hands whatever is left to a :class:`Notifier`: the in-process worker of
``syncbot serve``, an SQS FIFO queue (Lambda) or Cloud Tasks (Cloud Run). A queue's worker calls
:meth:`Dispatcher.work` for each notice and learns whether the row is settled or when to look
again — the queue then waits exactly that long (a ``Retry-After`` of one second is retried after
one second, not at the next scheduler tick).

A notice that is lost (a crash between commit and enqueue, a queue outage) loses nothing: the
row stays pending and the maintenance tick delivers it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Protocol

from app.core import offload
from app.core.outbox import Outbox
from app.core.ports import DeliveryTask, Lease, OutboxStore, PendingDelivery

log = logging.getLogger("syncbot.core.dispatch")

# Inline delivery is skipped when less than this is left of the caller's budget.
MIN_INLINE_BUDGET = 0.05


class Notifier(Protocol):
    """Tells some worker that deliveries are waiting, to be looked at when each is due."""

    name: str
    # A remote queue needs each row's target and due time; an in-process worker reads the
    # database itself and only needs waking (sparing a query per event).
    remote: bool

    async def notify(self, pending: Sequence[PendingDelivery]) -> None:
        """Hand the notices over; raises when they could not be (the tick still catches up)."""


class InProcessNotifier:
    """``syncbot serve``: its own outbox worker sleeps until the next due row or a wake-up."""

    name = "inprocess"
    remote = False

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    async def notify(self, pending: Sequence[PendingDelivery]) -> None:
        self._outbox.wake()


class Dispatcher:
    """Delivers fresh outbox rows inline, then leaves the rest to the notifier's worker."""

    def __init__(self, outbox: Outbox, store: OutboxStore, notifier: Notifier) -> None:
        self.outbox = outbox
        self._store = store
        self.notifier = notifier

    def inline_lease(self, budget: float | None) -> Lease | None:
        """The lease for the relay to write rows with, when they will be delivered inline."""
        if budget is None or budget <= MIN_INLINE_BUDGET:
            return None
        return self.outbox.lease()

    async def after_commit(
        self,
        uids: Sequence[str],
        *,
        budget: float | None = None,
        leased: Sequence[DeliveryTask] | None = None,
        fresh: Sequence[DeliveryTask] = (),
    ) -> None:
        """Called once the rows ``uids`` are committed; never raises.

        ``leased``: when the relay was given :meth:`inline_lease`, the rows it leased to this
        dispatcher's outbox, as tasks: they are delivered without a claim pass. Its other rows
        go to targets with earlier deliveries waiting, which the worker is already working
        on: they go straight to the notifier (a claim now would find them blocked).

        ``fresh``: those other rows as tasks. A lane of this process already delivering
        their target takes them over without a claim; only the rest need the worker. (Not
        with a remote notifier: its process may be frozen once it has answered.)
        """
        if not uids:
            return
        handed: set[str] = set()
        if fresh and not self.notifier.remote:
            handed = self.outbox.hand_over(fresh)
        settled: set[str] = set()
        inline = budget is not None and budget > MIN_INLINE_BUDGET
        if inline and leased is None:
            try:
                settled = (await self.outbox.drain(only=uids, budget=budget)).settled
            except Exception:
                log.exception("inline delivery failed; the outbox keeps it")
        elif inline and leased:
            try:
                settled = (await self.outbox.drain(leased=leased, budget=budget)).settled
            except Exception:
                log.exception("inline delivery failed; the outbox keeps it")
        elif leased:
            try:
                # Too late to deliver inline after all: hand the rows to the worker now rather
                # than when their lease runs out.
                await offload.write(self._store, self._store.release, [t.uid for t in leased])
            except Exception:
                log.exception("could not hand back leased deliveries; their lease expires")
        rest = [uid for uid in uids if uid not in settled and uid not in handed]
        if not rest:
            return
        if not self.notifier.remote:
            await self.notifier.notify(())
            return
        try:
            pending = await asyncio.to_thread(self._store.pending, rest)
            if pending:
                await self.notifier.notify(pending)
        except Exception:
            # Nothing is lost: the rows are pending in the database and the tick delivers them.
            log.exception("could not dispatch deliveries", extra={"count": len(rest)})

    async def work(self, uid: str) -> PendingDelivery | None:
        """A queue's notice for ``uid``: deliver what is due on its target, then report.

        Returns:
            ``None`` when ``uid`` is settled (delivered or dead, now or earlier), else the row
            with the seconds until it can move again (its retry time, a lease, or an earlier
            row of the same target).
        """
        before = await asyncio.to_thread(self._store.pending, [uid])
        if not before:
            return None
        # The whole target, not just this row: an earlier row of the target whose notice was
        # lost would otherwise hold this one up until the next tick.
        await self.outbox.drain(targets=[str(before[0].target)])
        after = await asyncio.to_thread(self._store.pending, [uid])
        return after[0] if after else None
