"""One Matrix space per logged-in workspace, holding its portals (as mautrix-slack does).

The space is named and pictured like the workspace, created at the first login and found again
after a restart by its alias (``#slack_t123_space:server``, in the bridge's exclusive alias
namespace; it cannot name a portal, whose channel ids start with C or G). Portals join it as
they are created (``m.space.child`` in the space, ``m.space.parent`` in the portal: the spec's
two-way link, https://spec.matrix.org/v1.11/client-server-api/#spaces) and leave it when
deleted. The children already in place are read from the space's state once per process, so a
restart's resync sends no state events for portals that are already children.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from mautrix.errors import MRoomInUse
from mautrix.types import (
    EventType,
    RoomAlias,
    RoomCreatePreset,
    RoomID,
    UserID,
)
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.errors import RemoteError, SyncbotError
from app.matrix.ghosts import AvatarFetcher
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.portals import PORTAL_ROOM_VERSION
from app.slack.workspaces import Workspaces
from app.store.models import Workspace

log = logging.getLogger("syncbot.bridge.spaces")

SPACE_CHILD = EventType.find("m.space.child", EventType.Class.STATE)
SPACE_PARENT = EventType.find("m.space.parent", EventType.Class.STATE)


class WorkspaceSpaces:
    """Creates each workspace's space and keeps its children in step with the portals."""

    def __init__(
        self,
        homeserver: Homeserver,
        sessions: sessionmaker[Session],
        workspaces: Workspaces,
        *,
        fetch_avatar: AvatarFetcher | None = None,
    ) -> None:
        self._hs = homeserver
        self._sessions = sessions
        self._workspaces = workspaces
        self._fetch_avatar = fetch_avatar
        self._lock = asyncio.Lock()
        # team -> space room id, and the space's current children (read once from its state).
        self._rooms: dict[str, str] = {}
        self._children: dict[str, set[str]] = {}
        # team -> (name, icon URL) last applied, so a resync re-sends neither.
        self._shown: dict[str, tuple[str, str | None]] = {}

    def alias(self, team_id: str) -> str:
        ids = self._hs.ids
        return f"#{ids.prefix}{team_id.lower()}_space:{ids.server_name}"

    def room_of(self, team_id: str) -> str | None:
        """The workspace's space, if this process has seen it."""
        return self._rooms.get(team_id)

    async def ensure(self, team_id: str, invite: Sequence[str] = ()) -> str:
        """The workspace's space, created (with ``invite`` invited) or found by its alias; its
        name and avatar follow the workspace's."""
        async with self._lock:
            room = self._rooms.get(team_id)
            if room is None:
                room = await self._create_or_adopt(team_id, list(invite))
                self._rooms[team_id] = room
                self._children[team_id] = await self._read_children(room)
        await self._show_workspace(team_id, room)
        return room

    async def invite(self, team_id: str, user_id: str) -> None:
        """Invite ``user_id`` (a new login) to the space; one already in it is left alone."""
        room = await self.ensure(team_id)
        async with matrix_errors("space membership"):
            members = await self._hs.bot.get_joined_members(RoomID(room))
        if user_id in members:
            return
        try:
            async with matrix_errors("space invite"):
                await self._hs.bot.invite_user(RoomID(room), UserID(user_id))
        except RemoteError as exc:
            # Already invited (a second login) is fine; anything else is worth a line.
            log.info("space invite not sent", extra={"room": room, "error": str(exc)})

    async def add(self, endpoint: Endpoint, portal_room: str) -> None:
        """Link ``portal_room`` into its workspace's space, both ways (once)."""
        team = endpoint.slack_team
        space = await self.ensure(team)
        if portal_room in self._children.get(team, set()):
            return
        server = self._hs.ids.server_name
        child: dict[str, Any] = {"via": [server]}
        parent: dict[str, Any] = {"via": [server], "canonical": True}
        async with matrix_errors("space child"):
            await self._hs.bot.send_state_event(
                RoomID(space), SPACE_CHILD, child, state_key=portal_room
            )
            await self._hs.bot.send_state_event(
                RoomID(portal_room), SPACE_PARENT, parent, state_key=space
            )
        self._children.setdefault(team, set()).add(portal_room)
        log.info("portal added to its space", extra={"endpoint": str(endpoint)})

    async def remove(self, endpoint: Endpoint, portal_room: str) -> None:
        """A deleted portal leaves every space holding it (an empty ``m.space.child`` removes a
        child): its workspace's, and for a Slack Connect channel's one portal, the space of each
        other logged-in workspace it is shared with."""
        if endpoint.slack_team not in self._rooms:
            await self.ensure(endpoint.slack_team)
        for team, space in list(self._rooms.items()):
            if portal_room not in self._children.get(team, set()):
                continue
            async with matrix_errors("space child removal"):
                await self._hs.bot.send_state_event(
                    RoomID(space), SPACE_CHILD, {}, state_key=portal_room
                )
            self._children[team].discard(portal_room)

    async def _create_or_adopt(self, team_id: str, invite: list[str]) -> str:
        alias = self.alias(team_id)
        name = self._name(team_id)
        try:
            async with matrix_errors("create space"):
                room = await self._hs.bot.create_room(
                    alias_localpart=alias[1:].partition(":")[0],
                    preset=RoomCreatePreset.PRIVATE,
                    name=name,
                    topic=f"The Slack workspace {name}, bridged by syncbot",
                    invitees=[UserID(u) for u in invite],
                    room_version=PORTAL_ROOM_VERSION,
                    creation_content={"type": "m.space"},
                )
            self._shown.pop(team_id, None)
            log.info("workspace space created", extra={"team_id": team_id})
            return str(room)
        except RemoteError as exc:
            if not isinstance(exc.__cause__, MRoomInUse):
                raise
        # Made by an earlier run: found again by its alias.
        async with matrix_errors("resolve space alias"):
            found = await self._hs.bot.resolve_room_alias(RoomAlias(alias))
        return str(found.room_id)

    async def _read_children(self, room: str) -> set[str]:
        async with matrix_errors("space state"):
            events = await self._hs.bot.get_state(RoomID(room))
        return {
            str(e.state_key)
            for e in events
            if e.type == SPACE_CHILD and _content(e).get("via") and e.state_key
        }

    def _name(self, team_id: str) -> str:
        try:
            return self._workspaces.info(team_id).name
        except SyncbotError:
            return team_id

    def _icon(self, team_id: str) -> str | None:
        with self._sessions() as s:
            return s.execute(
                select(Workspace.icon_url).where(Workspace.team_id == team_id)
            ).scalar_one_or_none()

    async def _show_workspace(self, team_id: str, room: str) -> None:
        """Name and avatar follow the workspace (checked against the room's state once)."""
        name = self._name(team_id)
        icon = await asyncio.to_thread(self._icon, team_id)
        if self._shown.get(team_id) == (name, icon):
            return
        bot = self._hs.bot
        try:
            async with matrix_errors("space name"):
                state = {
                    (str(e.type), str(e.state_key)): _content(e)
                    for e in await bot.get_state(RoomID(room))
                }
                if state.get(("m.room.name", ""), {}).get("name") != name:
                    await bot.set_room_name(RoomID(room), name)
            avatar = state.get(("m.room.avatar", ""), {})
            if icon and self._fetch_avatar is not None and avatar.get("syncbot.source") != icon:
                data, mime = await self._fetch_avatar(icon)
                async with matrix_errors("space avatar"):
                    mxc = await bot.upload_media(data, mime_type=mime, filename="avatar")
                    # The source URL rides along, so a restart knows the picture is current.
                    content: dict[str, Any] = {"url": str(mxc), "syncbot.source": icon}
                    await bot.send_state_event(RoomID(room), EventType.ROOM_AVATAR, content)
        except Exception as exc:
            # A space without its picture still holds the portals; the next sync retries.
            log.warning("space profile not updated", extra={"room": room, "error": str(exc)})
            return
        self._shown[team_id] = (name, icon)


def _content(event: Any) -> dict[str, Any]:
    content = event.content
    if hasattr(content, "serialize"):
        content = content.serialize()
    return dict(content or {})
