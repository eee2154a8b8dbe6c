"""Portals: Matrix rooms created on demand for Slack channels.

The state machine is the seed's: pending -> creating -> active <-> archived, and
active/archived -> deleting -> deleted (the row is removed, so the channel may get a new portal
later). A portal is created when the homeserver asks for an alias in our namespace
(``#slack_t1_c1:server``, the appservice room query), for the channels of a logged-in workspace
(:mod:`app.bridge.workspace_bridge`), or by :meth:`Portals.ensure`. Creation is idempotent
across crashes: an existing alias is adopted instead of creating a second room (the "new
room/invite on every restart" complaint about bridges); a failed room creation is retried up to
three times. Name, topic and avatar follow the channel (:meth:`Portals.refresh`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mautrix.errors import MRoomInUse
from mautrix.types import ContentURI, RoomAlias, RoomCreatePreset, RoomID, UserID
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint, Network
from app.errors import RemoteError, SyncbotError
from app.matrix.ghosts import AvatarFetcher
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.permissions import Level, Permissions
from app.store import outbox_admin
from app.store.models import Workspace
from app.store.models_matrix import MatrixPortal, MatrixPortalInvite
from app.store.syncs import SyncAdmin, SyncAdminError

log = logging.getLogger("syncbot.matrix.portals")

PORTAL_ROOM_VERSION = "11"
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"creating"}),
    "creating": frozenset({"active", "pending"}),
    "active": frozenset({"archived", "deleting"}),
    "archived": frozenset({"active", "deleting", "deleted"}),
    "deleting": frozenset({"deleted"}),
    # A deleted portal may be created again (its row is gone by then; this is for callers
    # that keep a deleted row).
    "deleted": frozenset({"pending"}),
}
# The seed's failure recovery for portal creation: "room creation fails -> retry up to 3 times".
CREATE_ATTEMPTS = 3
# Localpart prefix of the placeholder room id a channel's messages wait under for its portal.
WAITING = "syncbot-waiting-portal."
CREATE_RETRY_DELAY = 0.25  # seconds, doubled per attempt
# Called with (channel endpoint, room id) once a portal has just become active.
CreatedHook = Callable[[Endpoint, str], Awaitable[None]]


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
    name: str | None = None
    topic: str | None = None
    avatar_source: str | None = None


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What a portal shows of its channel."""

    name: str
    topic: str | None
    archived: bool = False
    # A person's own conversation (seen only through their token): nobody else is invited.
    private: bool = False


# How a portal learns its channel's name and topic (the Slack side provides it: app.bridge).
ChannelInfoSource = Callable[[Endpoint], Awaitable[ChannelInfo]]


class Portals:
    """Creates and tracks portal rooms."""

    def __init__(
        self,
        homeserver: Homeserver,
        sessions: sessionmaker[Session],
        syncs: SyncAdmin,
        channel_info: ChannelInfoSource | None,
        permissions: Permissions,
        *,
        invite: tuple[str, ...] = (),
        fetch_avatar: AvatarFetcher | None = None,
        retry_delay: float = CREATE_RETRY_DELAY,
    ) -> None:
        self._hs = homeserver
        self._sessions = sessions
        self._syncs = syncs
        self._channel_info_of = channel_info
        self._permissions = permissions
        self._invite = invite
        self._fetch_avatar = fetch_avatar
        self._retry_delay = retry_delay
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[bool]] = set()
        # Channels whose new room is in their sync already (its hooks may still be running),
        # so an event whose wait ran out meanwhile adds no placeholder beside it. Guarded by
        # a thread lock: linking and reserving both run in worker threads.
        self._linking = threading.RLock()
        self._linked: set[str] = set()
        # Run, in order, after a portal became active: invites, member sync (workspace bridge).
        self.on_created: list[CreatedHook] = []
        # Run after a portal was deleted, with its former room (the workspace's space).
        self.on_deleted: list[CreatedHook] = []
        # The view a channel's portal is kept under (set by the Slack bridge: a Slack Connect
        # channel's one portal may be kept under another workspace's view of it).
        self.portal_view: Callable[[Endpoint], Awaitable[Endpoint]] | None = None

    async def ensure_for_alias(self, endpoint: Endpoint) -> str:
        """The homeserver asks about the alias of ``endpoint``'s portal: make it when missing.
        A shared channel's portal kept under another view gets this alias too, so the lookup
        finds the one portal instead of making a second room."""
        key = await self.portal_view(endpoint) if self.portal_view is not None else endpoint
        room = await self.ensure(key)
        if key != endpoint:
            localpart = self._hs.ids.portal_alias(endpoint)[1:].partition(":")[0]
            try:
                async with matrix_errors("portal alias"):
                    await self._hs.bot.add_room_alias(RoomID(room), localpart, override=True)
            except RemoteError as exc:
                log.warning("portal alias not added", extra={"error": str(exc)})
        return room

    def get(self, endpoint: Endpoint) -> PortalView | None:
        with self._sessions() as s:
            row = s.get(MatrixPortal, str(endpoint))
            if row is None:
                return None
            return _view(row)

    def counts(self) -> dict[str, int]:
        """Portals per state (the seed's ``portal_count`` health figure)."""
        with self._sessions() as s:
            rows = s.execute(
                select(MatrixPortal.state, func.count()).group_by(MatrixPortal.state)
            ).all()
        return {state: int(n) for state, n in rows}

    async def stop(self) -> None:
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def by_room(self, room_id: str) -> PortalView | None:
        """The portal whose room is ``room_id``, if any."""
        with self._sessions() as s:
            row = s.execute(
                select(MatrixPortal).where(MatrixPortal.room_id == room_id)
            ).scalar_one_or_none()
            return _view(row) if row is not None else None

    def other_views(self, endpoint: Endpoint) -> list[Endpoint]:
        """Other workspaces' views of ``endpoint``'s channel id that have a live portal (for a
        Slack Connect channel, whose id is the same in every workspace it is shared with)."""
        channel = endpoint.slack_channel
        with self._sessions() as s:
            rows = s.execute(
                select(MatrixPortal.endpoint).where(
                    MatrixPortal.endpoint.like(f"slack:%/{channel}"),
                    MatrixPortal.endpoint != str(endpoint),
                    MatrixPortal.state.in_(("creating", "active", "archived")),
                )
            ).scalars()
            return sorted(Endpoint.parse(e) for e in rows if e.endswith(f"/{channel}"))

    def of_team(self, team: str) -> list[Endpoint]:
        """The channels of workspace ``team`` that have a live portal."""
        with self._sessions() as s:
            rows = s.execute(
                select(MatrixPortal.endpoint).where(
                    MatrixPortal.endpoint.like(f"slack:{team}/%"),
                    MatrixPortal.state.in_(("active", "archived")),
                )
            ).scalars()
            return [Endpoint.parse(e) for e in rows]

    def move(self, old: Endpoint, new: Endpoint) -> bool:
        """Key a portal by another workspace's view of its Slack Connect channel (the view it
        had was removed): the portal row and its invite records, its place in the sync, the
        message map and the deliveries waiting for the old view all follow, so messages keep
        going both ways through the remaining installation.

        Returns:
            False when ``old`` has no portal or ``new`` has one already.
        """
        with self._sessions() as s, s.begin():
            row = s.get(MatrixPortal, str(old))
            if row is None or s.get(MatrixPortal, str(new)) is not None:
                return False
            s.add(
                MatrixPortal(
                    endpoint=str(new),
                    room_id=None,
                    alias=row.alias,
                    state=row.state,
                    name=row.name,
                    topic=row.topic,
                    avatar_source=row.avatar_source,
                    avatar_mxc=row.avatar_mxc,
                )
            )
            room_id = row.room_id
            s.flush()
            s.execute(
                update(MatrixPortalInvite)
                .where(MatrixPortalInvite.endpoint == str(old))
                .values(endpoint=str(new)),
                execution_options={"synchronize_session": False},
            )
            s.delete(row)
            s.flush()  # the room id is unique: free it before the new row takes it
            s.execute(
                update(MatrixPortal)
                .where(MatrixPortal.endpoint == str(new))
                .values(room_id=room_id),
                execution_options={"synchronize_session": False},
            )
        sync = self._syncs.sync_of(old)
        if sync is not None:
            if self._syncs.sync_of(new) is None:
                self._syncs.add(sync, new)
            self._syncs.remove(sync, old)
        outbox_admin.retarget(self._sessions, str(old), str(new))
        log.info("portal moved to another view", extra={"old": str(old), "new": str(new)})
        return True

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

        A new portal goes pending -> creating -> active; the ``on_created`` hooks (invites)
        run before this returns, so a message relayed next finds its readers invited.

        Raises:
            PortalError: the portal is archived or being deleted, or the channel is not Slack's.
            RemoteError: Slack or the homeserver failed (room creation after its retries).
        """
        if endpoint.network is not Network.SLACK:
            raise PortalError(f"{endpoint} is not a Slack channel")
        async with self._lock:
            view = await asyncio.to_thread(self.get, endpoint)
            if view and view.state == "active" and view.room_id:
                return view.room_id
            if view and view.state in ("archived", "deleting"):
                raise PortalError(f"the portal of {endpoint} is {view.state}")
            if view is not None and view.state == "deleted":
                await asyncio.to_thread(self._set, endpoint, "pending")
            await asyncio.to_thread(self._set, endpoint, "creating")
            try:
                info = await self._channel_info(endpoint)
                alias = self._hs.ids.portal_alias(endpoint)
                room = await self._create_with_retries(
                    alias, info.name, info.topic, private=info.private
                )
                await asyncio.to_thread(self._join_sync, endpoint, room)
            except BaseException:
                # Back to pending: the next message (or alias query) starts over, adopting
                # the alias if the room did get created.
                await asyncio.to_thread(self._set, endpoint, "pending")
                raise
            await asyncio.to_thread(
                self._set,
                endpoint,
                "active",
                room_id=room,
                alias=alias,
                name=info.name,
                topic=info.topic,
            )
            log.info(
                "portal active",
                extra={"endpoint": str(endpoint), "room": room, "channel_name": info.name},
            )
        if info.archived:
            await self.set_archived(endpoint, True)
        for hook in self.on_created:
            try:
                await hook(endpoint, room)
            except Exception:
                # Invites and members catch up on the next sync; the portal itself is fine.
                log.warning("portal creation hook failed", exc_info=True)
        # The avatar (a download and an upload) need not hold the first message back.
        task = asyncio.create_task(self._apply_avatar(endpoint, room, None))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return room

    async def _create_with_retries(
        self, alias: str, name: str, topic: str | None, *, private: bool = False
    ) -> str:
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return await self._create_or_adopt(alias, name, topic, private)
            except RemoteError as exc:
                if attempt == CREATE_ATTEMPTS or not exc.retryable:
                    raise
                log.warning(
                    "portal room creation failed; retrying",
                    extra={"alias": alias, "attempt": attempt, "error": str(exc)},
                )
                await asyncio.sleep(self._retry_delay * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    async def _channel_info(self, endpoint: Endpoint) -> ChannelInfo:
        if self._channel_info_of is None:
            return ChannelInfo(endpoint.slack_channel, None)
        return await self._channel_info_of(endpoint)

    async def refresh(self, endpoint: Endpoint) -> bool:
        """Make the room's name, topic and avatar those of the channel (and its workspace).

        Returns:
            True when something changed in the room.
        """
        view = await asyncio.to_thread(self.get, endpoint)
        if view is None or not view.room_id or view.state not in ("active", "archived"):
            return False
        info = await self._channel_info(endpoint)
        room = RoomID(view.room_id)
        changed = False
        async with matrix_errors("portal name and topic"):
            if info.name != view.name:
                await self._hs.bot.set_room_name(room, f"#{info.name}")
                changed = True
            if (info.topic or None) != (view.topic or None):
                await self._hs.bot.set_room_topic(room, info.topic or "")
                changed = True
        if changed:
            await asyncio.to_thread(
                self._set, endpoint, view.state, name=info.name, topic=info.topic
            )
            log.info("portal follows its channel", extra={"endpoint": str(endpoint)})
        return await self._apply_avatar(endpoint, view.room_id, view.avatar_source) or changed

    def _workspace_icon(self, team_id: str) -> str | None:
        with self._sessions() as s:
            return s.execute(
                select(Workspace.icon_url).where(Workspace.team_id == team_id)
            ).scalar_one_or_none()

    async def _apply_avatar(self, endpoint: Endpoint, room: str, current: str | None) -> bool:
        """The room avatar is the workspace icon (Slack channels have none of their own)."""
        if self._fetch_avatar is None:
            return False
        icon = await asyncio.to_thread(self._workspace_icon, endpoint.slack_team)
        if not icon or icon == current:
            return False
        try:
            data, mime = await self._fetch_avatar(icon)
            async with matrix_errors("portal avatar"):
                mxc = await self._hs.bot.upload_media(data, mime_type=mime, filename="avatar")
                await self._hs.bot.set_room_avatar(RoomID(room), ContentURI(mxc))
        except Exception as exc:
            # A room without its avatar is still a working portal; the next refresh retries.
            log.warning("portal avatar not set", extra={"room": room, "error": str(exc)})
            return False
        view = await asyncio.to_thread(self.get, endpoint)
        if view is not None:
            await asyncio.to_thread(
                self._set, endpoint, view.state, avatar_source=icon, avatar_mxc=str(mxc)
            )
        return True

    async def delete(self, endpoint: Endpoint) -> bool:
        """The seed's delete-portal: kick everyone, unlink the room, forget the portal.

        The Matrix users are kicked, ghosts leave, the alias is removed, the room leaves its
        sync and the bot leaves last; then the row (and its invite records) is deleted, so the
        channel gets a fresh portal if it is bridged again.

        Returns:
            False when the channel has no portal.
        """
        view = await asyncio.to_thread(self.get, endpoint)
        if view is None:
            return False
        if view.state in ("active", "archived"):
            await asyncio.to_thread(self._set, endpoint, "deleting")
        if view.room_id:
            await self._empty_room(view.room_id, view.alias)
            await asyncio.to_thread(self._leave_sync, view.room_id)
        await asyncio.to_thread(self._forget, endpoint)
        log.info("portal deleted", extra={"endpoint": str(endpoint), "room": view.room_id})
        if view.room_id:
            for hook in self.on_deleted:
                try:
                    await hook(endpoint, view.room_id)
                except Exception as exc:
                    log.warning("portal deletion hook failed", extra={"error": str(exc)})
        return True

    async def _empty_room(self, room_id: str, alias: str | None) -> None:
        room = RoomID(room_id)
        bot = self._hs.bot
        async with matrix_errors("portal members"):
            members = await bot.get_joined_members(room)
        for user in members:
            try:
                async with matrix_errors("portal cleanup"):
                    if user == self._hs.ids.bot:
                        continue
                    if self._hs.ids.is_ours(user):
                        await self._hs.intent(user).leave_room(room)
                    else:
                        await bot.kick_user(room, user, reason="portal deleted")
            except RemoteError as exc:
                log.warning("portal member not removed", extra={"error": str(exc)})
        if alias:
            async with matrix_errors("portal alias removal"):
                await bot.remove_room_alias(alias[1:].partition(":")[0])
        async with matrix_errors("portal leave"):
            await bot.leave_room(room)

    def _leave_sync(self, room_id: str) -> None:
        room = Endpoint.matrix(room_id)
        sync = self._syncs.sync_of(room)
        if sync is not None:
            try:
                self._syncs.remove(sync, room)
            except SyncAdminError:
                pass  # removed concurrently

    def _forget(self, endpoint: Endpoint) -> None:
        with self._linking:
            self._linked.discard(str(endpoint))
        with self._sessions() as s, s.begin():
            # Its invite records go with it: their foreign key cascades on delete.
            s.execute(delete(MatrixPortal).where(MatrixPortal.endpoint == str(endpoint)))

    async def _create_or_adopt(
        self, alias: str, name: str, topic: str | None, private: bool = False
    ) -> str:
        # Resolving the alias first would make the homeserver ask us about it again (it is in
        # our namespace) while we hold the lock; an alias taken by an earlier, interrupted
        # creation shows up as M_ROOM_IN_USE instead, and then it resolves without a query.
        try:
            return await self._create(alias, name, topic, private)
        except RemoteError as exc:
            if not isinstance(exc.__cause__, MRoomInUse):
                raise
        async with matrix_errors("resolve alias"):
            found = await self._hs.bot.resolve_room_alias(RoomAlias(alias))
        log.info("adopted an existing portal room", extra={"alias": alias})
        return str(found.room_id)

    async def _create(
        self, alias: str, name: str, topic: str | None, private: bool = False
    ) -> str:
        # A person's own DM is theirs: the users every portal invites are left out.
        invitees = [
            UserID(user)
            for user in self._invite
            if user.startswith("@") and self._permissions.level(user) >= Level.USER and not private
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

    def _adopt_waiting(self, endpoint: Endpoint, room: Endpoint, waiting: Endpoint) -> None:
        """The room exists: it takes the placeholder's place in the sync, and the messages
        that waited for it (and the copies made meanwhile) are addressed to it."""
        sync = _placeholder_sync(self._syncs, waiting)
        if sync is None:
            return
        if self._syncs.sync_of(room) is None:
            self._syncs.add(sync, room)
        moved = outbox_admin.retarget(self._sessions, str(waiting), str(room))
        self._syncs.remove(sync, waiting)
        log.info(
            "portal took over its waiting messages",
            extra={"endpoint": str(endpoint), "room": str(room), "count": moved},
        )

    def waiting_endpoint(self, endpoint: Endpoint) -> Endpoint:
        """The placeholder a channel's messages are addressed to while its portal is made."""
        team, channel = endpoint.slack_team.lower(), endpoint.slack_channel.lower()
        return Endpoint.matrix(f"!{WAITING}{team}.{channel}:{self._hs.ids.server_name}")

    @staticmethod
    def channel_waiting_at(target: Endpoint) -> Endpoint | None:
        """The Slack channel whose portal ``target`` (a placeholder) stands for, else None."""
        if target.network is not Network.MATRIX or not target.matrix_room.startswith(
            f"!{WAITING}"
        ):
            return None
        local = target.matrix_room[1 + len(WAITING) :].split(":", 1)[0]
        team, _, channel = local.partition(".")
        return Endpoint.slack(team.upper(), channel.upper()) if team and channel else None

    def reserve(self, endpoint: Endpoint) -> None:
        """The portal of ``endpoint`` is not there yet (the homeserver slow or down): put a
        placeholder for it in the channel's sync, so a message relayed now is kept in the
        outbox for the room and everything else it goes to is delivered at once.

        A room already linked (its creation hooks outlasting the wait) needs none: a message
        relayed now goes to it, and a placeholder beside it would be a second copy.
        """
        with self._linking:
            if str(endpoint) in self._linked:
                return
            self._join_sync(endpoint, self.waiting_endpoint(endpoint).matrix_room)

    def _join_sync(self, endpoint: Endpoint, room: str) -> None:
        with self._linking:
            self._join_sync_locked(endpoint, room)

    def _join_sync_locked(self, endpoint: Endpoint, room: str) -> None:
        # The portal is one more endpoint of a sync: the channel's own (curated) sync if it has
        # one, else a sync made for the portal — never a second code path for messages.
        room_endpoint = Endpoint.matrix(room)
        waiting = self.waiting_endpoint(endpoint)
        if room_endpoint != waiting:
            self._linked.add(str(endpoint))
            self._adopt_waiting(endpoint, room_endpoint, waiting)
        if self._syncs.sync_of(room_endpoint) is not None:
            return
        sync = self._syncs.sync_of(endpoint)
        if sync is not None:
            self._syncs.add(sync, room_endpoint)
            return
        name = f"portal-{endpoint.slack_team}-{endpoint.slack_channel}"
        try:
            self._syncs.create(name)
        except SyncAdminError:
            pass  # left over from an earlier portal of this channel
        self._syncs.add(name, endpoint)
        self._syncs.add(name, room_endpoint)


def _placeholder_sync(syncs: SyncAdmin, waiting: Endpoint) -> str | None:
    return syncs.sync_of(waiting)


def _view(row: MatrixPortal) -> PortalView:
    return PortalView(
        endpoint=row.endpoint,
        room_id=row.room_id,
        state=row.state,
        alias=row.alias,
        name=row.name,
        topic=row.topic,
        avatar_source=row.avatar_source,
    )
