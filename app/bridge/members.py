"""Channel members as ghosts in the portal room.

A new portal gets the channel's members (``conversations.members``, first :data:`SYNC_LIMIT`);
later ``member_joined_channel``/``member_left_channel`` events add and remove them. A member
whose ghost cannot be created or joined is skipped: one broken profile must not keep the rest
of the room (or any message) waiting — the seed's "ghost user creation fails -> skip that user,
continue".
"""

from __future__ import annotations

import asyncio
import logging

from mautrix.types import RoomID

from app.core.authors import AuthorDirectory
from app.core.endpoints import Endpoint
from app.core.events import Author
from app.core.workspaces import UnknownWorkspace
from app.matrix.ghosts import Ghosts
from app.matrix.homeserver import Homeserver, matrix_errors
from app.slack.workspaces import Workspaces

log = logging.getLogger("syncbot.matrix.members")

# Members synced into a new portal; bigger channels fill in as people post or join.
SYNC_LIMIT = 200


class ChannelMembers:
    """Keeps a portal room's ghosts in step with the Slack channel's members."""

    def __init__(
        self,
        homeserver: Homeserver,
        ghosts: Ghosts,
        authors: AuthorDirectory,
        workspaces: Workspaces,
    ) -> None:
        self._hs = homeserver
        self._ghosts = ghosts
        self._authors = authors
        self._workspaces = workspaces

    async def sync(self, endpoint: Endpoint, room: str) -> tuple[int, int]:
        """Join the ghosts of the channel's members to ``room``.

        Returns:
            (joined, skipped) counts.
        """
        api = self._workspaces.api(endpoint.slack_team)
        found = await api.call(
            "conversations.members", channel=endpoint.slack_channel, limit=SYNC_LIMIT
        )
        bot = await asyncio.to_thread(self._bot_user, endpoint.slack_team)
        joined = skipped = 0
        for user in (found.get("members") or [])[:SYNC_LIMIT]:
            if user == bot:
                continue
            if await self._join_ghost(endpoint, room, str(user)):
                joined += 1
            else:
                skipped += 1
        log.info(
            "portal members synced",
            extra={"endpoint": str(endpoint), "joined": joined, "skipped": skipped},
        )
        return joined, skipped

    def _bot_user(self, team: str) -> str | None:
        try:
            return self._workspaces.info(team).bot_user_id
        except UnknownWorkspace:
            return None

    async def _author(self, endpoint: Endpoint, user: str) -> Author:
        team = endpoint.slack_team
        try:
            origin = (await asyncio.to_thread(self._workspaces.info, team)).name
        except UnknownWorkspace:
            origin = team
        base = Author(name="", native_id=f"{team}/{user}", origin=origin)
        return await self._authors.resolve(endpoint, base)

    async def join(self, endpoint: Endpoint, room: str, user: str) -> bool:
        """Put ``user``'s ghost in ``room``; False when it was skipped."""
        if user == await asyncio.to_thread(self._bot_user, endpoint.slack_team):
            return False  # the app's own bot user is the bridge itself, not a member to show
        return await self._join_ghost(endpoint, room, user)

    async def _join_ghost(self, endpoint: Endpoint, room: str, user: str) -> bool:
        """:meth:`join` for a user known not to be the app's bot user."""
        try:
            author = await self._author(endpoint, user)
            ghost = await self._ghosts.ensure(endpoint, author)
            async with matrix_errors("ghost join"):
                await self._hs.intent(ghost).ensure_joined(RoomID(room), bot=self._hs.bot)
        except Exception as exc:
            log.warning(
                "ghost skipped",
                extra={"endpoint": str(endpoint), "user": user, "error": str(exc)},
            )
            return False
        return True

    async def leave(self, endpoint: Endpoint, room: str, user: str) -> bool:
        """Take ``user``'s ghost out of ``room`` (they left the channel)."""
        ghost = self._hs.ids.ghost_for(endpoint, f"{endpoint.slack_team}/{user}")
        try:
            async with matrix_errors("ghost leave"):
                await self._hs.intent(ghost).leave_room(RoomID(room))
        except Exception as exc:
            log.warning("ghost did not leave", extra={"user": user, "error": str(exc)})
            return False
        return True
