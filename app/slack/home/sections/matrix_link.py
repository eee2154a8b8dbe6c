"""App Home: link a synced Slack channel to a Matrix room, or unlink one.

Linking is the ``link`` bot command seen from Slack: the same :func:`app.matrix.commands.link_room`
resolves the alias, has the bridge bot join, refuses encrypted rooms and adds the room to the
channel's sync. The homeserver may take longer than Slack's 3 seconds, so the modal is answered
at once with a "linking" view that is updated with the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from app.core.endpoints import Endpoint, EndpointError, Network
from app.errors import SyncbotError
from app.matrix.commands import link_room, unlink_room
from app.services import Services
from app.slack import mrkdwn
from app.slack.home.section import Block, HomeRefresher, Viewer
from app.slack.home.sections.access import (
    REFUSED,
    Background,
    admin_or_refuse,
    admin_viewer,
    answer_in_time,
    call_slack,
    modal_updater,
    notice_view,
    refuse,
)
from app.slack.home.sections.blocks import context, header, plain_text
from app.slack.home.sections.scope import SyncedChannel, refresh_after_change, synced_channels

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from app.matrix.setup import MatrixAdapter

log = logging.getLogger("syncbot.slack.home.matrix")

OPEN_LINK = "home.matrix_link.open_link"
UNLINK = "home.matrix_link.unlink"
LINK_VIEW = "home.matrix_link.link"
MAX_ROOMS = 10  # the home tab is shared by every section (100 blocks in all)


def _rooms(channel: SyncedChannel) -> list[str]:
    rooms = []
    for endpoint in channel.others:
        try:
            parsed = Endpoint.parse(endpoint)
        except EndpointError:
            continue
        if parsed.network is Network.MATRIX:
            rooms.append(parsed.matrix_room)
    return rooms


def link_view(bot: str) -> Block:
    return {
        "type": "modal",
        "callback_id": LINK_VIEW,
        "title": plain_text("Link a Matrix room"),
        "submit": plain_text("Link"),
        "close": plain_text("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "channel",
                "label": plain_text("Synced channel"),
                "element": {
                    "type": "conversations_select",
                    "action_id": "channel",
                    "filter": {"include": ["public", "private"], "exclude_bot_users": True},
                },
            },
            {
                "type": "input",
                "block_id": "room",
                "label": plain_text("Matrix room"),
                "hint": plain_text(
                    f"A room id (!abc:server) or alias (#name:server). The bridge bot {bot} "
                    "joins it: invite it first if the room is invite-only. Encrypted rooms "
                    "cannot be bridged."
                ),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "room",
                    "max_length": 255,
                    "placeholder": plain_text("#room:example.org"),
                },
            },
        ],
    }


class MatrixLinkSection:
    key = "matrix_link"

    def __init__(self, services: Services) -> None:
        self._services = services
        # Links still running after their modal was answered (a slow homeserver).
        self.background = Background()

    @property
    def _adapter(self) -> MatrixAdapter | None:
        return self._services.extras.get("matrix")

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin and self._services.settings.matrix_enabled

    async def blocks(self, viewer: Viewer) -> list[Block]:
        blocks: list[Block] = [
            header("Matrix rooms"),
            context(
                "A Matrix room linked to a synced channel takes part in that channel's sync, "
                "both ways."
            ),
        ]
        if self._adapter is None:
            blocks.append(
                {
                    "type": "section",
                    "text": {
                        "type": "mrkdwn",
                        "text": "_The Matrix bridge is configured but not running here._",
                    },
                }
            )
            return blocks
        channels = await asyncio.to_thread(
            synced_channels, self._services.sessions, viewer.team_id
        )
        linked = 0
        for channel in channels:
            for room in _rooms(channel):
                if linked >= MAX_ROOMS:
                    break
                linked += 1
                blocks.append(
                    {
                        "type": "section",
                        "block_id": f"home.matrix_link.room.{linked}",
                        "text": {
                            "type": "mrkdwn",
                            "text": f"<#{channel.channel_id}> ↔ `{mrkdwn.escape(room)}`\n"
                            f"sync {mrkdwn.escape(channel.sync_name)}",
                        },
                        "accessory": {
                            "type": "button",
                            "action_id": UNLINK,
                            "text": plain_text("Unlink"),
                            "value": room,
                            "confirm": {
                                "title": plain_text("Unlink this room?"),
                                "text": {
                                    "type": "mrkdwn",
                                    "text": "Messages stop flowing between the room and the "
                                    "sync. Nothing already posted is removed.",
                                },
                                "confirm": plain_text("Unlink"),
                                "deny": plain_text("Keep"),
                            },
                        },
                    }
                )
        if not linked:
            text = (
                "_No Matrix room is linked yet._"
                if channels
                else "_No channel of this workspace is in a sync yet: sync one first._"
            )
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
        if channels:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": "home.matrix_link.actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": OPEN_LINK,
                            "text": plain_text("Link a Matrix room"),
                        }
                    ],
                }
            )
        return blocks

    def register(self, bolt: AsyncApp, home: HomeRefresher) -> None:
        bolt.action(OPEN_LINK)(self._open_link)
        bolt.action(UNLINK)(self._unlink(home))
        bolt.view(LINK_VIEW)(self._link(home))

    # -- handlers -----------------------------------------------------------------------------

    async def _open_link(self, ack: Any, body: dict[str, Any], context: Any) -> None:
        await ack()
        viewer = admin_viewer(context)
        adapter = self._adapter
        if viewer is None or adapter is None:
            await refuse(self._services, body)
            return
        await call_slack(
            self._services,
            viewer,
            "views.open",
            trigger_id=body["trigger_id"],
            view=link_view(adapter.homeserver.ids.bot),
        )

    def _link(self, home: HomeRefresher) -> Any:
        async def handler(ack: Any, body: dict[str, Any], context: Any) -> None:
            viewer = admin_viewer(context)
            if viewer is None:
                await ack(response_action="errors", errors={"room": REFUSED})
                return
            adapter = self._adapter
            if adapter is None:
                await ack(
                    response_action="errors", errors={"room": "The Matrix bridge is not running."}
                )
                return
            view = body.get("view") or {}
            values = (view.get("state") or {}).get("values") or {}
            channel = ((values.get("channel") or {}).get("channel") or {}).get(
                "selected_conversation"
            )
            ref = str(((values.get("room") or {}).get("room") or {}).get("value") or "").strip()
            try:
                endpoint = Endpoint.slack(viewer.team_id, str(channel or ""))
            except EndpointError:
                await ack(response_action="errors", errors={"channel": "Pick a channel."})
                return
            sync = await asyncio.to_thread(self._services.syncs.sync_of, endpoint)
            if sync is None:
                await ack(
                    response_action="errors",
                    errors={"channel": "This channel is not in a sync: sync it first."},
                )
                return
            if not ref.startswith(("!", "#")) or ":" not in ref:
                await ack(
                    response_action="errors",
                    errors={"room": "Type a room id (!abc:server) or alias (#name:server)."},
                )
                return

            async def work() -> Block:
                try:
                    room = await link_room(
                        adapter.homeserver, self._services.syncs, ref, sync, join=True
                    )
                except SyncbotError as exc:  # refused, no such sync, homeserver failing
                    log.info(
                        "matrix link refused", extra={"team": viewer.team_id, "error": str(exc)}
                    )
                    return notice_view(
                        "Not linked",
                        f"Could not link {mrkdwn.escape(ref)}: {mrkdwn.escape(str(exc))}",
                    )
                log.info("matrix room linked", extra={"team": viewer.team_id, "sync": sync})
                await refresh_after_change(home, self._services.sessions, viewer, [sync])
                return notice_view(
                    "Linked", f"`{mrkdwn.escape(room)}` now takes part in <#{channel}>'s sync."
                )

            pending = notice_view("Linking…", f"Linking `{mrkdwn.escape(ref)}` to <#{channel}>…")
            later = modal_updater(self._services, viewer, view.get("id"), "link")
            await answer_in_time(
                ack, work(), pending=pending, later=later, background=self.background
            )

        return handler

    def _unlink(self, home: HomeRefresher) -> Any:
        async def handler(ack: Any, body: dict[str, Any], context: Any) -> None:
            await ack()
            viewer = await admin_or_refuse(self._services, body, context)
            if viewer is None:
                return
            room = str(body["actions"][0].get("value") or "")
            try:
                endpoint = Endpoint.matrix(room)
            except EndpointError:
                return
            sync = await asyncio.to_thread(self._services.syncs.sync_of, endpoint)
            channels = await asyncio.to_thread(
                synced_channels, self._services.sessions, viewer.team_id
            )
            # Only a room in a sync of this workspace's channels: other syncs are not theirs.
            if sync is None or not any(c.sync_name == sync for c in channels):
                log.warning("unlink of a room outside the workspace's syncs refused")
                return
            await unlink_room(self._services.syncs, room)
            log.info("matrix room unlinked", extra={"team": viewer.team_id, "sync": sync})
            # Only the room left the sync: its Slack workspaces are the same as before.
            await refresh_after_change(home, self._services.sessions, viewer, [sync])

        return handler


__all__ = ["MatrixLinkSection"]
