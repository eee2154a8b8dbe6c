"""Slack user profiles for attribution and mention mapping, cached in the directory table."""

from __future__ import annotations

import asyncio
import re
import time
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core.endpoints import Endpoint
from app.core.events import Author
from app.errors import RemoteError, SyncbotError
from app.slack.workspaces import Workspaces
from app.store.models import DirectoryUser

PROFILE_TTL = timedelta(hours=6)


def normalize_name(name: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a person's name, for matching."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "", folded)


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    display_name: str
    real_name: str
    email: str | None
    avatar_url: str | None
    is_bot: bool
    # The workspace the user belongs to (``users.info``'s ``team_id``): another than the one
    # that looked them up for a member of another organisation in a Slack Connect channel.
    team_id: str | None = None

    @property
    def name(self) -> str:
        return self.display_name or self.real_name or self.user_id


class Profiles:
    """users.info with a database cache (and a short in-process one on top)."""

    def __init__(self, sessions: sessionmaker[Session], workspaces: Workspaces) -> None:
        self._sessions = sessions
        self._workspaces = workspaces
        self._memo: dict[tuple[str, str], tuple[float, Profile]] = {}
        # Lookups under way: one event fanned out to N channels resolves its author N times
        # at once; they share one users.info call instead of spending N of the method's burst.
        self._asking: dict[tuple[str, str], asyncio.Future[Profile | None]] = {}

    async def get(self, team_id: str, user_id: str) -> Profile | None:
        key = (team_id, user_id)
        memo = self._memo.get(key)
        if memo and memo[0] > time.monotonic():
            return memo[1]
        asking = self._asking.get(key)
        if asking is None or asking.done() or asking.get_loop() is not _loop():
            asking = self._asking[key] = asyncio.ensure_future(self._lookup(team_id, user_id))
            asking.add_done_callback(lambda done: self._forget(key, done))
        # Shielded: one caller giving up (its delivery cancelled) leaves the others' answer.
        return await asyncio.shield(asking)

    def _forget(self, key: tuple[str, str], done: asyncio.Future[Profile | None]) -> None:
        if self._asking.get(key) is done:
            del self._asking[key]

    async def _lookup(self, team_id: str, user_id: str) -> Profile | None:
        info = self._workspaces.info(team_id)
        row = await asyncio.to_thread(self._load, info.id, user_id)
        if row is not None and row[1] > datetime.now(UTC) - PROFILE_TTL:
            profile = row[0]
        else:
            try:
                data = await self._workspaces.api(team_id).call("users.info", user=user_id)
            except RemoteError as exc:
                if row is None:
                    if exc.retryable:
                        raise  # the delivery waits and retries rather than post as "U123"
                    return None
                profile = row[0]  # stale beats nothing when Slack is struggling
            else:
                profile = profile_of(data.get("user") or {})
                await asyncio.to_thread(self._save, info.id, profile)
        self._memo[(team_id, user_id)] = (time.monotonic() + 300, profile)
        return profile

    def _load(self, workspace_id: int, user_id: str) -> tuple[Profile, datetime] | None:
        with self._sessions() as s:
            row = s.execute(
                select(DirectoryUser).where(
                    DirectoryUser.workspace_id == workspace_id, DirectoryUser.user_id == user_id
                )
            ).scalar_one_or_none()
            if row is None:
                return None
            return (
                Profile(
                    row.user_id,
                    row.display_name,
                    row.real_name,
                    row.email,
                    row.avatar_url,
                    row.is_bot,
                    row.home_team_id,
                ),
                row.updated_at,
            )

    def _save(self, workspace_id: int, p: Profile) -> None:
        try:
            self._upsert(workspace_id, p)
        except IntegrityError:
            # Two deliveries resolved the same person at once; the other insert won.
            self._upsert(workspace_id, p)

    def _upsert(self, workspace_id: int, p: Profile) -> None:
        with self._sessions() as s, s.begin():
            row = s.execute(
                select(DirectoryUser).where(
                    DirectoryUser.workspace_id == workspace_id, DirectoryUser.user_id == p.user_id
                )
            ).scalar_one_or_none()
            if row is None:
                row = DirectoryUser(workspace_id=workspace_id, user_id=p.user_id)
                s.add(row)
            row.display_name = p.display_name[:255]
            row.real_name = p.real_name[:255]
            row.normalized_name = normalize_name(p.display_name or p.real_name)[:255]
            row.email = p.email
            row.avatar_url = p.avatar_url
            row.is_bot = p.is_bot
            row.home_team_id = p.team_id
            row.updated_at = datetime.now(UTC)

    async def on_event(self, payload: dict[str, Any]) -> None:
        """``user_profile_changed`` and ``user_change``: the event carries the whole user;
        cache it at once."""
        event = payload.get("event") or {}
        user = event.get("user")
        team = str(payload.get("team_id") or "")
        if not isinstance(user, dict) or not user.get("id") or not team:
            return
        try:
            info = self._workspaces.info(team)
        except SyncbotError:
            return
        profile = profile_of(user)
        await asyncio.to_thread(self._save, info.id, profile)
        self._memo[(team, profile.user_id)] = (time.monotonic() + 300, profile)

    async def resolve(self, source: Endpoint, author: Author) -> Author:
        """The core's AuthorResolver: fill a Slack author's name and avatar."""
        team, _, user = (author.native_id or "").partition("/")
        if not team or not user:
            return author
        profile = await self.get(team, user)
        if profile is None:
            return author
        native_id, origin = author.native_id, author.origin
        home = profile.team_id
        if home and home != team:
            # A member of another organisation (a Slack Connect channel): theirs when that
            # workspace installed the app too, as their messages are (``user_team``), so a
            # reaction, which names no team, is made by the same ghost.
            try:
                origin = self._workspaces.info(home).name
                native_id = f"{home}/{user}"
            except SyncbotError:
                pass  # an organisation without the app: the channel's view of them
        return Author(
            name=author.name or profile.name,
            native_id=native_id,
            avatar_url=author.avatar_url or profile.avatar_url,
            origin=origin,
        )


def profile_of(user: dict[str, Any]) -> Profile:
    """The profile a Slack user object (users.info, ``user_change``) describes."""
    prof = user.get("profile") or {}
    avatar = next(
        (prof.get(k) for k in ("image_192", "image_512", "image_72", "image_48") if prof.get(k)),
        None,
    )
    return Profile(
        user_id=str(user.get("id") or ""),
        display_name=str(prof.get("display_name") or ""),
        real_name=str(prof.get("real_name") or user.get("real_name") or user.get("name") or ""),
        email=prof.get("email"),
        avatar_url=avatar,
        is_bot=bool(user.get("is_bot")),
        team_id=str(user["team_id"]) if user.get("team_id") else None,
    )


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()
