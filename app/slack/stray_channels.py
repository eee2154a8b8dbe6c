"""Channels the bot was added to that no sync uses: it says why it is there, then leaves.

Leaving at once would break the App Home flow for private channels (an admin invites the bot,
then publishes or subscribes the channel), so the bot posts one short note on joining and the
maintenance tick lets it leave — with a goodbye — only when no sync has taken the channel
within the grace period. Workspaces bridged whole to Matrix (``login app``) are exempt: there
every channel the bot is in is bridged on purpose.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.errors import SyncbotError
from app.slack.workspaces import Workspaces
from app.store.models import SyncEndpoint, Workspace
from app.store.models_matrix import MatrixLogin
from app.store.models_presence import StrayChannel
from app.store.relay_store import insert_ignore

log = logging.getLogger("syncbot.slack.stray_channels")

GRACE = timedelta(minutes=30)
HELLO = (
    "Hi! I keep channels in sync across workspaces. An admin can publish this channel or "
    "subscribe it to a published one from my App Home. If nothing uses this channel within "
    "{minutes} minutes, I'll leave on my own."
)
GOODBYE = (
    "No sync uses this channel, so I'm leaving. Publish or subscribe it from my App Home "
    "whenever you like; I'll join again by myself."
)


class StrayChannels:
    def __init__(
        self, sessions: sessionmaker[Session], workspaces: Workspaces, *, grace: timedelta = GRACE
    ) -> None:
        self._sessions = sessions
        self._workspaces = workspaces
        self.grace = grace
        self._notes: set[asyncio.Task[None]] = set()

    async def wait_idle(self) -> None:
        """Wait for the notes still being posted (tests, shutdown)."""
        while self._notes:
            await asyncio.gather(*list(self._notes), return_exceptions=True)

    async def on_event(self, payload: dict[str, Any]) -> None:
        """``SlackEvents.event_hooks`` entry: notice the bot joining or leaving a channel."""
        membership = self._workspaces.bot_membership(payload)
        if membership is None:
            return
        kind, team, channel = membership
        if kind == "member_left_channel":
            await asyncio.to_thread(self._forget, team, channel)
            return
        if await asyncio.to_thread(self._record_if_stray, team, channel):
            await self._say(
                team, channel, HELLO.format(minutes=int(self.grace.total_seconds() // 60))
            )

    def _needed(self, s: Session, team: str, channel: str) -> bool:
        endpoint = str(Endpoint.slack(team, channel))
        in_sync = s.execute(
            select(SyncEndpoint.id).where(SyncEndpoint.endpoint == endpoint).limit(1)
        ).first()
        bridged = s.execute(
            select(MatrixLogin.team_id).where(MatrixLogin.team_id == team).limit(1)
        )
        return in_sync is not None or bridged.first() is not None

    def _record_if_stray(self, team: str, channel: str) -> bool:
        with self._sessions() as s, s.begin():
            workspace = _workspace_id(s, team)
            if workspace is None or self._needed(s, team, channel):
                return False
            s.execute(
                insert_ignore(s, StrayChannel.__table__).values(
                    workspace_id=workspace, channel_id=channel, joined_at=datetime.now(UTC)
                )
            )
            return True

    def _forget(self, team: str, channel: str) -> None:
        with self._sessions() as s, s.begin():
            workspace = _workspace_id(s, team)
            if workspace is not None:
                _drop(s, workspace, channel)

    def overdue(self, *, now: datetime | None = None) -> list[tuple[str, str]]:
        """(team, channel) still unused after the grace period; rows now in use are dropped."""
        cutoff = (now or datetime.now(UTC)) - self.grace
        leave: list[tuple[str, str]] = []
        with self._sessions() as s, s.begin():
            rows = s.execute(
                select(StrayChannel.workspace_id, StrayChannel.channel_id, Workspace.team_id)
                .join(Workspace, Workspace.id == StrayChannel.workspace_id)
                .where(StrayChannel.joined_at <= cutoff, Workspace.status == "active")
            ).all()
            for workspace, channel, team in rows:
                if self._needed(s, team, channel):
                    _drop(s, workspace, channel)
                else:
                    leave.append((team, channel))
        return leave

    async def sweep(self, *, now: datetime | None = None) -> int:
        """Leave every overdue channel politely; returns how many were left."""
        left = 0
        for team, channel in await asyncio.to_thread(self.overdue, now=now):
            await self._say(team, channel, GOODBYE)
            try:
                await self._workspaces.api(team).call("conversations.leave", channel=channel)
            except SyncbotError as exc:
                # Kept: the next tick tries again (an API outage must not strand the bot).
                log.warning("could not leave a channel", extra={"team": team, "error": str(exc)})
                continue
            await asyncio.to_thread(self._forget, team, channel)
            left += 1
        return left

    async def _say(self, team: str, channel: str, text: str) -> None:
        try:
            await self._workspaces.api(team).call("chat.postMessage", channel=channel, text=text)
        except SyncbotError as exc:
            log.info("could not post a presence note", extra={"team": team, "error": str(exc)})


def _workspace_id(s: Session, team: str) -> int | None:
    return s.execute(select(Workspace.id).where(Workspace.team_id == team)).scalar()


def _drop(s: Session, workspace: int, channel: str) -> None:
    s.execute(
        delete(StrayChannel).where(
            StrayChannel.workspace_id == workspace, StrayChannel.channel_id == channel
        )
    )
