"""Reading back what the homeserver never pushed.

Synapse queues the events for an application service in memory while a transaction is in
flight, and only writes them into a transaction once that one is answered. A homeserver stopped
or crashed in between forgets them for good (element-hq/synapse#11637, open): the appservice
stream position has already moved past them, so no replay ever brings them. For a bridge that
promises nothing a user sends is lost, that is a loss on a plain homeserver restart.

So the bridge also reads its rooms' timelines: every ``MATRIX_CATCHUP_INTERVAL`` seconds, and
once the homeserver answers at start, the bot pages back through each bridged room with
``/messages`` (a filter keeps it to the event types we relay) to just before the previous sweep,
and hands every event nobody has claimed yet to the appservice's serial path. ``/sync`` would
be one request for all rooms, but Synapse refuses it to an appservice's own user
(matrix-org/matrix-doc#1144), so a sweep costs one request per bridged room when nothing was
lost. Events the pushed transactions relayed are skipped by their claim. The sweep's start
time is kept in ``instance_settings``, so a restart resumes where the last sweep ended.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from mautrix.api import Method, Path
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint, Network
from app.core.relay import CLAIM_TTL_SECONDS
from app.errors import RemoteError
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.inbound import dedupe_key
from app.periodic import Periodic
from app.store.instance_settings import read_setting, write_setting
from app.store.models import ProcessedEvent, SyncEndpoint

log = logging.getLogger("syncbot.matrix.catchup")

SINCE_KEY = "matrix_catchup:since"
# What the bridge relays from a room's timeline; anything else a lost push cannot have carried
# to Slack anyway (membership is re-read by the members sync).
RELAYED_TYPES = ("m.room.message", "m.sticker", "m.reaction", "m.room.redaction")
EVENT_FILTER = json.dumps({"types": list(RELAYED_TYPES)})
PAGE = 50
MAX_PAGES = 20
# Each sweep reaches this far before the previous one began: events the homeserver stamped
# with a clock a little behind ours, or persisted while the previous sweep read their room.
OVERLAP = timedelta(minutes=2)
# An event older than its claim's lifetime may have been relayed and forgotten: never replayed.
REPLAY_WINDOW = timedelta(seconds=CLAIM_TTL_SECONDS) - timedelta(hours=1)
# Rooms read at once: enough to finish a large bridge's sweep, few enough to be a quiet client.
CONCURRENCY = 4

# Processes events the homeserver did not push, in order: how many were relayed, or None when one
# failed in a way worth retrying (the sweep then keeps its old position).
MissedHandler = Callable[[list[dict[str, Any]]], Awaitable[int | None]]


class MatrixCatchUp:
    """One sweep of the bridged rooms' timelines for events the homeserver's pushes lost."""

    def __init__(
        self,
        homeserver: Homeserver,
        sessions: sessionmaker[Session],
        handle_missed: MissedHandler,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._hs = homeserver
        self._sessions = sessions
        self._handle_missed = handle_missed
        self._now = now

    async def sweep(self) -> int:
        """Relay every unclaimed event since the last sweep; returns how many were relayed.

        Raises:
            RemoteError: a room could not be read (the position is kept, the next sweep
                reads the same stretch again).
        """
        began = self._now()
        stored = await asyncio.to_thread(read_setting, self._sessions, SINCE_KEY)
        if stored is None:
            # The first sweep of this database: everything before it was pushed or is history.
            await asyncio.to_thread(write_setting, self._sessions, SINCE_KEY, began.isoformat())
            return 0
        since = max(datetime.fromisoformat(stored) - OVERLAP, began - REPLAY_WINDOW)
        rooms = await asyncio.to_thread(self._bridged_rooms)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def read(room: str) -> list[dict[str, Any]]:
            async with gate:
                try:
                    return await self._since(room, since)
                except RemoteError as exc:
                    if exc.retryable:
                        raise
                    # A room the bot may not read (left, kicked, gone) must not stop the
                    # sweep of every other room; the outbox reports the room's own trouble.
                    log.warning("catch-up cannot read a room", extra={"room": room})
                    return []

        relayed = 0
        for events in await asyncio.gather(*(read(r) for r in rooms)):
            # Unclaimed is not yet lost: commands and events from before a link leave no claim
            # either; the bridge tells them apart (and logs each event it does relay).
            unclaimed = await asyncio.to_thread(self._unclaimed, events)
            if not unclaimed:
                continue
            count = await self._handle_missed(unclaimed)
            if count is None:
                return relayed
            relayed += count
        await asyncio.to_thread(write_setting, self._sessions, SINCE_KEY, began.isoformat())
        return relayed

    async def _since(self, room: str, since: datetime) -> list[dict[str, Any]]:
        """The room's relayable events sent at ``since`` or later, oldest first."""
        out: list[dict[str, Any]] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            query = {"dir": "b", "limit": str(PAGE), "filter": EVENT_FILTER}
            if token is not None:
                query["from"] = token
            async with matrix_errors("catch-up history"):
                page = await self._hs.bot.api.request(
                    Method.GET, Path.v3.rooms[room].messages, query_params=query
                )
            chunk = [e for e in (page or {}).get("chunk") or [] if isinstance(e, dict)]
            recent = [e for e in chunk if _sent_at(e) >= since]
            out += [{**e, "room_id": room} for e in recent]
            token = page.get("end") if isinstance(page, dict) else None
            if len(recent) < len(chunk) or not chunk or token is None:
                break
        else:
            log.warning("catch-up stopped at its page limit in one room", extra={"room": room})
        out.reverse()
        return out

    def _bridged_rooms(self) -> list[str]:
        with self._sessions() as s:
            endpoints = s.execute(
                select(SyncEndpoint.endpoint).where(
                    SyncEndpoint.network == Network.MATRIX.value,
                    SyncEndpoint.status == "active",
                )
            ).scalars()
            return [Endpoint.parse(e).matrix_room for e in endpoints]

    def _unclaimed(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        fresh = [
            e
            for e in events
            if isinstance(e.get("event_id"), str)
            and not self._hs.ids.is_ours(str(e.get("sender") or ""))
        ]
        if not fresh:
            return []
        keys = {dedupe_key(e["event_id"]) for e in fresh}
        with self._sessions() as s:
            claimed = set(
                s.execute(select(ProcessedEvent.key).where(ProcessedEvent.key.in_(keys))).scalars()
            )
        return [e for e in fresh if dedupe_key(e["event_id"]) not in claimed]


def _sent_at(event: dict[str, Any]) -> datetime:
    ts = event.get("origin_server_ts")
    if not isinstance(ts, int):
        return datetime.min.replace(tzinfo=UTC)
    return datetime.fromtimestamp(ts / 1000, UTC)


class CatchUpLoop:
    """Runs :meth:`MatrixCatchUp.sweep` every ``interval`` seconds in the serving process."""

    def __init__(self, catchup: MatrixCatchUp, interval: float) -> None:
        self._catchup = catchup
        self._periodic = Periodic("matrix-catchup", self._sweep, interval)

    async def sweep_now(self) -> int:
        """One sweep at once (operators' and tests' way to not wait for the interval)."""
        return await self._catchup.sweep()

    @property
    def running(self) -> bool:
        return self._periodic.running

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _sweep(self) -> None:
        try:
            await self._catchup.sweep()
        except RemoteError as exc:
            # The homeserver is away: the next sweep reads the same stretch again.
            log.info("catch-up sweep deferred", extra={"error": str(exc)})
