"""Who a mentioned user is in another workspace: manual mapping, e-mail, then unique name.

Results are kept in ``user_mappings`` with an expiry per method (a person's e-mail rarely
changes, a name match is weaker, a miss is retried soon); manual mappings never expire.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.errors import RemoteError
from app.slack.profiles import Profiles, normalize_name
from app.slack.workspaces import Workspaces
from app.store.models import DirectoryUser, UserMapping

TTL = {"email": timedelta(days=30), "name": timedelta(days=14), "none": timedelta(days=1)}


class MentionMapper:
    def __init__(
        self, sessions: sessionmaker[Session], workspaces: Workspaces, profiles: Profiles
    ) -> None:
        self._sessions = sessions
        self._workspaces = workspaces
        self.profiles = profiles

    async def map_user(self, source_team: str, user_id: str, target_team: str) -> str | None:
        """The user id in ``target_team`` of ``user_id`` of ``source_team``, if known."""
        if source_team == target_team:
            return user_id
        src = self._workspaces.info(source_team)
        dst = self._workspaces.info(target_team)
        cached = await asyncio.to_thread(self._cached, src.id, user_id, dst.id)
        if cached is not None:
            return cached[0]
        profile = await self.profiles.get(source_team, user_id)
        if profile is None:
            return None
        target, method = None, "none"
        if profile.email:
            try:
                data = await self._workspaces.api(target_team).call(
                    "users.lookupByEmail", email=profile.email
                )
                target, method = (data.get("user") or {}).get("id"), "email"
            except RemoteError as exc:
                if exc.code != "users_not_found":
                    return None  # transient: do not cache a miss
        if target is None:
            target = await asyncio.to_thread(self._by_name, dst.id, profile.name)
            method = "name" if target else "none"
        await asyncio.to_thread(self._store, src.id, user_id, dst.id, target, method)
        return target

    def _cached(self, src: int, user: str, dst: int) -> tuple[str | None] | None:
        with self._sessions() as s:
            row = s.execute(
                select(UserMapping).where(
                    UserMapping.source_workspace_id == src,
                    UserMapping.source_user_id == user,
                    UserMapping.target_workspace_id == dst,
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            if row.method != "manual" and row.expires_at and row.expires_at < datetime.now(UTC):
                return None
            return (row.target_user_id,)

    def by_name(self, team_id: str, name: str) -> str | None:
        """The one user of ``team_id`` with this normalized name, if exactly one."""
        return self._by_name(self._workspaces.info(team_id).id, name)

    def _by_name(self, dst: int, name: str) -> str | None:
        key = normalize_name(name)
        if not key:
            return None
        with self._sessions() as s:
            ids = (
                s.execute(
                    select(DirectoryUser.user_id)
                    .where(DirectoryUser.workspace_id == dst, DirectoryUser.normalized_name == key)
                    .limit(2)
                )
                .scalars()
                .all()
            )
        return ids[0] if len(ids) == 1 else None  # ambiguous names map to nobody

    def _store(self, src: int, user: str, dst: int, target: str | None, method: str) -> None:
        try:
            self._store_once(src, user, dst, target, method)
        except IntegrityError:
            self._store_once(src, user, dst, target, method)  # a concurrent insert won

    def _store_once(self, src: int, user: str, dst: int, target: str | None, method: str) -> None:
        now = datetime.now(UTC)
        with self._sessions() as s, s.begin():
            row = s.execute(
                select(UserMapping).where(
                    UserMapping.source_workspace_id == src,
                    UserMapping.source_user_id == user,
                    UserMapping.target_workspace_id == dst,
                )
            ).scalar_one_or_none()
            if row is None:
                row = UserMapping(
                    source_workspace_id=src, source_user_id=user, target_workspace_id=dst
                )
                s.add(row)
            elif row.method == "manual":
                return
            row.target_user_id = target
            row.method = method
            row.matched_at = now
            row.expires_at = now + TTL[method]

    def set_manual(
        self, source_team: str, user_id: str, target_team: str, target: str | None
    ) -> None:
        """An admin's override: kept until changed, whatever matching would say."""
        src = self._workspaces.info(source_team)
        dst = self._workspaces.info(target_team)
        now = datetime.now(UTC)
        with self._sessions() as s, s.begin():
            row = s.execute(
                select(UserMapping).where(
                    UserMapping.source_workspace_id == src.id,
                    UserMapping.source_user_id == user_id,
                    UserMapping.target_workspace_id == dst.id,
                )
            ).scalar_one_or_none()
            if row is None:
                row = UserMapping(
                    source_workspace_id=src.id, source_user_id=user_id, target_workspace_id=dst.id
                )
                s.add(row)
            row.target_user_id = target
            row.method = "manual"
            row.matched_at = now
            row.expires_at = None
