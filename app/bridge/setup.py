"""Assembling the Slack <-> Matrix bridge on top of both adapters."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mautrix.types import RoomID
from sqlalchemy.orm import Session, sessionmaker

from app.bridge.backfill import PortalBackfill
from app.bridge.custom_emoji import SlackCustomEmoji
from app.bridge.ghost_profiles import ghost_profile_hook
from app.bridge.members import ChannelMembers
from app.bridge.spaces import WorkspaceSpaces
from app.bridge.workspace_bridge import WorkspaceBridge
from app.core.authors import AuthorDirectory
from app.core.endpoints import Endpoint, Network
from app.core.outbox import Outbox
from app.core.payloads import PostPayload
from app.core.ports import DeliveryTask
from app.core.workspaces import WorkspaceInfo
from app.errors import RemoteError
from app.matrix.commands import LoginRequest
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.notices import SenderNotices
from app.matrix.portals import Portals
from app.matrix.setup import MatrixAdapter
from app.settings import Settings
from app.slack.deliver import PuppetLost, SlackDeliverer
from app.slack.holds import hold_notice
from app.slack.inbound import EventTranslator
from app.slack.puppets import SlackPuppets
from app.slack.workspaces import Workspaces

log = logging.getLogger("syncbot.bridge")

EventHook = Callable[[dict[str, Any]], Awaitable[None]]

ARCHIVE_EVENTS = {
    "channel_archive": True,
    "group_archive": True,
    "channel_unarchive": False,
    "group_unarchive": False,
}


def archive_hook(portals: Portals) -> EventHook:
    """A Slack event hook: a channel's archive/unarchive makes its portal read-only/writable."""

    async def on_event(envelope: dict[str, Any]) -> None:
        event = envelope.get("event") or {}
        archived = ARCHIVE_EVENTS.get(str(event.get("type")))
        channel = event.get("channel")
        team = envelope.get("team_id")
        if archived is None or not isinstance(channel, str) or not team:
            return
        try:
            await portals.set_archived(Endpoint.slack(str(team), channel), archived)
        except Exception:
            # The relay still pauses/resumes the endpoint; the room state catches up later.
            log.warning("portal archive state not updated", exc_info=True)

    return on_event


def held_channel_notice(
    bridge: WorkspaceBridge, hs: Homeserver
) -> Callable[[DeliveryTask, RemoteError], Awaitable[None]]:
    """An ``Outbox.on_hold`` listener: a held Slack channel of a workspace logged in from
    Matrix is announced in each login's management room (its admins are there)."""

    async def on_hold(task: DeliveryTask, exc: RemoteError) -> None:
        if task.target.network is not Network.SLACK:
            return
        users = await asyncio.to_thread(bridge.users_of, task.target.slack_team)
        label = f"the Slack channel {task.target.slack_channel} ({task.target.slack_team})"
        text = hold_notice(task.target, exc, channel=label)
        for user in users:
            room = await asyncio.to_thread(bridge.management_room, user)
            if room is None:
                continue
            try:
                async with matrix_errors("management notice"):
                    await hs.bot.send_notice(RoomID(room), text)
            except RemoteError as err:
                log.warning("could not post a held-channel notice", extra={"error": str(err)})

    return on_hold


def puppet_lost_notice(hs: Homeserver) -> PuppetLost:
    """A ``SlackDeliverer.on_puppet_lost`` listener: the author hears in the room that their
    Slack token stopped working, was forgotten, and their message went out through the bot."""
    notices = SenderNotices(hs)

    async def on_lost(task: DeliveryTask, code: str) -> None:
        source = task.payload.source
        if source.network is not Network.MATRIX:
            return
        team = task.target.slack_team
        text = (
            f"⚠️ Slack no longer accepts your user token for {team} ({code}), so I forgot it: "
            "this was sent by the bridge bot under your name instead. Send `login token` in "
            "a DM with me to post as yourself again."
        )
        event_id = task.payload.source_native_id if isinstance(task.payload, PostPayload) else ""
        try:
            if event_id:
                await notices.tell(source.matrix_room, event_id, text)
            else:
                async with matrix_errors("puppet notice"):
                    await hs.bot.send_notice(RoomID(source.matrix_room), text)
        except RemoteError as exc:
            log.warning("could not tell of a lost user token", extra={"error": str(exc)})

    return on_lost


@dataclass
class SlackBridge:
    """The whole-workspace bridge (logins, syncs, portal auto-creation) as a runtime worker.

    Its resync of the logged-in workspaces starts once the homeserver answers (a hook of the
    Matrix adapter's ``on_connected``); stopping the worker stops the bridge's tasks.
    """

    workspace_bridge: WorkspaceBridge
    # Slack event hooks, in order; the workspace bridge's comes last, as it may ask Slack to
    # redeliver an event whose portal is still being created.
    slack_hooks: list[EventHook]
    # History copied into new portals (resumed at start).
    backfill: PortalBackfill | None = None

    async def start(self) -> None:
        """Nothing to do yet: the resync waits for the homeserver (see the class)."""

    async def stop(self) -> None:
        await self.workspace_bridge.stop()
        if self.backfill is not None:
            await self.backfill.stop()


def build_bridge(
    *,
    settings: Settings,
    sessions: sessionmaker[Session],
    matrix: MatrixAdapter,
    workspaces: Workspaces,
    authors: AuthorDirectory,
    connect_socket: Callable[[str], Awaitable[object]] | None = None,
    outbox: Outbox | None = None,
    slack_deliverer: SlackDeliverer | None = None,
    puppets: SlackPuppets | None = None,
) -> SlackBridge:
    """Plug the bridge into the Matrix adapter's login/logout hooks.

    Args:
        outbox: its held Slack channels are announced in the management rooms of the Matrix
            users who logged their workspace in.
        connect_socket: starts Socket Mode for a team (None without Socket Mode); the first
            thing a ``login app`` does, as in the seed: connect, then sync.
        slack_deliverer: posts with the Matrix users' own Slack tokens (``login token``); a
            token Slack stops accepting is announced to its owner in the room.
        puppets: those tokens: their owners' own DMs become their portals, and a workspace
            logged out forgets them.
    """
    hs = matrix.homeserver
    workspace_bridge = WorkspaceBridge(
        hs,
        sessions,
        portals=matrix.portals,
        invites=matrix.invites,
        members=ChannelMembers(hs, matrix.ghosts, authors, workspaces),
        workspaces=workspaces,
        conversation_count=settings.matrix_conversation_count,
        spaces=WorkspaceSpaces(hs, sessions, workspaces, fetch_avatar=matrix.ghosts.fetch_avatar),
        puppets=puppets,
    )
    backfill = PortalBackfill(
        sessions,
        deliverer=matrix.deliverer,
        translator=EventTranslator(workspaces.info),
        workspaces=workspaces,
        count=settings.matrix_backfill_messages,
        page_limit=settings.slack_history_limit,
        interval=settings.slack_history_interval,
        puppets=puppets,
    )
    # Custom Slack emoji reach Matrix as images (fetched under the avatar egress policy).
    matrix.deliverer.custom_emoji = SlackCustomEmoji(
        hs, sessions, workspaces, matrix.ghosts.fetch_avatar
    ).mxc
    # After the workspace bridge's hook: the user is invited before history arrives.
    matrix.portals.on_created.append(backfill.portal_created)
    workspace_bridge.on_message_portal.append(backfill.live_from)
    if connect_socket is not None:
        connect = connect_socket

        async def start_socket_mode(info: WorkspaceInfo, request: LoginRequest) -> None:
            await connect(info.team_id)

        matrix.on_login.append(start_socket_mode)
    matrix.on_login.append(workspace_bridge.on_login)
    matrix.on_puppet_login.append(workspace_bridge.on_puppet_login)
    forget = workspace_bridge.forget_workspace

    async def forget_logins(team_id: str) -> None:
        await asyncio.to_thread(forget, team_id)
        # Its Slack Connect portals go on through another logged-in workspace sharing them.
        await workspace_bridge.workspace_removed(team_id)
        if puppets is not None:
            await puppets.forget_team(team_id)

    matrix.on_logout.append(forget_logins)
    matrix.on_connected.append(workspace_bridge.start)
    matrix.on_connected.append(backfill.start)
    if outbox is not None:
        outbox.on_hold.append(held_channel_notice(workspace_bridge, hs))
    if slack_deliverer is not None:
        slack_deliverer.on_puppet_lost.append(puppet_lost_notice(hs))
    return SlackBridge(
        workspace_bridge=workspace_bridge,
        slack_hooks=[
            archive_hook(matrix.portals),
            ghost_profile_hook(matrix.ghosts, hs.ids, workspaces),
            workspace_bridge.on_slack_event,
        ],
        backfill=backfill,
    )
