"""A portal's channel info, read from Slack (``conversations.info``)."""

from __future__ import annotations

import asyncio
from typing import Any

from app.core.endpoints import Endpoint
from app.errors import RemoteError
from app.matrix.portals import ChannelInfo, ChannelInfoSource
from app.slack.profiles import profile_of
from app.slack.puppets import SlackPuppets
from app.slack.workspaces import Workspaces


def channel_info(channel: dict[str, object], fallback_name: str) -> ChannelInfo:
    """Name and topic of a ``conversations.info`` channel; the purpose stands in for a topic."""

    def value(key: str) -> str | None:
        field = channel.get(key)
        text = field.get("value") if isinstance(field, dict) else None
        return str(text) if text else None

    return ChannelInfo(
        name=str(channel.get("name") or fallback_name),
        topic=value("topic") or value("purpose"),
        archived=bool(channel.get("is_archived")),
    )


# What the bot is told of a conversation it cannot see (someone's own DM).
UNSEEN = frozenset({"channel_not_found", "not_in_channel"})


def slack_channel_info(
    workspaces: Workspaces, puppets: SlackPuppets | None = None
) -> ChannelInfoSource:
    """The portals' channel info source: the channel as its workspace's bot sees it, or, for
    a person's own DM the bot is not in, as the person logged in with ``login token`` does
    (the portal is then private to them)."""

    async def info_of(endpoint: Endpoint) -> ChannelInfo:
        api = workspaces.api(endpoint.slack_team)
        private = False
        try:
            info = await api.call("conversations.info", channel=endpoint.slack_channel)
        except RemoteError as exc:
            seen = await _as_a_member(puppets, endpoint) if exc.code in UNSEEN else None
            if seen is None:
                raise
            info, private = seen[1], True
        channel = info.get("channel") or {}
        if channel.get("is_im") and channel.get("user"):
            # A direct message has no name: the room names the other person.
            person = await api.call("users.info", user=str(channel["user"]))
            profile = profile_of(person.get("user") or {})
            return ChannelInfo(name=f"DM with {profile.name}", topic=None, private=private)
        name = str(channel.get("name") or "")
        if channel.get("is_mpim") and name.startswith("mpdm-"):
            # Slack names a group DM after its members' handles: mpdm-ada--bob--cy-1.
            people = name.removeprefix("mpdm-").rsplit("-", 1)[0].split("--")
            return ChannelInfo(name=f"Group DM: {', '.join(people)}", topic=None, private=private)
        return channel_info(channel, endpoint.slack_channel)

    return info_of


async def _as_a_member(
    puppets: SlackPuppets | None, endpoint: Endpoint
) -> tuple[str, dict[str, Any]] | None:
    """The first Matrix user logged in as a member of the conversation, and
    ``conversations.info`` as they see it."""
    if puppets is None:
        return None
    team = endpoint.slack_team
    for puppet in await asyncio.to_thread(puppets.of_team, team):
        client = await asyncio.to_thread(puppets.client, puppet.mxid, team)
        if client is None:
            continue
        try:
            info = await client.api.call("conversations.info", channel=endpoint.slack_channel)
        except RemoteError as exc:
            if exc.retryable:
                raise
            continue
        return puppet.mxid, info
    return None


async def private_owners(
    workspaces: Workspaces, puppets: SlackPuppets | None, endpoint: Endpoint
) -> list[str] | None:
    """The Matrix users whose own conversation ``endpoint`` is (the bot cannot see it, their
    tokens can; possibly nobody, once they logged out), or None for a conversation of the
    bot's."""
    if puppets is None:
        return None
    team = endpoint.slack_team
    try:
        await workspaces.api(team).call("conversations.info", channel=endpoint.slack_channel)
    except RemoteError as exc:
        if exc.code not in UNSEEN:
            raise
    else:
        return None
    owners = []
    for puppet in await asyncio.to_thread(puppets.of_team, team):
        client = await asyncio.to_thread(puppets.client, puppet.mxid, team)
        if client is None:
            continue
        try:
            await client.api.call("conversations.info", channel=endpoint.slack_channel)
        except RemoteError as exc:
            if exc.retryable:
                raise
            continue
        owners.append(puppet.mxid)
    return owners
