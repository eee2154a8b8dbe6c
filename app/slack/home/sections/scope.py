"""What a workspace's admin may act on: the syncs its channels are in, and who else is in them.

An App Home admin is an admin of one workspace, not of the instance: sections ask here before
touching a sync, and tell the other workspaces of a changed sync that their homes are stale.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint, EndpointError, Network
from app.slack.home.section import HomeRefresher, Viewer
from app.store.models import Sync, SyncEndpoint, Workspace


@dataclass(frozen=True, slots=True)
class SyncedChannel:
    channel_id: str
    sync_name: str
    status: str
    # The sync's other endpoints, as endpoint strings, oldest first.
    others: tuple[str, ...]


def synced_channels(sessions: sessionmaker[Session], team_id: str) -> list[SyncedChannel]:
    """The workspace's channels that are in a sync, with the rest of each sync."""
    with sessions() as s:
        mine = s.execute(
            select(SyncEndpoint.endpoint, SyncEndpoint.sync_id, SyncEndpoint.status, Sync.name)
            .join(Sync, Sync.id == SyncEndpoint.sync_id)
            .join(Workspace, Workspace.id == SyncEndpoint.workspace_id)
            .where(Workspace.team_id == team_id, SyncEndpoint.network == str(Network.SLACK))
            .order_by(Sync.name, SyncEndpoint.id)
        ).all()
        sync_ids = {row.sync_id for row in mine}
        members = s.execute(
            select(SyncEndpoint.sync_id, SyncEndpoint.endpoint)
            .where(SyncEndpoint.sync_id.in_(sync_ids))
            .order_by(SyncEndpoint.id)
        ).all()
    by_sync: dict[int, list[str]] = {}
    for sync_id, endpoint in members:
        by_sync.setdefault(sync_id, []).append(endpoint)
    out = []
    for row in mine:
        channel = Endpoint.parse(row.endpoint).slack_channel
        others = tuple(e for e in by_sync.get(row.sync_id, []) if e != row.endpoint)
        out.append(SyncedChannel(channel, row.name, row.status, others))
    return out


def sync_of(sessions: sessionmaker[Session], endpoint: Endpoint) -> str | None:
    """The name of the sync ``endpoint`` is in, if any."""
    with sessions() as s:
        return s.execute(
            select(Sync.name)
            .join(SyncEndpoint, SyncEndpoint.sync_id == Sync.id)
            .where(SyncEndpoint.endpoint == str(endpoint))
        ).scalar_one_or_none()


def team_syncs(sessions: sessionmaker[Session], team_id: str) -> list[str]:
    """Names of the syncs that have a channel of this workspace."""
    return sorted({c.sync_name for c in synced_channels(sessions, team_id)})


def teams_in(sessions: sessionmaker[Session], sync_names: list[str]) -> list[str]:
    """The Slack workspaces with a channel in any of these syncs."""
    with sessions() as s:
        endpoints = s.execute(
            select(SyncEndpoint.endpoint)
            .join(Sync, Sync.id == SyncEndpoint.sync_id)
            .where(Sync.name.in_(sync_names), SyncEndpoint.network == str(Network.SLACK))
        ).scalars()
        teams = set()
        for endpoint in endpoints:
            try:
                teams.add(Endpoint.parse(endpoint).slack_team)
            except EndpointError:
                continue
    return sorted(teams)


def other_teams(sessions: sessionmaker[Session], sync_names: list[str], team_id: str) -> list[str]:
    """The Slack workspaces other than ``team_id`` with a channel in any of these syncs (whose
    homes a change to the syncs makes stale)."""
    return [t for t in teams_in(sessions, sync_names) if t != team_id]


async def refresh_after_change(
    home: HomeRefresher, sessions: sessionmaker[Session], viewer: Viewer, sync_names: list[str]
) -> None:
    """After the viewer changed these syncs: publish their home again, and mark stale the homes
    of the other workspaces in the syncs."""
    await home.refresh(viewer)
    others = await asyncio.to_thread(other_teams, sessions, sync_names, viewer.team_id)
    await asyncio.to_thread(home.touch, *others)
