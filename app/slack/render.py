"""Rendering a post body for one target workspace: mentions mapped, broadcasts contained."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core import richtext
from app.core.endpoints import Endpoint, EndpointError, Network
from app.slack import mrkdwn
from app.slack.mentions import MentionMapper
from app.slack.workspaces import UnknownWorkspace, Workspaces
from app.store.models import SyncEndpoint

MAX_MENTIONS = 50  # beyond this, mentions render as plain names (no directory storms)


class SlackRenderer:
    def __init__(
        self, workspaces: Workspaces, mentions: MentionMapper, sessions: sessionmaker[Session]
    ) -> None:
        self._workspaces = workspaces
        self._mentions = mentions
        self._sessions = sessions

    async def render(
        self,
        tree: richtext.Node,
        *,
        source: Endpoint,
        target_team: str,
        target_channel: str,
        allow_broadcast: bool,
    ) -> str:
        users: dict[str, str] = {}
        for mention in richtext.mentions(tree)[:MAX_MENTIONS]:
            if mention.user_id in users:
                continue
            if source.network is Network.SLACK:
                users[mention.user_id] = await self._user(source, mention, target_team)
            elif mention.name:
                # From another network only the name travels: map it here if it is unique.
                local = await asyncio.to_thread(self._mentions.by_name, target_team, mention.name)
                users[mention.user_id] = f"<@{local}>" if local else ""
        wanted = {
            n.channel_id for n in richtext.walk(tree) if isinstance(n, richtext.ChannelMention)
        }
        # Most messages mention no channel: skip the thread hop and the session then.
        channels = (
            await asyncio.to_thread(self._channels, wanted, source, target_team, target_channel)
            if wanted and source.network is Network.SLACK
            else {}
        )

        def user(m: richtext.UserMention) -> str:
            return users.get(m.user_id) or mrkdwn.escape(f"@{m.name or m.user_id}")

        def channel(m: richtext.ChannelMention) -> str:
            local = channels.get(m.channel_id)
            return f"<#{local}>" if local else mrkdwn.escape(f"#{m.name or 'channel'}")

        def broadcast(b: richtext.Broadcast) -> str:
            # Another workspace's @here must not ping this one unless the sync says so.
            return f"<!{b.kind}>" if allow_broadcast else f"@{b.kind}"

        return mrkdwn.render(
            tree, mrkdwn.Renderers(user=user, channel=channel, broadcast=broadcast)
        )

    async def _user(
        self, source: Endpoint, mention: richtext.UserMention, target_team: str
    ) -> str:
        source_team = source.slack_team
        try:
            local = await self._mentions.map_user(source_team, mention.user_id, target_team)
        except UnknownWorkspace:
            local = None
        if local:
            return f"<@{local}>"
        name = mention.name
        origin = ""
        try:
            profile = await self._mentions.profiles.get(source_team, mention.user_id)
            name = name or (profile.name if profile else "")
            origin = self._workspaces.info(source_team).name
        except UnknownWorkspace:
            pass
        label = f"@{name or mention.user_id}" + (f" ({origin})" if origin else "")
        return mrkdwn.escape(label)

    def _channels(
        self, wanted: set[str], source: Endpoint, target_team: str, target_channel: str
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._sessions() as s:
            for cid in wanted:
                try:
                    mentioned = Endpoint.slack(source.slack_team, cid)
                except EndpointError:
                    continue
                if mentioned == source:
                    out[cid] = target_channel
                    continue
                sync_id = s.execute(
                    select(SyncEndpoint.sync_id).where(SyncEndpoint.endpoint == str(mentioned))
                ).scalar_one_or_none()
                if sync_id is None:
                    continue
                for endpoint in s.execute(
                    select(SyncEndpoint.endpoint).where(SyncEndpoint.sync_id == sync_id)
                ).scalars():
                    ep = Endpoint.parse(endpoint)
                    if ep.network is Network.SLACK and ep.slack_team == target_team:
                        out[cid] = ep.slack_channel
        return out
