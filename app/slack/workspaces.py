"""Workspaces: stored with encrypted tokens, and a Web API client per workspace on demand.

:class:`Workspaces` is the Slack implementation of the core's
:class:`~app.core.workspaces.WorkspaceDirectory` port.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.workspaces import UnknownWorkspace, WorkspaceInfo
from app.errors import RemoteError, SyncbotError
from app.slack.http_pool import HttpPool
from app.slack.ratelimit import RateLimiter
from app.slack.webapi import SlackApi
from app.store.cipher import TokenCipher
from app.store.models import Workspace

BOT_TOKEN_CONTEXT = "workspace.bot_token"
APP_TOKEN_CONTEXT = "workspace.app_token"
REFRESH_TOKEN_CONTEXT = "workspace.bot_refresh_token"

MEMBERSHIP_EVENTS = ("member_joined_channel", "member_left_channel")

__all__ = [
    "APP_TOKEN_CONTEXT",
    "BOT_TOKEN_CONTEXT",
    "REFRESH_TOKEN_CONTEXT",
    "BotMembership",
    "UnknownWorkspace",
    "WorkspaceInfo",
    "Workspaces",
]


class BotMembership(NamedTuple):
    """A workspace's own bot joined (``member_joined_channel``) or left a channel."""

    kind: str
    team: str
    channel: str


def _info(row: Workspace) -> WorkspaceInfo:
    return WorkspaceInfo(
        id=row.id,
        team_id=row.team_id,
        name=row.name,
        domain=row.domain,
        bot_user_id=row.bot_user_id,
        bot_id=row.bot_id,
        app_id=row.app_id,
        status=row.status,
        has_app_token=bool(row.app_token_enc),
    )


class Workspaces:
    """Looks workspaces up and hands out one paced API client per workspace."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cipher: TokenCipher,
        *,
        api_url: str,
        limiter: RateLimiter | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self.api_url = api_url
        self.limiter = limiter or RateLimiter()
        self._timeout = timeout
        self._clients: dict[str, SlackApi] = {}
        self.http = HttpPool()
        self._infos: dict[str, WorkspaceInfo] = {}
        self._expiries: dict[str, datetime] = {}

    def info(self, team_id: str) -> WorkspaceInfo:
        cached = self._infos.get(team_id)
        if cached is not None:
            return cached
        with self._sessions() as s:
            row = s.execute(
                select(Workspace).where(Workspace.team_id == team_id)
            ).scalar_one_or_none()
            if row is None or row.status != "active":
                raise UnknownWorkspace(f"workspace {team_id} is not installed")
            info = _info(row)
        self._infos[team_id] = info
        return info

    def bot_membership(self, payload: dict[str, Any]) -> BotMembership | None:
        """What an Events API callback says of an installed workspace's own bot joining or
        leaving a channel; ``None`` for any other event, member or workspace."""
        event = payload.get("event") or {}
        kind = event.get("type")
        team = str(payload.get("team_id") or event.get("team") or "")
        channel = str(event.get("channel") or "")
        if kind not in MEMBERSHIP_EVENTS or not team or not channel:
            return None
        try:
            bot = self.info(team).bot_user_id
        except SyncbotError:
            return None
        if not bot or event.get("user") != bot:
            return None
        return BotMembership(str(kind), team, channel)

    def all(self) -> list[WorkspaceInfo]:
        with self._sessions() as s:
            rows = s.execute(select(Workspace).order_by(Workspace.team_id)).scalars().all()
            return [_info(r) for r in rows]

    def api(self, team_id: str) -> SlackApi:
        client = self._clients.get(team_id)
        expires = self._expiries.get(team_id)
        if client is not None and (expires is None or datetime.now(UTC) < expires):
            return client
        with self._sessions() as s:
            row = s.execute(
                select(Workspace).where(Workspace.team_id == team_id)
            ).scalar_one_or_none()
            if row is None or row.status != "active" or not row.bot_token_enc:
                raise UnknownWorkspace(f"workspace {team_id} is not installed")
            token = self._cipher.decrypt(row.bot_token_enc, context=BOT_TOKEN_CONTEXT)
            expires_at = row.bot_token_expires_at
        if expires_at is not None:
            # A rotating token (app.slack.oauth.TokenRefresher renews it before expiry): re-read
            # the row once the cached one expires, in case the renewal happened in another process.
            self._expiries[team_id] = expires_at
        client = SlackApi(
            token=token,
            team_id=team_id,
            base_url=self.api_url,
            limiter=self.limiter,
            timeout=self._timeout,
            pool=self.http,
        )
        self._clients[team_id] = client
        return client

    def app_token(self, team_id: str) -> str | None:
        with self._sessions() as s:
            row = s.execute(
                select(Workspace).where(Workspace.team_id == team_id)
            ).scalar_one_or_none()
            if row is None or not row.app_token_enc:
                return None
            return self._cipher.decrypt(row.app_token_enc, context=APP_TOKEN_CONTEXT)

    def forget(self, team_id: str) -> None:
        """Drop cached clients/infos (after a token change or uninstall)."""
        self._clients.pop(team_id, None)
        self._infos.pop(team_id, None)
        self._expiries.pop(team_id, None)

    async def add(self, bot_token: str, app_token: str | None = None) -> WorkspaceInfo:
        """Verify ``bot_token`` with ``auth.test`` and store the workspace, tokens encrypted."""
        probe = SlackApi(
            token=bot_token, team_id="?", base_url=self.api_url, limiter=RateLimiter()
        )
        auth = await probe.call("auth.test")
        team_id = str(auth["team_id"])
        try:
            team = (await probe.call("team.info")).get("team", {})
        except RemoteError:
            team = {}
        icon = (team.get("icon") or {}).get("image_132")
        now = datetime.now(UTC)
        with self._sessions() as s, s.begin():
            row = s.execute(
                select(Workspace).where(Workspace.team_id == team_id)
            ).scalar_one_or_none()
            if row is None:
                row = Workspace(team_id=team_id, created_at=now)
                s.add(row)
            row.name = str(team.get("name") or auth.get("team") or team_id)
            row.domain = team.get("domain")
            row.icon_url = icon
            row.bot_user_id = auth.get("user_id")
            row.bot_id = auth.get("bot_id")
            row.app_id = auth.get("app_id")
            row.enterprise_id = auth.get("enterprise_id")
            row.bot_token_enc = self._cipher.encrypt(bot_token, context=BOT_TOKEN_CONTEXT)
            if app_token:
                row.app_token_enc = self._cipher.encrypt(app_token, context=APP_TOKEN_CONTEXT)
            row.status = "active"
            row.deleted_at = None
            row.updated_at = now
            s.flush()
            info = _info(row)
        self.forget(team_id)
        return info
