"""The one way an inbound event enters the sync: relay it, then dispatch what it produced.

Every inbound path — the Slack events route and Socket Mode (one :class:`SlackEvents`), the
Matrix appservice transactions, a peer's federation events — calls :class:`Ingest`, so the
claim-then-deliver order of the relay and the dispatcher is written once.
"""

from __future__ import annotations

import time

from app.core import offload
from app.core.dispatch import Dispatcher
from app.core.events import InboundEvent
from app.core.relay import Relay, RelayResult


class Ingest:
    """Relays an inbound event (off the event loop: the store blocks), then dispatches."""

    def __init__(self, relay: Relay, dispatcher: Dispatcher) -> None:
        self._relay = relay
        self._dispatcher = dispatcher

    async def __call__(self, event: InboundEvent, *, deadline: float | None = None) -> RelayResult:
        """Claim ``event`` and write its deliveries in one transaction, then dispatch them.

        Args:
            deadline: a :func:`time.monotonic` time by which the caller must answer its
                sender (Slack's ack); the new deliveries are attempted inline until then.
                ``None``: no inline delivery, the notifier's worker delivers.

        Returns:
            The relay's result (a duplicate writes and dispatches nothing).

        Raises:
            Exception: the relay's transaction failed; nothing was recorded, and the sender
                should retry. Dispatching never raises.
        """
        lease = None
        if deadline is not None:
            # Rows the inline drain will deliver are leased to it as they are written.
            lease = self._dispatcher.inline_lease(deadline - time.monotonic())
        result = await offload.write(self._relay, self._relay.ingest, event, lease=lease)
        if result.deliveries:
            budget = None if deadline is None else deadline - time.monotonic()
            await self._dispatcher.after_commit(
                result.deliveries,
                budget=budget,
                leased=result.tasks if lease is not None else None,
                fresh=result.fresh,
            )
        return result
