"""People of the other workspaces of a workspace's syncs, and how each is mapped into it.

Read by the App Home's people-mapping part: one row per remote person (from the directory) with
the mapping into the local workspace, if any. Only an admin's ``manual`` override is deleted
here; overrides are written by :class:`app.slack.mentions.MentionMapper`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import DirectoryUser, SyncEndpoint, UserMapping, Workspace


@dataclass(frozen=True, slots=True)
class MappingRow:
    remote_team: str
    remote_workspace: str
    remote_user: str
    name: str
    local_user: str | None
    method: str | None  # manual | email | name | none; None: never looked up
    expires_at: datetime | None

    @property
    def expired(self) -> bool:
        return (
            self.method not in (None, "manual")
            and self.expires_at is not None
            and self.expires_at < datetime.now(UTC)
        )


@dataclass(frozen=True, slots=True)
class MappingPage:
    rows: list[MappingRow]
    total: int
    offset: int
    query: str


class MappingDirectory:
    """The store side: remote people of shared syncs and their mapping into one workspace."""

    def __init__(
        self, sessions: sessionmaker[Session], *, normalize: Callable[[str], str]
    ) -> None:
        self._sessions = sessions
        # How a name is folded into ``normalized_name`` (the Slack adapter's rule), for search.
        self._normalize = normalize

    def _workspace_id(self, s: Session, team_id: str) -> int | None:
        return s.execute(
            select(Workspace.id).where(Workspace.team_id == team_id, Workspace.status == "active")
        ).scalar_one_or_none()

    def _remote_ids(self, local_id: int) -> Select[int | None]:
        mine = select(SyncEndpoint.sync_id).where(SyncEndpoint.workspace_id == local_id)
        return (
            select(SyncEndpoint.workspace_id)
            .join(Workspace, Workspace.id == SyncEndpoint.workspace_id)
            .where(
                SyncEndpoint.sync_id.in_(mine),
                SyncEndpoint.workspace_id != local_id,
                Workspace.status == "active",
            )
            .distinct()
        )

    def shares_sync(self, local_team: str, remote_team: str) -> bool:
        """Whether the two workspaces have a sync in common (overrides are allowed only then)."""
        with self._sessions() as s:
            local_id = self._workspace_id(s, local_team)
            remote_id = self._workspace_id(s, remote_team)
            if local_id is None or remote_id is None or local_id == remote_id:
                return False
            found = s.execute(
                self._remote_ids(local_id).where(SyncEndpoint.workspace_id == remote_id)
            ).first()
            return found is not None

    def _joined(self, local_id: int) -> Select[*tuple[Any, ...]]:
        return (
            select(
                Workspace.team_id,
                Workspace.name,
                DirectoryUser.user_id,
                DirectoryUser.display_name,
                DirectoryUser.real_name,
                UserMapping.target_user_id,
                UserMapping.method,
                UserMapping.expires_at,
            )
            .join(Workspace, Workspace.id == DirectoryUser.workspace_id)
            .outerjoin(
                UserMapping,
                and_(
                    UserMapping.source_workspace_id == DirectoryUser.workspace_id,
                    UserMapping.source_user_id == DirectoryUser.user_id,
                    UserMapping.target_workspace_id == local_id,
                ),
            )
            .where(
                DirectoryUser.workspace_id.in_(self._remote_ids(local_id)),
                DirectoryUser.is_bot.is_(False),
            )
        )

    def page(
        self, local_team: str, *, query: str = "", offset: int = 0, limit: int
    ) -> MappingPage:
        """One page of remote people ordered by workspace and name, optionally searched."""
        query = query.strip()[:100]
        offset = max(0, offset)
        with self._sessions() as s:
            local_id = self._workspace_id(s, local_team)
            if local_id is None:
                return MappingPage([], 0, 0, query)
            stmt = self._joined(local_id)
            if query:
                stmt = stmt.where(_matches(query, self._normalize(query)))
            total = s.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
            rows = s.execute(
                stmt.order_by(Workspace.name, DirectoryUser.normalized_name, DirectoryUser.user_id)
                .offset(offset)
                .limit(limit)
            ).all()
        return MappingPage(
            rows=[
                MappingRow(
                    remote_team=r.team_id,
                    remote_workspace=r.name or r.team_id,
                    remote_user=r.user_id,
                    name=r.display_name or r.real_name or r.user_id,
                    local_user=r.target_user_id,
                    method=r.method,
                    expires_at=r.expires_at,
                )
                for r in rows
            ],
            total=int(total),
            offset=offset,
            query=query,
        )

    def person(self, local_team: str, remote_team: str, remote_user: str) -> MappingRow | None:
        with self._sessions() as s:
            local_id = self._workspace_id(s, local_team)
            if local_id is None:
                return None
            r = s.execute(
                self._joined(local_id).where(
                    Workspace.team_id == remote_team, DirectoryUser.user_id == remote_user
                )
            ).first()
        if r is None:
            return None
        return MappingRow(
            r.team_id,
            r.name or r.team_id,
            r.user_id,
            r.display_name or r.real_name or r.user_id,
            r.target_user_id,
            r.method,
            r.expires_at,
        )

    def summary(self, local_team: str) -> list[tuple[str, dict[str | None, int]]]:
        """Per remote workspace (by name): how many people are mapped by each method."""
        with self._sessions() as s:
            local_id = self._workspace_id(s, local_team)
            if local_id is None:
                return []
            joined = self._joined(local_id).subquery()
            counts = s.execute(
                select(joined.c.name, joined.c.team_id, joined.c.method, func.count())
                .group_by(joined.c.name, joined.c.team_id, joined.c.method)
                .order_by(joined.c.name)
            ).all()
        out: dict[str, dict[str | None, int]] = {}
        for name, team, method, n in counts:
            out.setdefault(name or team, {})[method] = int(n)
        return list(out.items())

    def clear(self, local_team: str, remote_team: str, remote_user: str) -> bool:
        """Delete an override; True when there was one."""
        with self._sessions() as s, s.begin():
            local_id = self._workspace_id(s, local_team)
            remote_id = self._workspace_id(s, remote_team)
            if local_id is None or remote_id is None:
                return False
            result = s.execute(
                delete(UserMapping).where(
                    UserMapping.source_workspace_id == remote_id,
                    UserMapping.source_user_id == remote_user,
                    UserMapping.target_workspace_id == local_id,
                    UserMapping.method == "manual",
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


def _matches(query: str, key: str) -> ColumnElement[bool]:
    lowered = query.lower()
    conditions = [
        func.lower(DirectoryUser.display_name).contains(lowered, autoescape=True),
        func.lower(DirectoryUser.real_name).contains(lowered, autoescape=True),
        DirectoryUser.user_id == query.upper(),
    ]
    if key:
        conditions.append(DirectoryUser.normalized_name.contains(key, autoescape=True))
    return or_(*conditions)


__all__ = ["MappingDirectory", "MappingPage", "MappingRow"]
