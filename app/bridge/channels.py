"""A portal's channel info, read from Slack (``conversations.info``)."""

from __future__ import annotations

from app.core.endpoints import Endpoint
from app.matrix.portals import ChannelInfo, ChannelInfoSource
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
        return channel_info(info.get("channel") or {}, endpoint.slack_channel)

    return info_of
