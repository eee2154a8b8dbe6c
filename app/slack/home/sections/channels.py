"""Home section "Channels": publish a channel to a group, subscribe, pause, stop, unpublish.

A published channel is a sync (see :mod:`app.store.groups`): once subscribed, messages flow
through the relay and the outbox like those of any other sync.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from app.core.endpoints import Endpoint
from app.errors import RemoteError
from app.slack.home.section import Block, HomeRefresher, Viewer, viewer_of
from app.slack.home.sections.blocks import (
    actions,
    button,
    context,
    metadata,
    modal,
    mrkdwn,
    option,
    select_input,
    submitted,
)
from app.slack.home.sections.groups import (
    as_id,
    click_handler,
    explain,
    settle_submission,
    show,
)
from app.slack.workspaces import Workspaces
from app.store.groups import ChannelView, GroupError, Groups

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from app.services import Services

log = logging.getLogger("syncbot.slack.home.channels")

PUBLISH = "home.channels.publish"
SUBSCRIBE = "home.channels.subscribe"
PAUSE = "home.channels.pause"
RESUME = "home.channels.resume"
STOP = "home.channels.stop"
UNPUBLISH = "home.channels.unpublish"
EVERYONE = "*"


def channel_picker(label: str) -> Block:
    return {
        "type": "input",
        "block_id": "channel",
        "label": {"type": "plain_text", "text": label},
        "element": {
            "type": "conversations_select",
            "action_id": "value",
            "filter": {
                "include": ["public", "private"],
                "exclude_external_shared_channels": True,
                "exclude_bot_users": True,
            },
        },
    }


async def ready_channel(workspaces: Workspaces, team_id: str, channel_id: str) -> str:
    """Make sure the bot is in the channel (joining a public one); return its name.

    Raises:
        GroupError: the channel cannot take part (unknown, archived, private without the bot).
    """
    api = workspaces.api(team_id)
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


class ChannelsSection:
    key = "channels"

    def __init__(self, services: Services) -> None:
        self._groups = Groups(services.sessions)
        self._workspaces = services.slack.workspaces

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin

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

    def register(self, bolt: AsyncApp, home: HomeRefresher) -> None:
        workspaces = self._workspaces
        groups = self._groups

        @bolt.action(PUBLISH)
        async def open_publish(
            ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any
        ) -> None:
            await ack()
            viewer = viewer_of(context)
            try:
                group_id = as_id(action.get("value"))
                mine = await asyncio.to_thread(groups.groups_of, viewer.team_id)
                group = next((g for g in mine if g.id == group_id), None)
                if group is None or group.my_status != "active":
                    raise GroupError("your workspace is not a member of that group")
            except GroupError as exc:
                await explain(workspaces, body, exc)
                return
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
            await show(workspaces, body, view)

        @bolt.view(PUBLISH)
        async def publish(ack: Any, view: dict[str, Any], context: Any) -> None:
            viewer = viewer_of(context)
            chosen = (submitted(view, "audience").get("selected_option") or {}).get("value")
            target = None if chosen in (None, EVERYONE) else str(chosen)

            async def work() -> set[str]:
                group_id = as_id(metadata(view).get("group"))
                channel_id = _picked_channel(view)
                name = await ready_channel(workspaces, viewer.team_id, channel_id)
                await asyncio.to_thread(
                    groups.publish,
                    group_id,
                    viewer.team_id,
                    channel_id,
                    channel_name=name,
                    target_team=target,
                    user_id=viewer.user_id,
                )
                return await asyncio.to_thread(groups.teams_of_group, group_id)

            await settle_submission(ack, home, viewer, "channel", work())

        @bolt.action(SUBSCRIBE)
        async def open_subscribe(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
            await ack()
            try:
                sync_id = as_id(action.get("value"))
            except GroupError as exc:
                await explain(workspaces, body, exc)
                return
            view = modal(
                SUBSCRIBE,
                "Subscribe",
                [
                    mrkdwn("Messages in the channel you pick and the published one are synced."),
                    channel_picker("Your channel"),
                ],
                submit="Subscribe",
                metadata={"sync": sync_id},
            )
            await show(workspaces, body, view)

        @bolt.view(SUBSCRIBE)
        async def subscribe(ack: Any, view: dict[str, Any], context: Any) -> None:
            viewer = viewer_of(context)

            async def work() -> set[str]:
                sync_id = as_id(metadata(view).get("sync"))
                channel_id = _picked_channel(view)
                group_id = await asyncio.to_thread(groups.group_of, sync_id)
                await ready_channel(workspaces, viewer.team_id, channel_id)
                await asyncio.to_thread(groups.subscribe, sync_id, viewer.team_id, channel_id)
                return await asyncio.to_thread(groups.teams_of_group, group_id)

            await settle_submission(ack, home, viewer, "channel", work())

        def change(apply: Any) -> Any:
            """A button that changes only the viewer's own channel."""

            async def act(sync_id: int, viewer: Viewer) -> list[str]:
                await asyncio.to_thread(apply, sync_id, viewer.team_id)
                return [viewer.team_id]

            return click_handler(workspaces, home, act)

        async def stop(sync_id: int, viewer: Viewer) -> list[str]:
            def work() -> set[str]:
                group_id = groups.group_of(sync_id)
                groups.stop(sync_id, viewer.team_id)
                return groups.teams_of_group(group_id)

            return [viewer.team_id, *await asyncio.to_thread(work)]

        async def unpublish(sync_id: int, viewer: Viewer) -> list[str]:
            teams = await asyncio.to_thread(groups.unpublish, sync_id, viewer.team_id)
            return [viewer.team_id, *teams]

        bolt.action(PAUSE)(change(lambda s, t: groups.set_status(s, t, "paused")))
        bolt.action(RESUME)(change(lambda s, t: groups.set_status(s, t, "active")))
        bolt.action(STOP)(click_handler(workspaces, home, stop))
        bolt.action(UNPUBLISH)(click_handler(workspaces, home, unpublish))


def _picked_channel(view: dict[str, Any]) -> str:
    channel_id = str(submitted(view, "channel").get("selected_conversation") or "")
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
                    confirm=(
                        "Unpublish?",
                        "Every subscribed channel stops syncing with this one.",
                    ),
                ),
            ),
        ]
    if channel.my_endpoint:
        local = Endpoint.parse(channel.my_endpoint).slack_channel
        state = {"active": "syncing"}.get(channel.my_status or "", channel.my_status)
        return [
            mrkdwn(f"{title}\nYour channel <#{local}> is {state}.", block_id),
            actions(
                f"{block_id}.manage",
                pause,
                button(
                    "Stop",
                    STOP,
                    value,
                    style="danger",
                    confirm=("Stop syncing?", f"<#{local}> stops syncing with this channel."),
                ),
            ),
        ]
    return [
        mrkdwn(title, block_id),
        actions(f"{block_id}.manage", button("Subscribe", SUBSCRIBE, value, style="primary")),
    ]
