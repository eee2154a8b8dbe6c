"""What a workspace's admin may act on: the syncs its channels are in, and who else is in them.

An App Home admin is an admin of one workspace, not of the instance: sections ask here before
touching a sync, and tell the other workspaces of a changed sync that their homes are stale.
The queries live in :mod:`app.store.sync_scope`.
"""

from __future__ import annotations

import asyncio

from app.slack.home.section import HomeRefresher, Viewer
from app.store.engine import Sessions
from app.store.sync_scope import SyncedChannel, slack_teams_in, synced_channels


def team_syncs(sessions: Sessions, team_id: str) -> list[str]:
    """Names of the syncs that have a channel of this workspace."""
    return sorted({c.sync_name for c in synced_channels(sessions, team_id)})


def other_teams(sessions: Sessions, sync_names: list[str], team_id: str) -> list[str]:
    """The Slack workspaces other than ``team_id`` with a channel in any of these syncs (whose
    homes a change to the syncs makes stale)."""
    return [t for t in slack_teams_in(sessions, sync_names) if t != team_id]


async def refresh_after_change(
    home: HomeRefresher, sessions: Sessions, viewer: Viewer, sync_names: list[str]
) -> None:
    """After the viewer changed these syncs: publish their home again, and mark stale the homes
    of the other workspaces in the syncs."""
    await home.refresh(viewer)
    others = await asyncio.to_thread(other_teams, sessions, sync_names, viewer.team_id)
    await asyncio.to_thread(home.touch, *others)


__all__ = ["SyncedChannel", "other_teams", "refresh_after_change", "synced_channels", "team_syncs"]
