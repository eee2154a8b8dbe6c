"""A portal's channel info, read from Slack (``conversations.info``)."""

from __future__ import annotations

from app.core.endpoints import Endpoint
from app.matrix.portals import ChannelInfo, ChannelInfoSource
from app.slack.profiles import profile_of
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


def slack_channel_info(workspaces: Workspaces) -> ChannelInfoSource:
    """The portals' channel info source: the channel as its workspace's bot sees it."""

    async def info_of(endpoint: Endpoint) -> ChannelInfo:
        api = workspaces.api(endpoint.slack_team)
        info = await api.call("conversations.info", channel=endpoint.slack_channel)
        channel = info.get("channel") or {}
        if channel.get("is_im") and channel.get("user"):
            # A direct message with the bot has no name: the room names the person.
            person = await api.call("users.info", user=str(channel["user"]))
            profile = profile_of(person.get("user") or {})
            return ChannelInfo(name=f"DM with {profile.name}", topic=None)
        name = str(channel.get("name") or "")
        if channel.get("is_mpim") and name.startswith("mpdm-"):
            # Slack names a group DM after its members' handles: mpdm-ada--bob--cy-1.
            people = name.removeprefix("mpdm-").rsplit("-", 1)[0].split("--")
            return ChannelInfo(name=f"Group DM: {', '.join(people)}", topic=None)
        return channel_info(channel, endpoint.slack_channel)

    return info_of
