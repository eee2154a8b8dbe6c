"""The App Home part that says which of the workspace's channels have deliveries waiting.

A channel is listed while its oldest pending delivery keeps failing (held, see
:mod:`app.core.holds`): typically the bot was removed from a private channel, or Slack refused
posts for a while. It tells the admin what waits and what to do; the list empties by itself once
the deliveries go out. Shown to the workspace's admins only; it has no buttons.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from app.core.endpoints import Endpoint, Network
from app.errors import SyncbotError
from app.slack.home.blocks import Block, context, header, section
from app.slack.home.kit import Route, Section
from app.slack.home.section import Viewer
from app.slack.mrkdwn import escape
from app.store.outbox_admin import HeldTarget, held_targets_of

if TYPE_CHECKING:
    from app.core.ports import DeliveryTask
    from app.errors import RemoteError
    from app.slack.home.section import HomeRefresher
    from app.slack.workspaces import Workspaces

# At most this many channels are listed (a home view has a block budget).
MAX_LISTED = 10


def _line(held: HeldTarget) -> str:
    channel = Endpoint.parse(held.target).slack_channel
    what = f"{held.waiting} message{'s' if held.waiting != 1 else ''} waiting"
    if (held.last_error or "").startswith("not_in_channel"):
        advice = "syncbot was removed: `/invite @syncbot` there and they follow, in order."
    else:
        advice = f"Slack refuses posts there ({escape(held.last_error[:80])}); retried by itself."
    return f"<#{channel}>: {what} since {held.since:%Y-%m-%d %H:%M} UTC. {advice}"


class HeldChannelsSection(Section):
    """Channels of this workspace whose deliveries are held."""

    key = "held"

    async def blocks(self, viewer: Viewer) -> list[Block]:
        if not self.visible(viewer):
            return []
        prefix = f"{Network.SLACK.value}:{viewer.team_id}/"
        held = await asyncio.to_thread(held_targets_of, self.services.sessions, prefix)
        if not held:
            return []
        blocks = [header("Waiting deliveries")]
        blocks += [section(_line(h)) for h in held[:MAX_LISTED]]
        if len(held) > MAX_LISTED:
            blocks.append(context(f"…and {len(held) - MAX_LISTED} more (`syncbot status`)."))
        return blocks

    def routes(self) -> Iterable[Route]:
        return ()


def stale_on_hold(home: HomeRefresher) -> Callable[[DeliveryTask, RemoteError], Awaitable[None]]:
    """An ``Outbox.on_hold`` listener: the held channel's workspace home is out of date."""

    async def on_hold(task: DeliveryTask, exc: RemoteError) -> None:
        if task.target.network is Network.SLACK:
            await asyncio.to_thread(home.touch, task.target.slack_team)

    return on_hold


def stale_on_bot_return(
    home: HomeRefresher, workspaces: Workspaces
) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """A ``member_joined_channel`` hook: the bot is back, its channel's deliveries resume, so
    the workspace home's list is out of date."""

    async def on_event(payload: dict[str, Any]) -> None:
        event = payload.get("event") or {}
        team = str(payload.get("team_id") or "")
        try:
            bot = workspaces.info(team).bot_user_id
        except SyncbotError:
            return
        if bot and event.get("user") == bot:
            await asyncio.to_thread(home.touch, team)

    return on_event
