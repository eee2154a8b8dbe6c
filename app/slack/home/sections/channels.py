"""Home section "Channels": publish a channel to a group, subscribe, pause, stop, unpublish.

A published channel is a sync (see :mod:`app.store.groups`): once subscribed, messages flow
through the relay and the outbox like those of any other sync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from app.core.endpoints import Endpoint
from app.errors import RemoteError
from app.slack.home.blocks import (
    Block,
    actions,
    button,
    confirm_dialog,
    context,
    conversations_select,
    input_block,
    modal,
    mrkdwn,
    option,
    select_input,
)
from app.slack.home.kit import Click, ClickHandler, Form, OnClick, OnSubmit, Route, Section
from app.slack.home.section import Viewer
from app.slack.home.sections.groups import as_id
from app.store.groups import ChannelView, GroupError, Groups

if TYPE_CHECKING:
    from app.services import Services
    from app.slack.webapi import SlackApi

log = logging.getLogger("syncbot.slack.home.channels")

PUBLISH = "home.channels.publish"
SUBSCRIBE = "home.channels.subscribe"
PAUSE = "home.channels.pause"
RESUME = "home.channels.resume"
STOP = "home.channels.stop"
UNPUBLISH = "home.channels.unpublish"
EVERYONE = "*"


def channel_picker(label: str) -> Block:
    return input_block("channel", label, conversations_select(shared=False))


async def ready_channel(api: SlackApi, channel_id: str) -> str:
    """Make sure the bot is in the channel (joining a public one); return its name.

    Raises:
        GroupError: the channel cannot take part (unknown, archived, private without the bot).
    """
    try:
        info = (await api.call("conversations.info", channel=channel_id)).get("channel") or {}
    except RemoteError as exc:
        raise GroupError(f"syncbot cannot see that channel ({exc.code or 'error'})") from None
    if info.get("is_archived"):
        raise GroupError("that channel is archived")
    if info.get("is_im") or info.get("is_mpim"):
        raise GroupError("pick a channel, not a direct message")
    if not info.get("is_member"):
        if info.get("is_private"):
            raise GroupError("invite syncbot to that private channel first (/invite @syncbot)")
        try:
            await api.call("conversations.join", channel=channel_id)
        except RemoteError as exc:
            raise GroupError(f"syncbot could not join that channel ({exc.code})") from None
    return str(info.get("name") or channel_id)


class ChannelsSection(Section):
    key = "channels"
    explains = (GroupError,)

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self._groups = Groups(services.sessions)

    async def blocks(self, viewer: Viewer) -> list[Block]:
        mine = await asyncio.to_thread(self._groups.groups_of, viewer.team_id)
        memberships = [g for g in mine if g.my_status == "active"]
        if not memberships:
            return [
                mrkdwn(
                    "*Channels*\nCreate or join a group to publish channels to other workspaces.",
                    "home.channels.intro",
                )
            ]
        out: list[Block] = [
            mrkdwn(
                "*Channels*\nPublish a channel to a group; its workspaces subscribe with a "
                "channel of their own and the two stay in sync.",
                "home.channels.intro",
            ),
            actions(
                "home.channels.tools",
                *(
                    button(f"Publish to {g.name}", PUBLISH, str(g.id), style="primary")
                    for g in memberships[:25]
                ),
            ),
        ]
        for channel in await asyncio.to_thread(self._groups.channels_for, viewer.team_id):
            out.extend(_channel_blocks(channel))
        return out

    def routes(self) -> Iterable[Route]:
        groups = self._groups
        return [
            OnClick(PUBLISH, self._open_publish),
            OnSubmit(PUBLISH, self._publish, field="channel"),
            OnClick(SUBSCRIBE, self._open_subscribe),
            OnSubmit(SUBSCRIBE, self._subscribe, field="channel"),
            OnClick(PAUSE, self._own_change(lambda s, t: groups.set_status(s, t, "paused"))),
            OnClick(RESUME, self._own_change(lambda s, t: groups.set_status(s, t, "active"))),
            OnClick(STOP, self._stop),
            OnClick(UNPUBLISH, self._unpublish),
        ]

    async def _open_publish(self, click: Click) -> None:
        viewer = click.viewer
        group_id = as_id(click.value)
        mine = await asyncio.to_thread(self._groups.groups_of, viewer.team_id)
        group = next((g for g in mine if g.id == group_id), None)
        if group is None or group.my_status != "active":
            raise GroupError("your workspace is not a member of that group")
        everyone = option(f"Everyone in {group.name}", EVERYONE)
        others = [
            option(f"Only {m.name}", m.team_id)
            for m in group.members
            if m.status == "active" and m.team_id != viewer.team_id
        ]
        audience = select_input(
            "audience", "Who may subscribe", [everyone, *others[:99]], initial=everyone
        )
        view = modal(
            PUBLISH,
            "Publish a channel",
            [channel_picker("Channel"), audience],
            submit="Publish",
            metadata={"group": group_id},
        )
        await click.open(view)

    async def _publish(self, form: Form) -> None:
        viewer = form.viewer
        chosen = form.choice("audience")
        target = None if chosen in (None, EVERYONE) else chosen
        group_id = as_id(form.metadata.get("group"))
        channel_id = _picked_channel(form)
        name = await ready_channel(self.api(viewer), channel_id)
        await asyncio.to_thread(
            self._groups.publish,
            group_id,
            viewer.team_id,
            channel_id,
            channel_name=name,
            target_team=target,
            user_id=viewer.user_id,
        )
        teams = await asyncio.to_thread(self._groups.teams_of_group, group_id)
        await form.close()
        await self.changed(viewer, teams)

    async def _open_subscribe(self, click: Click) -> None:
        view = modal(
            SUBSCRIBE,
            "Subscribe",
            [
                mrkdwn("Messages in the channel you pick and the published one are synced."),
                channel_picker("Your channel"),
            ],
            submit="Subscribe",
            metadata={"sync": as_id(click.value)},
        )
        await click.open(view)

    async def _subscribe(self, form: Form) -> None:
        viewer = form.viewer
        sync_id = as_id(form.metadata.get("sync"))
        channel_id = _picked_channel(form)
        group_id = await asyncio.to_thread(self._groups.group_of, sync_id)
        await ready_channel(self.api(viewer), channel_id)
        await asyncio.to_thread(self._groups.subscribe, sync_id, viewer.team_id, channel_id)
        teams = await asyncio.to_thread(self._groups.teams_of_group, group_id)
        await form.close()
        await self.changed(viewer, teams)

    def _own_change(self, apply: Callable[[int, str], object]) -> ClickHandler:
        """A button that changes only the viewer's own channel."""

        async def handle(click: Click) -> None:
            await asyncio.to_thread(apply, as_id(click.value), click.viewer.team_id)
            await self.changed(click.viewer, [click.viewer.team_id])

        return handle

    async def _stop(self, click: Click) -> None:
        sync_id, team = as_id(click.value), click.viewer.team_id

        def work() -> set[str]:
            group_id = self._groups.group_of(sync_id)
            self._groups.stop(sync_id, team)
            return self._groups.teams_of_group(group_id)

        await self.changed(click.viewer, [team, *await asyncio.to_thread(work)])

    async def _unpublish(self, click: Click) -> None:
        team = click.viewer.team_id
        teams = await asyncio.to_thread(self._groups.unpublish, as_id(click.value), team)
        await self.changed(click.viewer, [team, *teams])


def _picked_channel(form: Form) -> str:
    channel_id = str(form.state("channel").get("selected_conversation") or "")
    if not channel_id:
        raise GroupError("pick a channel")
    return channel_id


def _channel_blocks(channel: ChannelView) -> list[Block]:
    audience = (
        f"only {channel.target_name}" if channel.direct else f"everyone in {channel.group_name}"
    )
    title = f"*#{channel.channel_name}* from {channel.publisher_name}, for {audience}"
    block_id = f"home.channels.sync.{channel.sync_id}"
    value = str(channel.sync_id)
    pause = (
        button("Resume", RESUME, value)
        if channel.my_status == "paused"
        else button("Pause", PAUSE, value)
    )
    if channel.mine:
        state = "" if channel.my_status == "active" else f" ({channel.my_status})"
        return [
            mrkdwn(f"{title}{state}", block_id),
            context(f"{channel.subscribers} subscribed channel(s)"),
            actions(
                f"{block_id}.manage",
                pause,
                button(
                    "Unpublish",
                    UNPUBLISH,
                    value,
                    style="danger",
                    confirm=confirm_dialog(
                        "Unpublish?", "Every subscribed channel stops syncing with this one."
                    ),
                ),
            ),
        ]
    if channel.my_endpoint:
        local = Endpoint.parse(channel.my_endpoint).slack_channel
        doing = {"active": "syncing"}.get(channel.my_status or "", channel.my_status)
        return [
            mrkdwn(f"{title}\nYour channel <#{local}> is {doing}.", block_id),
            actions(
                f"{block_id}.manage",
                pause,
                button(
                    "Stop",
                    STOP,
                    value,
                    style="danger",
                    confirm=confirm_dialog(
                        "Stop syncing?", f"<#{local}> stops syncing with this channel."
                    ),
                ),
            ),
        ]
    return [
        mrkdwn(title, block_id),
        actions(f"{block_id}.manage", button("Subscribe", SUBSCRIBE, value, style="primary")),
    ]
