"""Portals: Matrix rooms created on demand for Slack channels.

The state machine is the seed's: pending -> creating -> active <-> archived -> deleted. A
portal is created when the homeserver asks for an alias in our namespace
(``#slack_t1_c1:server``, the appservice room query) or by :meth:`Portals.ensure`. Creation is
idempotent across crashes: an existing alias is adopted instead of creating a second room (the
"new room/invite on every restart" complaint about bridges).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from mautrix.errors import MRoomInUse
from mautrix.types import RoomAlias, RoomCreatePreset, RoomID, UserID
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint, Network
from app.errors import RemoteError, SyncbotError
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.permissions import Level, Permissions
from app.slack.workspaces import Workspaces
from app.store.models_matrix import MatrixPortal
from app.store.syncs import SyncAdmin

log = logging.getLogger("syncbot.matrix.portals")

PORTAL_ROOM_VERSION = "11"
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"creating"}),
    "creating": frozenset({"active", "pending"}),
    "active": frozenset({"archived"}),
    "archived": frozenset({"active", "deleted"}),
    "deleted": frozenset(),
}


class PortalError(SyncbotError):
    """A portal operation not allowed in the portal's state."""


def check_transition(current: str, new: str) -> None:
    """Raise :class:`PortalError` unless ``current -> new`` is an edge of the machine."""
    if new not in TRANSITIONS.get(current, frozenset()):
        raise PortalError(f"a portal cannot go from {current} to {new}")


@dataclass(frozen=True, slots=True)
class PortalView:
    endpoint: str
    room_id: str | None
    state: str
    alias: str | None


class Portals:
    """Creates and tracks portal rooms."""

    def __init__(
        self,
        homeserver: Homeserver,
        sessions: sessionmaker[Session],
        syncs: SyncAdmin,
        workspaces: Workspaces | None,
        permissions: Permissions,
        *,
        invite: tuple[str, ...] = (),
    ) -> None:
        self._hs = homeserver
        self._sessions = sessions
        self._syncs = syncs
        self._workspaces = workspaces
        self._permissions = permissions
        self._invite = invite
        self._lock = asyncio.Lock()

    def get(self, endpoint: Endpoint) -> PortalView | None:
        with self._sessions() as s:
            row = s.get(MatrixPortal, str(endpoint))
            if row is None:
                return None
            return PortalView(row.endpoint, row.room_id, row.state, row.alias)

    def _set(self, endpoint: Endpoint, state: str, **values: str | None) -> None:
        with self._sessions() as s, s.begin():
            row = s.get(MatrixPortal, str(endpoint))
            if row is None:
                row = MatrixPortal(endpoint=str(endpoint), state="pending")
                s.add(row)
            if row.state != state:
                check_transition(row.state, state)
            row.state = state
            for key, value in values.items():
                setattr(row, key, value)

    async def transition(self, endpoint: Endpoint, state: str) -> None:
        """Archive, unarchive or delete a portal (validated against the state machine)."""
        await asyncio.to_thread(self._set, endpoint, state)

    async def set_archived(self, endpoint: Endpoint, archived: bool) -> bool:
        """Follow a Slack channel's archive/unarchive: portal state and a read-only room.

        An archived channel takes no messages, so its room takes none either: sending is
        raised to the bot's power level and lowered again on unarchive. Returns False when
        the channel has no active/archived portal (nothing to do).
        """
        view = self.get(endpoint)
        wanted, current = ("archived", "active") if archived else ("active", "archived")
        if view is None or view.state != current or not view.room_id:
            return False
        bot = self._hs.bot
        async with matrix_errors("portal power levels"):
            levels = await bot.get_power_levels(RoomID(view.room_id))
            levels.events_default = 100 if archived else 0
            await bot.set_power_levels(RoomID(view.room_id), levels)
        await self.transition(endpoint, wanted)
        return True

    async def ensure(self, endpoint: Endpoint) -> str:
        """The portal room of a Slack channel, created when missing.

        Raises:
            PortalError: the portal is archived or deleted, or the channel is not Slack's.
            RemoteError: Slack or the homeserver failed.
        """
        if endpoint.network is not Network.SLACK:
            raise PortalError(f"{endpoint} is not a Slack channel")
        async with self._lock:
            view = await asyncio.to_thread(self.get, endpoint)
            if view and view.state == "active" and view.room_id:
                return view.room_id
            if view and view.state in ("archived", "deleted"):
                raise PortalError(f"the portal of {endpoint} is {view.state}")
            if view is None or view.state == "pending":
                await asyncio.to_thread(self._set, endpoint, "creating")
            name, topic = await self._channel_info(endpoint)
            alias = self._hs.ids.portal_alias(endpoint)
            room = await self._create_or_adopt(alias, name, topic)
            await asyncio.to_thread(self._join_sync, endpoint, room)
            await asyncio.to_thread(
                self._set, endpoint, "active", room_id=room, alias=alias, name=name, topic=topic
            )
            log.info("portal active", extra={"endpoint": str(endpoint), "room": room})
            return room

    async def _channel_info(self, endpoint: Endpoint) -> tuple[str, str | None]:
        if self._workspaces is None:
            return endpoint.slack_channel, None
        api = self._workspaces.api(endpoint.slack_team)
        info = await api.call("conversations.info", channel=endpoint.slack_channel)
        channel = info.get("channel") or {}
        topic = (channel.get("topic") or {}).get("value") or None
        return str(channel.get("name") or endpoint.slack_channel), topic

    async def _create_or_adopt(self, alias: str, name: str, topic: str | None) -> str:
        # Resolving the alias first would make the homeserver ask us about it again (it is in
        # our namespace) while we hold the lock; an alias taken by an earlier, interrupted
        # creation shows up as M_ROOM_IN_USE instead, and then it resolves without a query.
        try:
            return await self._create(alias, name, topic)
        except RemoteError as exc:
            if not isinstance(exc.__cause__, MRoomInUse):
                raise
        async with matrix_errors("resolve alias"):
            found = await self._hs.bot.resolve_room_alias(RoomAlias(alias))
        log.info("adopted an existing portal room", extra={"alias": alias})
        return str(found.room_id)

    async def _create(self, alias: str, name: str, topic: str | None) -> str:
        invitees = [
            UserID(user)
            for user in self._invite
            if user.startswith("@") and self._permissions.level(user) >= Level.USER
        ]
        async with matrix_errors("create room"):
            room = await self._hs.bot.create_room(
                alias_localpart=alias[1:].partition(":")[0],
                preset=RoomCreatePreset.PRIVATE,
                name=f"#{name}",
                topic=topic,
                invitees=invitees,
                # Version 12 room ids carry no server part, which endpoint strings (and so
                # every sync) cannot hold yet; 11 is the newest version they can.
                room_version=PORTAL_ROOM_VERSION,
            )
        return str(RoomID(room))

    def _join_sync(self, endpoint: Endpoint, room: str) -> None:
        """Put the room in the channel's sync, creating a sync for the channel if needed."""
        room_endpoint = Endpoint.matrix(room)
        views = self._syncs.list()
        for view in views:
            members = {e for e, _ in view.endpoints}
            if str(room_endpoint) in members:
                return
            if str(endpoint) in members:
                self._syncs.add(view.name, room_endpoint)
                return
        name = f"portal-{endpoint.slack_team}-{endpoint.slack_channel}"
        if not any(v.name == name for v in views):
            self._syncs.create(name)
        self._syncs.add(name, endpoint)
        self._syncs.add(name, room_endpoint)
