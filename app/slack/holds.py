"""The Slack side of held targets: tell the workspace's admins, resume when the bot is back.

When a channel's deliveries are held (see :mod:`app.core.holds`) — the bot was removed from a
private channel it cannot rejoin, or Slack kept failing — the workspace's installer (else its
admins and owners) gets a direct message from the bot saying which channel and what to do. When
the bot is back in the channel (``member_joined_channel`` of the bot user, after someone invited
it), the channel's backlog is made due at once and delivered in order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.dispatch import Dispatcher
from app.core.endpoints import Endpoint, Network
from app.core.ports import DeliveryTask
from app.errors import RemoteError
from app.slack.workspaces import Workspaces
from app.store import outbox_admin
from app.store.models import Workspace

log = logging.getLogger("syncbot.slack.holds")

# At most this many admins are told when the installer is unknown.
MAX_ADMINS_TOLD = 5


def hold_notice(target: Endpoint, exc: RemoteError, *, channel: str | None = None) -> str:
    """The admin-facing text for a held channel (``channel``: how to name it, a Slack
    channel mention by default)."""
    channel = channel or f"<#{target.slack_channel}>"
    if exc.code == "not_in_channel":
        return (
            f":warning: syncbot was removed from {channel} and cannot rejoin it by itself. "
            "Messages from the other synced channels are kept and will be posted, in order, "
            f"as soon as someone runs `/invite @syncbot` in {channel}."
        )
    return (
        f":warning: syncbot cannot post to {channel} right now ({exc.code or exc}). "
        "Messages for it are kept and retried; `syncbot status` shows the backlog."
    )


class SlackHolds:
    """Admin notices for held Slack channels and their resumption."""

    def __init__(
        self, sessions: sessionmaker[Session], workspaces: Workspaces, dispatcher: Dispatcher
    ) -> None:
        self._sessions = sessions
        self._workspaces = workspaces
        self._dispatcher = dispatcher

    async def on_hold(self, task: DeliveryTask, exc: RemoteError) -> None:
        """``Outbox.on_hold`` listener: DM the admins of the held channel's workspace."""
        if task.target.network is not Network.SLACK:
            return
        team = task.target.slack_team
        if exc.code in ("invalid_auth", "account_inactive", "token_revoked"):
            return  # nobody can be told through a workspace that refuses our token
        api = self._workspaces.api(team)
        text = hold_notice(task.target, exc)
        for user in await self._admins(team):
            try:
                opened = await api.call("conversations.open", users=user)
                dm = (opened.get("channel") or {}).get("id")
                if dm:
                    await api.call("chat.postMessage", channel=dm, text=text)
            except RemoteError as err:
                log.warning(
                    "could not tell an admin of a held channel",
                    extra={"team": team, "error": err.code or str(err)},
                )

    async def _admins(self, team: str) -> list[str]:
        installer = await asyncio.to_thread(self._installer, team)
        if installer:
            return [installer]
        try:
            data = await self._workspaces.api(team).call("users.list", limit=200)
        except RemoteError:
            return []
        admins = [
            str(u["id"])
            for u in data.get("members") or []
            if (u.get("is_admin") or u.get("is_owner")) and not u.get("is_bot")
        ]
        return admins[:MAX_ADMINS_TOLD]

    def _installer(self, team: str) -> str | None:
        with self._sessions() as s:
            return s.execute(
                select(Workspace.installed_by_user_id).where(Workspace.team_id == team)
            ).scalar()

    async def on_event(self, payload: dict[str, Any]) -> None:
        """``SlackEvents.event_hooks`` entry: the bot is back in a channel -> its backlog goes."""
        joined = self._workspaces.bot_membership(payload)
        if joined is None or joined.kind != "member_joined_channel":
            return
        target = str(Endpoint.slack(joined.team, joined.channel))
        uids = await asyncio.to_thread(outbox_admin.resume, self._sessions, target)
        if uids:
            log.info("bot back in channel: resuming", extra={"target": target, "count": len(uids)})
            await self._dispatcher.after_commit(uids)
