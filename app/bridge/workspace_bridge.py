"""Whole-workspace bridging, as mautrix-slack does it after ``login app`` (seed §5.3, §5.4).

A Matrix user who logs a workspace in gets its ``MATRIX_CONVERSATION_COUNT`` most recent
channels (those the app's bot is in) as portals and is invited to each; a later message in a
channel of that workspace with no portal creates one (a message that cannot wait for it is
recorded at once and its Matrix copy waits in the outbox for the room). Every
portal is an endpoint of a sync (:class:`~app.store.syncs.SyncAdmin`, through
:class:`~app.matrix.portals.Portals`), so messages take the one relay/outbox path.

A person logged in with their own token (``login token``) also gets their own DMs and group
DMs as portals: Slack sends their messages as user events (``authorizations`` naming that
person, not the bot), the portal is created the same way, and only that person is invited
(nobody else, not even the users every portal invites; it is not added to the space).

A Slack Connect channel seen by several logged-in workspaces is one portal, kept under the
view that made it first (its other workspaces' users are invited to it); when that workspace
leaves, the portal moves to another logged-in workspace's view of the channel.

Invites go out once per (portal, user) (:class:`~app.matrix.invites.PortalInvites`): the
resync on every start re-invites nobody, least of all someone who left or declined.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from mautrix.types import EventType, RoomID
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.bridge.channels import private_owners
from app.bridge.members import ChannelMembers
from app.bridge.spaces import WorkspaceSpaces
from app.core.endpoints import Endpoint
from app.core.puppets import PuppetLogin
from app.core.workspaces import WorkspaceInfo
from app.errors import RemoteError, SyncbotError
from app.matrix.commands import LoginRequest
from app.matrix.event_content import as_content
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.invites import PortalInvites
from app.matrix.portals import PortalError, Portals
from app.slack.puppets import SlackPuppets
from app.slack.workspaces import Workspaces
from app.store.models_matrix import MatrixLogin, MatrixUser

log = logging.getLogger("syncbot.matrix.workspace")

# Message subtypes that are posts (the ones the relay syncs): only these create a portal.
POST_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "bot_message", "me_message"})
# Channel metadata changes Slack reports as message subtypes or events of their own.
METADATA_SUBTYPES = frozenset({"channel_topic", "channel_purpose", "channel_name", "group_topic"})
RENAME_EVENTS = frozenset({"channel_rename", "group_rename"})
MEMBERSHIP_EVENTS = frozenset({"member_joined_channel", "member_left_channel"})
# How long a Slack event may wait for its new portal before we let Slack redeliver it instead:
# Socket Mode and HTTP both want an answer within 3 seconds.
PORTAL_WAIT = 2.0
LIST_PAGES = 50  # conversations.list pages (200 each) read at most per sync


class WorkspaceBridge:
    """Logins, the initial and restart syncs, and portal auto-creation from Slack events."""

    def __init__(
        self,
        homeserver: Homeserver,
        sessions: sessionmaker[Session],
        *,
        portals: Portals,
        invites: PortalInvites,
        members: ChannelMembers,
        workspaces: Workspaces,
        conversation_count: int,
        portal_wait: float = PORTAL_WAIT,
        spaces: WorkspaceSpaces | None = None,
        puppets: SlackPuppets | None = None,
    ) -> None:
        self._hs = homeserver
        self._sessions = sessions
        self._portals = portals
        self._invites = invites
        self._members = members
        self._workspaces = workspaces
        self._count = conversation_count
        self._portal_wait = portal_wait
        self._spaces = spaces
        self._puppets = puppets
        self._tasks: set[asyncio.Task[Any]] = set()
        self._creating: dict[str, asyncio.Task[str]] = {}
        self._shared_locks: dict[str, asyncio.Lock] = {}
        # Completed workspace syncs (login and restart); tests and `status` read it.
        self.completed_syncs = 0
        # Called with (channel, message ts) when a message is about to make the channel's
        # portal: the backfill's cut-off, so the message is not read back as history too.
        self.on_message_portal: list[Callable[[Endpoint, str], None]] = []
        portals.on_created.append(self.portal_created)
        portals.portal_view = self.portal_view
        if spaces is not None:
            portals.on_deleted.append(spaces.remove)

    # --- who is logged in -------------------------------------------------------------------

    def record_login(self, user_id: str, team_id: str, management_room: str) -> None:
        with self._sessions() as s, s.begin():
            user = s.get(MatrixUser, user_id)
            if user is None:
                user = MatrixUser(mxid=user_id)
                s.add(user)
            user.management_room = management_room
            s.flush()  # the user row first: the login's foreign key points at it
            if s.get(MatrixLogin, (user_id, team_id)) is None:
                s.add(MatrixLogin(user_id=user_id, team_id=team_id))

    def forget_workspace(self, team_id: str) -> None:
        with self._sessions() as s, s.begin():
            s.execute(delete(MatrixLogin).where(MatrixLogin.team_id == team_id))

    def users_of(self, team_id: str) -> list[str]:
        with self._sessions() as s:
            return list(
                s.execute(
                    select(MatrixLogin.user_id)
                    .where(MatrixLogin.team_id == team_id)
                    .order_by(MatrixLogin.created_at)
                ).scalars()
            )

    def teams(self) -> list[str]:
        with self._sessions() as s:
            return sorted(set(s.execute(select(MatrixLogin.team_id)).scalars()))

    def management_room(self, user_id: str) -> str | None:
        with self._sessions() as s:
            user = s.get(MatrixUser, user_id)
            return user.management_room if user is not None else None

    # --- login and syncs --------------------------------------------------------------------

    async def on_login(self, info: WorkspaceInfo, request: LoginRequest) -> str:
        """The ``login app`` hook: remember the login, then sync in the background.

        The sync creates rooms and sends invites, which takes longer than an appservice
        transaction should: the result is reported in the management room when done.
        """
        await asyncio.to_thread(self.record_login, request.user_id, info.team_id, request.room_id)
        self._spawn(self._login_sync(info, request), name=f"matrix-login-sync-{info.team_id}")
        count = "all" if self._count < 0 else f"the {self._count} most recent"
        return f"Bridging {count} channels of {info.name} that the app is in…"

    async def _login_sync(self, info: WorkspaceInfo, request: LoginRequest) -> None:
        if self._spaces is not None:
            await self._quietly(self._spaces.invite(info.team_id, request.user_id), "space invite")
        try:
            bridged = await self.sync_workspace(info.team_id)
        except Exception as exc:
            log.warning("login sync failed", exc_info=True)
            text = f"Bridging {info.name} failed: {exc}. It is retried on the next start."
        else:
            if bridged:
                names = ", ".join(f"#{name}" for name, _ in bridged)
                text = (
                    f"Bridged {len(bridged)} channel(s) of {info.name}: {names}. "
                    "You are invited to their rooms."
                )
            else:
                text = f"{info.name} has no channel the app is in yet; invite it to one."
        await self._report(request.room_id, text, "login report")

    async def recent_channels(self, team_id: str) -> list[dict[str, Any]]:
        """The channels the app's bot is in, most recently active first, cut at the count."""
        api = self._workspaces.api(team_id)
        listed = await _conversations(api, "public_channel,private_channel")
        return await self._most_recent(api, [c for c in listed if c.get("is_member")])

    async def _most_recent(
        self, api: Any, conversations: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """``conversations``, most recently active first, cut at the count (all if -1)."""
        if not 0 <= self._count < len(conversations):
            return conversations
        latest = {c["id"]: await self._latest(api, c) for c in conversations}
        ordered = sorted(conversations, key=lambda c: latest[c["id"]], reverse=True)
        return ordered[: self._count]

    @staticmethod
    async def _latest(api: Any, channel: dict[str, Any]) -> float:
        """When the channel last saw a message (its creation time if never)."""
        try:
            history = await api.call("conversations.history", channel=channel["id"], limit=1)
            messages = history.get("messages") or []
            if messages:
                return float(messages[0].get("ts") or 0)
        except RemoteError:
            log.debug("channel history unavailable", extra={"channel": channel.get("id")})
        return float(channel.get("created") or 0)

    async def sync_workspace(self, team_id: str) -> list[tuple[str, str]]:
        """Portals for the recent channels of ``team_id``, its logged-in users invited.

        Existing portals are kept and only users never invited are invited; a channel that
        fails is skipped and tried again on the next sync.

        Returns:
            (channel name, room id) of every portal of the synced channels.
        """
        users = await asyncio.to_thread(self.users_of, team_id)
        if self._spaces is not None:
            await self._quietly(self._spaces.ensure(team_id, users), "workspace space")
        bridged: list[tuple[str, str]] = []
        for channel in await self.recent_channels(team_id):
            endpoint = Endpoint.slack(team_id, str(channel["id"]))
            # Slack Connect (conversation object: https://docs.slack.dev/apis/slack-connect).
            shared = bool(channel.get("is_ext_shared") or channel.get("is_shared"))
            try:
                before = await asyncio.to_thread(self._portals.get, endpoint)
                key, room = await self._portal_of(endpoint, shared)
                if key == endpoint and before is not None and before.state == "active":
                    # Renames and topic changes made while we were not listening.
                    await self._quietly(self._portals.refresh(endpoint), "portal refresh")
                    # A new portal's users were invited by its on_created hook already.
                    await self._invites.invite(endpoint, room, users)
            except (PortalError, RemoteError) as exc:
                log.warning(
                    "channel not bridged",
                    extra={"endpoint": str(endpoint), "error": str(exc)},
                )
                continue
            bridged.append((str(channel.get("name") or channel["id"]), room))
            if self._spaces is not None:
                await self._quietly(self._spaces.add(endpoint, room), "space child")
        self.completed_syncs += 1
        log.info("workspace synced", extra={"team_id": team_id, "portals": len(bridged)})
        return bridged

    async def resync(self) -> None:
        """Sync every logged-in workspace again (at start): new channels, nobody re-invited."""
        for team in await asyncio.to_thread(self.teams):
            try:
                await self.sync_workspace(team)
            except Exception:
                log.warning("workspace resync failed", extra={"team_id": team}, exc_info=True)

    def start(self) -> None:
        self._spawn(self.resync(), name="matrix-workspace-resync")

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def portal_created(self, endpoint: Endpoint, room: str) -> None:
        """Portals hook: invite the workspace's users, then fill the room with its members;
        a person's own DM invites that person alone."""
        try:
            owners = await private_owners(self._workspaces, self._puppets, endpoint)
        except Exception as exc:
            # Whose it is unknown: inviting everyone could show someone's DM to others.
            log.warning("portal owner unknown; nobody invited", extra={"error": str(exc)})
            return
        if owners is not None:
            # Someone's own conversation: theirs alone (nobody, if they logged out meanwhile).
            await self._invites.invite(endpoint, room, owners)
            return
        users = await asyncio.to_thread(self.users_of, endpoint.slack_team)
        await self._invites.invite(endpoint, room, users)
        if self._spaces is not None and users:
            await self._quietly(self._spaces.add(endpoint, room), "space child")
        self._spawn(
            self._quietly(self._members.sync(endpoint, room), "portal member sync"),
            name=f"matrix-members-{endpoint}",
        )

    # --- a person's own DMs (login token) ----------------------------------------------------

    async def _logged_in_as(self, team_id: str, slack_user: str) -> bool:
        if self._puppets is None:
            return False
        puppet = await asyncio.to_thread(self._puppets.of_slack_user, team_id, slack_user)
        return puppet is not None

    async def on_puppet_login(self, who: PuppetLogin, request: LoginRequest) -> str:
        """The ``login token`` hook: their recent DMs become portals, in the background (the
        result is told in the management room)."""
        self._spawn(self._own_dms_sync(who, request), name=f"matrix-own-dms-{who.team_id}")
        count = "all" if self._count < 0 else f"the {self._count} most recent"
        return f"Bridging {count} of your direct messages…"

    async def _own_dms_sync(self, who: PuppetLogin, request: LoginRequest) -> None:
        try:
            bridged = await self.sync_own_dms(request.user_id, who.team_id)
            text = (
                f"Bridged {len(bridged)} of your direct message(s) in {who.team_name}. "
                "You are invited to their rooms."
                if bridged
                else f"You have no direct messages in {who.team_name} to bridge yet."
            )
        except Exception as exc:
            log.warning("own DMs sync failed", exc_info=True)
            text = f"Bridging your direct messages failed: {exc}. A new message still bridges."
        await self._report(request.room_id, text, "own DMs report")

    async def _report(self, room: str, text: str, what: str) -> None:
        """Tell the DM how a login went; a homeserver away loses the notice, not the login."""
        content = {"msgtype": "m.notice", "body": text, "m.mentions": {}}
        try:
            async with matrix_errors(what):
                await self._hs.bot.send_message_event(
                    RoomID(room), EventType.ROOM_MESSAGE, as_content(content)
                )
        except RemoteError:
            log.warning("login notice not sent", extra={"room": room, "notice": what})

    async def own_dms(self, mxid: str, team_id: str) -> list[dict[str, Any]]:
        """The person's DMs and group DMs without the app's bot (``conversations.list`` with
        their token), most recently active first, cut at the count."""
        if self._puppets is None:
            return []
        client = await asyncio.to_thread(self._puppets.client, mxid, team_id)
        if client is None:
            return []
        bot = (await asyncio.to_thread(self._workspaces.info, team_id)).bot_user_id
        api = client.api
        own = []
        for conv in await _conversations(api, "im,mpim"):
            if conv.get("is_im"):
                if conv.get("user") == bot:
                    continue  # the DM with the bot has its shared portal
            else:
                members = await api.call("conversations.members", channel=conv["id"], limit=200)
                if bot in (members.get("members") or []):
                    continue  # a group DM with the bot: a bot event, the shared portal
            own.append(conv)
        return await self._most_recent(api, own)

    async def sync_own_dms(self, mxid: str, team_id: str) -> list[str]:
        """Portals for the person's recent DMs, that person invited (never anyone else).

        Returns:
            The room ids of the DMs' portals.
        """
        rooms = []
        for conv in await self.own_dms(mxid, team_id):
            endpoint = Endpoint.slack(team_id, str(conv["id"]))
            try:
                room = await self._portals.ensure(endpoint)
                # A portal made earlier (by a message) invites them now, once.
                await self._invites.invite(endpoint, room, [mxid])
            except (PortalError, RemoteError) as exc:
                log.warning(
                    "direct message not bridged",
                    extra={"endpoint": str(endpoint), "error": str(exc)},
                )
                continue
            rooms.append(room)
        return rooms

    # --- Slack events -------------------------------------------------------------------------

    async def on_slack_event(self, envelope: dict[str, Any]) -> None:
        """A Slack event hook (HTTP and Socket Mode), run before the relay records the event.

        A portal that cannot be made within the ack's budget (slow, or the homeserver down)
        does not hold the event back: a placeholder takes its place in the sync, the event is
        recorded, and its Matrix copy waits in the outbox until the room exists.
        """
        event = envelope.get("event") or {}
        team = envelope.get("team_id") or event.get("team")
        if event.get("type") == "app_uninstalled" and isinstance(team, str):
            await self._quietly(self.workspace_removed(team), "shared portals move")
            return
        channel = event.get("channel")
        if isinstance(channel, dict):  # channel_rename carries the channel object
            channel = channel.get("id")
        if not isinstance(team, str) or not isinstance(channel, str):
            return
        if not channel.startswith(("C", "G", "D")):
            return  # D: a direct message with the bot, bridged like a channel
        kind = event.get("type")
        subtype = event.get("subtype")
        metadata = kind in RENAME_EVENTS or (kind == "message" and subtype in METADATA_SUBTYPES)
        post = kind == "message" and subtype in POST_SUBTYPES
        membership = kind in MEMBERSHIP_EVENTS and bool(event.get("user"))
        if not (metadata or post or membership):
            return  # an event portals ignore: no database query on this hot path
        endpoint = Endpoint.slack(team, channel)
        person = _through_a_person(envelope)
        if person is not None:
            # Someone's own DM (a user event): a message makes its portal, nothing else does,
            # and only while they are logged in here.
            if post and await self._logged_in_as(team, person):
                await self._ensure_for_message(endpoint, ts=_ts_of(event))
            return
        # Asked each time, not cached: a login made by another process counts at once.
        if not await asyncio.to_thread(self.users_of, team):
            return  # not a logged-in workspace: only curated syncs
        if metadata:
            await self._quietly(self._portals.refresh(endpoint), "portal refresh")
        elif post:
            shared = envelope.get("is_ext_shared_channel") is True
            await self._ensure_for_message(endpoint, shared, ts=_ts_of(event))
        else:
            view = await asyncio.to_thread(self._portals.get, endpoint)
            if view is None or view.state != "active" or not view.room_id:
                return
            if kind == "member_joined_channel":
                await self._members.join(endpoint, view.room_id, str(event["user"]))
            else:
                await self._members.leave(endpoint, view.room_id, str(event["user"]))

    # --- Slack Connect: one portal per shared channel ----------------------------------------

    async def _portal_of(self, endpoint: Endpoint, shared: bool) -> tuple[Endpoint, str]:
        """The portal of a channel, made when missing: (the endpoint it is kept under, room).

        A Slack Connect channel keeps its one id in every workspace it is shared with, and each
        logged-in workspace sees it: it gets one portal, kept under the view that had it first
        (the others' users are invited to it), never one per workspace.
        """
        if not shared:
            return endpoint, await self._portals.ensure(endpoint)
        # One at a time per channel id: two installations report the same first message.
        async with self._shared_locks.setdefault(endpoint.slack_channel, asyncio.Lock()):
            key = await asyncio.to_thread(self._shared_key, endpoint)
            room = await self._portals.ensure(key)
        if key != endpoint:
            users = await asyncio.to_thread(self.users_of, endpoint.slack_team)
            await self._invites.invite(key, room, users)
        return key, room

    async def portal_view(self, endpoint: Endpoint) -> Endpoint:
        """The view ``endpoint``'s portal is kept under (a portal alias lookup asks): another
        workspace's, when the channel is shared with it and its portal is there; then the
        users of ``endpoint``'s workspace are invited to it."""
        key = await asyncio.to_thread(self._shared_key, endpoint)
        if key == endpoint or not await self._shared_with(endpoint):
            return endpoint
        view = await asyncio.to_thread(self._portals.get, key)
        if view is not None and view.state == "active" and view.room_id:
            users = await asyncio.to_thread(self.users_of, endpoint.slack_team)
            await self._quietly(self._invites.invite(key, view.room_id, users), "portal invite")
        return key

    def _shared_key(self, endpoint: Endpoint) -> Endpoint:
        own = self._portals.get(endpoint)
        if own is not None and own.state in ("creating", "active", "archived"):
            return endpoint
        others = self._portals.other_views(endpoint)
        return others[0] if others else endpoint

    async def workspace_removed(self, team: str) -> None:
        """A workspace left (``logout``, uninstall): each portal it kept for a Slack Connect
        channel moves to the view of another logged-in workspace sharing the channel, so the
        conversation goes on through that installation."""
        others = [t for t in await asyncio.to_thread(self.teams) if t != team]
        if not others:
            return
        for endpoint in await asyncio.to_thread(self._portals.of_team, team):
            for other in others:
                view = Endpoint.slack(other, endpoint.slack_channel)
                if await self._shared_with(view):
                    await asyncio.to_thread(self._portals.move, endpoint, view)
                    break

    async def _shared_with(self, view: Endpoint) -> bool:
        """Whether ``view``'s workspace sees the channel as a Slack Connect channel."""
        try:
            info = await self._workspaces.api(view.slack_team).call(
                "conversations.info", channel=view.slack_channel
            )
        except (RemoteError, SyncbotError):
            return False
        channel = info.get("channel") or {}
        return bool(channel.get("is_ext_shared") or channel.get("is_shared"))

    async def _ensure_for_message(
        self, endpoint: Endpoint, shared: bool = False, *, ts: str | None = None
    ) -> None:
        view = await asyncio.to_thread(self._portals.get, endpoint)
        if view is not None and view.state in ("active", "archived", "deleting"):
            return
        if ts is not None:
            for hook in self.on_message_portal:
                hook(endpoint, ts)
        if shared and await self._invited_to_shared(endpoint):
            return  # the channel's one portal is another workspace's view's
        key = f"shared:{endpoint.slack_channel}" if shared else str(endpoint)
        task = self._creating.get(key)
        if task is None:
            task = self._spawn(self._room_of(endpoint, shared), name=f"matrix-portal-{key}")
            self._creating[key] = task
            task.add_done_callback(lambda _: self._creating.pop(key, None))
            log.info("creating a portal for a message", extra={"endpoint": key})
        try:
            await asyncio.wait_for(asyncio.shield(task), self._portal_wait)
            if shared:
                # Made for another workspace's report of the same message, maybe.
                await self._invited_to_shared(endpoint)
        except TimeoutError:
            # Slow, or the homeserver down: the event is recorded now (whatever else it goes
            # to is delivered at once) and its Matrix copy waits in the outbox for the room.
            log.info("portal not ready; its messages wait for it", extra={"endpoint": key})
            await asyncio.to_thread(self._reserve, endpoint, shared)
        except PortalError:
            return
        except RemoteError as exc:
            if exc.retryable:
                log.warning(
                    "portal not created yet; its messages wait for it",
                    extra={"endpoint": key, "error": str(exc)},
                )
                await asyncio.to_thread(self._reserve, endpoint, shared)
                return
            log.warning("portal not created", extra={"endpoint": key, "error": str(exc)})

    async def _invited_to_shared(self, endpoint: Endpoint) -> bool:
        """Invite ``endpoint``'s workspace users to the portal its shared channel has under
        another workspace's view; False when there is none."""
        key = await asyncio.to_thread(self._shared_key, endpoint)
        view = await asyncio.to_thread(self._portals.get, key)
        if key == endpoint or view is None or not view.room_id:
            return False
        if view.state == "active":
            users = await asyncio.to_thread(self.users_of, endpoint.slack_team)
            await self._quietly(self._invites.invite(key, view.room_id, users), "portal invite")
        return True

    async def _room_of(self, endpoint: Endpoint, shared: bool) -> str:
        return (await self._portal_of(endpoint, shared))[1]

    def _reserve(self, endpoint: Endpoint, shared: bool) -> None:
        # A shared channel's messages wait under the view its one portal is being made for.
        self._portals.reserve(self._shared_key(endpoint) if shared else endpoint)

    @staticmethod
    async def _quietly(coro: Coroutine[Any, Any, Any], what: str) -> None:
        try:
            await coro
        except Exception as exc:
            log.warning(f"{what} failed", extra={"error": str(exc)})


def _through_a_person(envelope: dict[str, Any]) -> str | None:
    """The Slack user whose token Slack sent the event for (rather than for the bot)."""
    auths = envelope.get("authorizations") or []
    first = auths[0] if auths and isinstance(auths[0], dict) else {}
    user = first.get("user_id")
    return str(user) if first.get("is_bot") is False and user else None


async def _conversations(api: Any, types: str) -> list[dict[str, Any]]:
    """Every unarchived conversation of ``types`` the token sees, up to ``LIST_PAGES`` pages."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(LIST_PAGES):
        page = await api.call(
            "conversations.list", types=types, exclude_archived="true", limit=200, cursor=cursor
        )
        found += page.get("channels") or []
        cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            break
    return found


def _ts_of(event: dict[str, Any]) -> str | None:
    ts = event.get("ts")
    return str(ts) if ts else None
