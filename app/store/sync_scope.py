"""What a Slack workspace's syncs reach: its synced channels, the rest of each sync, and the
other workspaces in them.

An App Home admin is an admin of one workspace, not of the instance: the home asks here before
touching a sync, and which other workspaces' homes a change makes stale.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint, EndpointError, Network
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


def sync_names_of(sessions: sessionmaker[Session], endpoints: Collection[str]) -> dict[str, str]:
    """The sync each of these endpoints (endpoint strings) is in; endpoints in none are left
    out."""
    if not endpoints:
        return {}
    with sessions() as s:
        rows = s.execute(
            select(SyncEndpoint.endpoint, Sync.name)
            .join(Sync, Sync.id == SyncEndpoint.sync_id)
            .where(SyncEndpoint.endpoint.in_(list(endpoints)))
        ).all()
    return {endpoint: name for endpoint, name in rows}


def slack_teams_in(sessions: sessionmaker[Session], sync_names: Collection[str]) -> list[str]:
    """The Slack workspaces with a channel in any of these syncs, sorted."""
    with sessions() as s:
        endpoints = s.execute(
            select(SyncEndpoint.endpoint)
            .join(Sync, Sync.id == SyncEndpoint.sync_id)
            .where(Sync.name.in_(list(sync_names)), SyncEndpoint.network == str(Network.SLACK))
        ).scalars()
        teams = set()
        for endpoint in endpoints:
            try:
                teams.add(Endpoint.parse(endpoint).slack_team)
            except EndpointError:
                continue
    return sorted(teams)


def recorded_team_ids(sessions: sessionmaker[Session]) -> set[str]:
    """Every workspace with a row, whatever its status (a restore or reset touches them all)."""
    with sessions() as s:
        return set(s.scalars(select(Workspace.team_id)))


__all__ = [
    "SyncedChannel",
    "recorded_team_ids",
    "slack_teams_in",
    "sync_names_of",
    "synced_channels",
]
