"""What happens to each event the homeserver pushes, in order, before we answer 200.

Echoes from our own ghosts and bot are dropped first. Invites to the bot are accepted (the
homeserver only sends a room's events once we are joined) unless the room is encrypted. Commands
go to :class:`BotCommands`; everything else in a room of a sync becomes a core event and is
ingested by the relay, whose claim on ``matrix:<event_id>`` dedupes in the database.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from mautrix.types import RoomID
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.core.ingest import Ingest
from app.errors import RemoteError
from app.matrix import inbound
from app.matrix.commands import ENCRYPTED_REFUSAL, BotCommands
from app.matrix.emoji import reaction_key
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.invites import PortalInvites
from app.matrix.notices import SenderNotices, unsupported
from app.matrix.permissions import Level, Permissions
from app.store.models import SyncEndpoint
from app.store.models_matrix import MatrixReaction

log = logging.getLogger("syncbot.matrix.bridge")


class MatrixBridge:
    """Handles appservice events one at a time."""

    def __init__(
        self,
        homeserver: Homeserver,
        *,
        sessions: sessionmaker[Session],
        ingest: Ingest,
        commands: BotCommands,
        permissions: Permissions,
        invites: PortalInvites | None = None,
        notices: SenderNotices | None = None,
    ) -> None:
        self._hs = homeserver
        self._ids = homeserver.ids
        self._sessions = sessions
        self._ingest = ingest
        self._commands = commands
        self._permissions = permissions
        self._invites = invites
        self._notices = notices

    async def handle(self, event: dict[str, Any]) -> None:
        """Process one event; raises only for failures worth a retry of the transaction."""
        sender = str(event.get("sender") or "")
        room = event.get("room_id")
        if not isinstance(room, str) or self._ids.is_ours(sender):
            return
        etype = event.get("type")
        if etype == "m.room.member":
            await self._member(event)
            return
        if etype == "m.room.encryption":
            await self._leave_encrypted(room)
            return
        in_sync = await asyncio.to_thread(self._in_sync, room)
        if etype == "m.room.message":
            dm = not in_sync and await self._commands.is_dm(room)
            if await self._commands.handle(event, dm=dm):
                return
        if not in_sync:
            if etype == "m.room.message":
                log.info("message in a room that is not bridged", extra={"room": room})
            return
        if self._permissions.level(sender) < Level.RELAY:
            return
        reason = unsupported(event)
        if reason is not None:
            if self._notices is not None:
                await self._notices.unsupported_event(event, reason)
            return
        await self._relay_event(event, Endpoint.matrix(room))

    async def handle_missed(self, event: dict[str, Any]) -> bool:
        """Process an event the homeserver never pushed (found by the catch-up sweep).

        Relayed as a pushed one would have been, with three differences: only in rooms that
        were in a sync when it was sent (a sweep reads events from before a link too),
        commands are not replayed late (their sender saw no answer and can send them again),
        and nobody gets a notice about it. True when it was relayed.
        """
        sender = str(event.get("sender") or "")
        room = event.get("room_id")
        if not isinstance(room, str) or self._ids.is_ours(sender):
            return False
        linked_at = await asyncio.to_thread(self._linked_at, room)
        sent = event.get("origin_server_ts")
        if linked_at is None or not isinstance(sent, int):
            return False
        if datetime.fromtimestamp(sent / 1000, UTC) < linked_at.replace(tzinfo=UTC):
            return False
        if event.get("type") == "m.room.message" and self._commands.is_command(event):
            if self._commands.carries_token(event):
                await self._commands.handle(event, dm=False)  # removed, never relayed
            return False
        if self._permissions.level(sender) < Level.RELAY or unsupported(event) is not None:
            return False
        log.warning(
            "relaying an event found in the timeline before any push of it",
            extra={"room": room, "event_type": event.get("type")},
        )
        await self._relay_event(event, Endpoint.matrix(room))
        return True

    async def _relay_event(self, event: dict[str, Any], source: Endpoint) -> None:
        redacted = None
        if event.get("type") == "m.room.redaction":
            redacted = await asyncio.to_thread(self._find_reaction, str(event.get("redacts")))
        core = inbound.translate(event, source, reaction_redacted=redacted)
        if core is None:
            return
        if event.get("type") == "m.reaction":
            await asyncio.to_thread(self._record_reaction, event)
        # No inline delivery: the homeserver waits for this transaction's answer.
        await self._ingest(core)
        if redacted is not None:
            # Only once the unreact is durable: a retried transaction must find the row again.
            await asyncio.to_thread(self._forget_reaction, str(event.get("redacts")))

    async def _member(self, event: dict[str, Any]) -> None:
        content = event.get("content") or {}
        if event.get("state_key") != self._ids.bot:
            # A user joining, leaving or declining a portal: remembered so that no sync
            # invites them again.
            if self._invites is not None:
                await asyncio.to_thread(self._invites.observe, event)
            return
        if content.get("membership") != "invite":
            return
        room = str(event["room_id"])
        stripped = (event.get("unsigned") or {}).get("invite_room_state") or []
        encrypted = any(s.get("type") == "m.room.encryption" for s in stripped)
        try:
            async with matrix_errors("join"):
                await self._hs.bot.join_room(RoomID(room))
        except RemoteError as exc:
            if exc.retryable:
                raise
            log.warning("could not accept an invite", extra={"room": room, "error": str(exc)})
            return
        if encrypted:
            await self._leave_encrypted(room)

    async def _leave_encrypted(self, room: str) -> None:
        async with matrix_errors("refuse encrypted room"):
            await self._hs.bot.send_notice(RoomID(room), ENCRYPTED_REFUSAL)
            await self._hs.bot.leave_room(RoomID(room))

    def _linked_at(self, room: str) -> datetime | None:
        """When ``room`` joined its sync (None: it is in none)."""
        with self._sessions() as s:
            return s.execute(
                select(SyncEndpoint.created_at).where(
                    SyncEndpoint.endpoint == str(Endpoint.matrix(room)),
                    SyncEndpoint.status == "active",
                )
            ).scalar()

    def _in_sync(self, room: str) -> bool:
        return self._linked_at(room) is not None

    def _record_reaction(self, event: dict[str, Any]) -> None:
        content = event.get("content") or {}
        rel = content.get("m.relates_to") or {}
        try:
            with self._sessions() as s, s.begin():
                if s.get(MatrixReaction, event["event_id"]) is None:
                    s.add(
                        MatrixReaction(
                            event_id=event["event_id"],
                            room_id=event["room_id"],
                            target_event_id=str(rel.get("event_id")),
                            # An image-pack emoji as its :shortcode:, as its addition went.
                            key=reaction_key(content)[:128],
                            sender=event["sender"],
                            ours=False,
                        )
                    )
        except IntegrityError:
            pass  # the same user's same reaction twice: Matrix clients prevent it anyway

    def _find_reaction(self, event_id: str) -> tuple[str, str] | None:
        with self._sessions() as s:
            row = s.get(MatrixReaction, event_id)
            if row is None or row.ours:
                return None
            return row.target_event_id, row.key

    def _forget_reaction(self, event_id: str) -> None:
        with self._sessions() as s, s.begin():
            s.execute(delete(MatrixReaction).where(MatrixReaction.event_id == event_id))
