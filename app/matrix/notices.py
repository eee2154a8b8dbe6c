"""Telling a Matrix sender what became of their message, as mautrix bridges do.

A message sent in a bridged room that cannot be relayed (an unsupported kind of event) or whose
delivery to another network was refused for good gets an ``m.notice`` from the bridge bot in
the room, replying to the message, and a log line. A delivery that is only delayed (its target
held, see :mod:`app.core.holds`) gets a notice too, saying it will follow.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from mautrix.types import EventType, RoomID

from app.core.endpoints import Endpoint, Network
from app.core.events import Kind
from app.core.payloads import PostPayload, ReactionPayload
from app.core.ports import DeliveryTask
from app.errors import RemoteError
from app.matrix.event_content import as_content
from app.matrix.homeserver import Homeserver, matrix_errors

log = logging.getLogger("syncbot.matrix.notices")

# Event types that carry something a person sent, which the bridge cannot relay.
UNSUPPORTED = {
    "m.room.encrypted": "encrypted messages cannot be bridged",
    "m.poll.start": "polls cannot be bridged",
    "org.matrix.msc3381.poll.start": "polls cannot be bridged",
    "m.call.invite": "calls cannot be bridged",
}
_WHAT = {
    Kind.POST: "Your message",
    Kind.EDIT: "Your edit",
    Kind.DELETE: "Your deletion",
    Kind.REACT: "Your reaction",
    Kind.UNREACT: "Removing your reaction",
}


def unsupported(event: dict[str, Any]) -> str | None:
    """Why ``event`` (something a user sent) cannot be relayed, or None when it can."""
    etype = str(event.get("type") or "")
    if etype in UNSUPPORTED:
        return UNSUPPORTED[etype]
    raw = event.get("content")
    content: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if etype == "m.room.message" and content.get("msgtype") in (
        "m.image",
        "m.file",
        "m.video",
        "m.audio",
    ):
        url = content.get("url")
        if not (isinstance(url, str) and url.startswith("mxc://")):
            return "encrypted attachments cannot be bridged"
    return None


def _txn(event_id: str, text: str) -> str:
    # Idempotent per message and notice: a retried transaction does not repeat it.
    return "notice." + hashlib.sha256(f"{event_id}\n{text}".encode()).hexdigest()[:32]


def _where(target: Endpoint) -> str:
    if target.network is Network.SLACK:
        return f"Slack channel {target.slack_channel} ({target.slack_team})"
    return str(target)


class SenderNotices:
    """Notices to senders in bridged rooms: unsupported events, refused or delayed deliveries."""

    def __init__(self, homeserver: Homeserver) -> None:
        self._hs = homeserver

    async def tell(self, room: str, event_id: str, text: str) -> None:
        """Send ``text`` as a notice in ``room``, replying to ``event_id``."""
        content = {
            "msgtype": "m.notice",
            "body": text,
            "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
        }
        async with matrix_errors("send notice"):
            await self._hs.bot.send_message_event(
                RoomID(room),
                EventType.ROOM_MESSAGE,
                as_content(content),
                txn_id=_txn(event_id, text),
            )

    async def unsupported_event(self, event: dict[str, Any], reason: str) -> None:
        room, event_id = str(event.get("room_id")), str(event.get("event_id"))
        log.warning(
            "matrix event not bridged",
            extra={"room": room, "event_type": event.get("type"), "reason": reason},
        )
        await self.tell(room, event_id, f"⚠️ Not bridged: {reason}.")

    async def on_dead(self, task: DeliveryTask, exc: RemoteError) -> None:
        """``Outbox.on_dead`` listener: a Matrix user's change was refused elsewhere."""
        await self._about(task, exc, delayed=False)

    async def on_hold(self, task: DeliveryTask, exc: RemoteError) -> None:
        """``Outbox.on_hold`` listener: a Matrix user's change waits for its target."""
        await self._about(task, exc, delayed=True)

    async def _about(self, task: DeliveryTask, exc: RemoteError, *, delayed: bool) -> None:
        source = task.payload.source
        # Posts carry the event they came from, reactions the message reacted to; a notice
        # answers that message.
        payload = task.payload
        event_id = (
            payload.source_native_id
            if isinstance(payload, PostPayload | ReactionPayload)
            else None
        )
        if source.network is not Network.MATRIX or not event_id:
            return
        what, where = _WHAT.get(task.kind, "Your message"), _where(task.target)
        if isinstance(payload, ReactionPayload):
            what = f"{what} :{payload.emoji}:"
        reason = exc.code or str(exc)
        if delayed:
            text = f"⏳ {what} is waiting to reach {where} ({reason}); it will follow."
        else:
            text = f"⚠️ {what} could not be delivered to {where}: {reason}."
        log.warning(
            "told the sender of a failed delivery",
            extra={"delivery": task.uid, "target": str(task.target), "error": reason},
        )
        await self.tell(source.matrix_room, str(event_id), text)
