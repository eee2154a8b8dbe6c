"""Portal invites, each sent at most once per (portal, user).

mautrix-slack invited its users to every portal again on each restart (mautrix/slack#36). Here
an invite is recorded when sent, and the membership events the homeserver pushes update the
record: joined, left, or declined (a leave straight from an invite). Any record means "do not
invite again" — a restart or a later sync re-invites nobody. Deleting the portal forgets its
records, so a recreated portal invites afresh.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from mautrix.types import RoomID, UserID
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.errors import RemoteError
from app.matrix.homeserver import Homeserver, matrix_errors
from app.store.models_matrix import MatrixPortal, MatrixPortalInvite

log = logging.getLogger("syncbot.matrix.invites")

INVITED, JOINED, LEFT, DECLINED = "invited", "joined", "left", "declined"


def membership_outcome(event: dict[str, Any]) -> str | None:
    """What a member event of an invited user says about our invite, or None."""
    content = event.get("content") or {}
    membership = content.get("membership")
    previous = ((event.get("unsigned") or {}).get("prev_content") or {}).get("membership")
    if membership == "join":
        return JOINED
    if (
        membership == "leave"
        and previous == "invite"
        and event.get("sender") == event.get("state_key")
    ):
        return DECLINED
    if membership in ("leave", "ban"):
        return LEFT
    return None


class PortalInvites:
    """Sends portal invites once and remembers what became of them."""

    def __init__(self, homeserver: Homeserver, sessions: sessionmaker[Session]) -> None:
        self._hs = homeserver
        self._sessions = sessions

    def state(self, endpoint: Endpoint, user_id: str) -> str | None:
        with self._sessions() as s:
            row = s.get(MatrixPortalInvite, (str(endpoint), user_id))
            return row.membership if row is not None else None

    def _record(self, endpoint: Endpoint, user_id: str) -> None:
        try:
            with self._sessions() as s, s.begin():
                s.add(MatrixPortalInvite(endpoint=str(endpoint), user_id=user_id[:255]))
        except IntegrityError:
            pass  # recorded concurrently (two syncs at once): one invite went out anyway

    async def invite(self, endpoint: Endpoint, room: str, users: Iterable[str]) -> list[str]:
        """Invite each of ``users`` who was never invited to this portal.

        Returns:
            The users invited now.
        """
        sent = []
        for user in dict.fromkeys(users):
            if await asyncio.to_thread(self.state, endpoint, user) is not None:
                continue
            try:
                async with matrix_errors("portal invite"):
                    await self._hs.bot.invite_user(RoomID(room), UserID(user))
            except RemoteError as exc:
                # Not recorded: the next sync tries again.
                log.warning("portal invite failed", extra={"room": room, "error": str(exc)})
                continue
            # Recorded after sending: a crash in between re-sends an invite to someone who
            # cannot have answered it yet, which the homeserver treats as a no-op.
            await asyncio.to_thread(self._record, endpoint, user)
            sent.append(user)
        if sent:
            log.info("portal invites sent", extra={"room": room, "count": len(sent)})
        return sent

    def observe(self, event: dict[str, Any]) -> bool:
        """Record what an invited user did (a membership event in a portal room).

        Returns:
            True when the event concerned one of our invites.
        """
        outcome = membership_outcome(event)
        user, room = event.get("state_key"), event.get("room_id")
        if outcome is None or not isinstance(user, str) or not isinstance(room, str):
            return False
        with self._sessions() as s, s.begin():
            endpoint = s.execute(
                select(MatrixPortal.endpoint).where(MatrixPortal.room_id == room)
            ).scalar_one_or_none()
            if endpoint is None:
                return False
            row = s.get(MatrixPortalInvite, (endpoint, user))
            if row is None:
                if outcome != JOINED:
                    return False
                # Joined by other means (a room link, a directory): never invite them either.
                row = MatrixPortalInvite(endpoint=endpoint, user_id=user[:255])
                s.add(row)
            row.membership = outcome
        return True
