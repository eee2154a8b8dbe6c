"""App Home: link a synced Slack channel to a Matrix room, or unlink one.

Linking is the ``link`` bot command seen from Slack: the same ``link_room`` (reached through the
core's :class:`~app.core.links.RoomLinks` port, so Slack code never imports Matrix code)
resolves the alias, has the bridge bot join, refuses encrypted rooms and adds the room to the
channel's sync. The homeserver may take longer than Slack's 3 seconds, so the modal is answered
at once with a "linking" view that is updated with the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from app.core.endpoints import Endpoint, EndpointError, Network
from app.core.links import RoomLinks
from app.errors import SyncbotError
from app.slack import mrkdwn
from app.slack.home.blocks import (
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    conversations_select,
    header,
    input_block,
    modal,
    notice_view,
    section,
    text_element,
)
from app.slack.home.kit import Click, Form, OnClick, OnSubmit, Route, Section
from app.slack.home.section import Viewer
from app.slack.home.sections.scope import SyncedChannel, refresh_after_change, synced_channels

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
    room = text_element(action_id="room", max_length=255, placeholder="#room:example.org")
    return modal(
        LINK_VIEW,
        "Link a Matrix room",
        [
            input_block("channel", "Synced channel", conversations_select(action_id="channel")),
            input_block(
                "room",
                "Matrix room",
                room,
                hint=f"A room id (!abc:server) or alias (#name:server). The bridge bot {bot} "
                "joins it: invite it first if the room is invite-only. Encrypted rooms cannot "
                "be bridged.",
            ),
        ],
        submit="Link",
    )


def _room_block(channel: SyncedChannel, room: str, index: int) -> Block:
    unlink = button(
        "Unlink",
        UNLINK,
        room,
        confirm=confirm_dialog(
            "Unlink this room?",
            "Messages stop flowing between the room and the sync. Nothing already posted is "
            "removed.",
            yes="Unlink",
            no="Keep",
            style=None,
        ),
    )
    return section(
        f"<#{channel.channel_id}> ↔ `{mrkdwn.escape(room)}`\n"
        f"sync {mrkdwn.escape(channel.sync_name)}",
        f"home.matrix_link.room.{index}",
        accessory=unlink,
    )


class MatrixLinkSection(Section):
    key = "matrix_link"

    @property
    def _adapter(self) -> RoomLinks | None:
        return self.services.matrix_links

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin and self.services.settings.matrix_enabled

    async def blocks(self, viewer: Viewer) -> list[Block]:
        blocks: list[Block] = [
            header("Matrix rooms"),
            context(
                "A Matrix room linked to a synced channel takes part in that channel's sync, "
                "both ways."
            ),
        ]
        if self._adapter is None:
            blocks.append(section("_The Matrix bridge is configured but not running here._"))
            return blocks
        channels = await asyncio.to_thread(synced_channels, self.services.sessions, viewer.team_id)
        rooms = [(channel, room) for channel in channels for room in _rooms(channel)]
        blocks += [_room_block(c, room, i) for i, (c, room) in enumerate(rooms[:MAX_ROOMS], 1)]
        if not rooms:
            text = (
                "_No Matrix room is linked yet._"
                if channels
                else "_No channel of this workspace is in a sync yet: sync one first._"
            )
            blocks.append(section(text))
        if channels:
            blocks.append(
                actions("home.matrix_link.actions", button("Link a Matrix room", OPEN_LINK))
            )
        return blocks

    def routes(self) -> Iterable[Route]:
        return [
            OnClick(OPEN_LINK, self._open_link),
            OnClick(UNLINK, self._unlink),
            OnSubmit(LINK_VIEW, self._link),
        ]

    # -- handlers -----------------------------------------------------------------------------

    async def _open_link(self, click: Click) -> None:
        adapter = self._adapter
        if adapter is None:
            await click.refuse()
            return
        await click.open(link_view(adapter.bot))

    async def _link(self, form: Form) -> None:
        viewer = form.viewer
        adapter = self._adapter
        if adapter is None:
            await form.error("room", "The Matrix bridge is not running.")
            return
        channel = form.state("channel").get("selected_conversation")
        ref = form.text("room").strip()
        try:
            endpoint = Endpoint.slack(viewer.team_id, str(channel or ""))
        except EndpointError:
            await form.error("channel", "Pick a channel.")
            return
        sync = await asyncio.to_thread(self.services.syncs.sync_of, endpoint)
        if sync is None:
            await form.error("channel", "This channel is not in a sync: sync it first.")
            return
        if not ref.startswith(("!", "#")) or ":" not in ref:
            await form.error("room", "Type a room id (!abc:server) or alias (#name:server).")
            return

        async def work() -> Block:
            try:
                room = await adapter.link(ref, sync)
            except SyncbotError as exc:  # refused, no such sync, homeserver failing
                log.info("matrix link refused", extra={"team": viewer.team_id, "error": str(exc)})
                return notice_view(
                    "Not linked", f"Could not link {mrkdwn.escape(ref)}: {mrkdwn.escape(str(exc))}"
                )
            log.info("matrix room linked", extra={"team": viewer.team_id, "sync": sync})
            await refresh_after_change(self.home, self.services.sessions, viewer, [sync])
            return notice_view(
                "Linked", f"`{mrkdwn.escape(room)}` now takes part in <#{channel}>'s sync."
            )

        pending = notice_view("Linking…", f"Linking `{mrkdwn.escape(ref)}` to <#{channel}>…")
        await form.answer_in_time(work(), pending=pending, what="link")

    async def _unlink(self, click: Click) -> None:
        viewer = click.viewer
        room = click.value
        try:
            endpoint = Endpoint.matrix(room)
        except EndpointError:
            return
        sync = await asyncio.to_thread(self.services.syncs.sync_of, endpoint)
        channels = await asyncio.to_thread(synced_channels, self.services.sessions, viewer.team_id)
        # Only a room in a sync of this workspace's channels: other syncs are not theirs.
        if sync is None or not any(c.sync_name == sync for c in channels):
            log.warning("unlink of a room outside the workspace's syncs refused")
            return
        await asyncio.to_thread(self.services.syncs.remove, sync, endpoint)
        log.info("matrix room unlinked", extra={"team": viewer.team_id, "sync": sync})
        # Only the room left the sync: its Slack workspaces are the same as before.
        await refresh_after_change(self.home, self.services.sessions, viewer, [sync])


__all__ = ["MatrixLinkSection"]
