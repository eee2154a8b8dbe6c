"""Slack user tokens of Matrix users (``login token``): verified, stored, and used as clients.

A user token (``xoxp-``) acts as its member: the deliverer posts a Matrix user's messages with
it so they appear as that person in Slack (double puppeting), and the bridge reads the person's
own DMs with it. It is the Slack side of the core's
:class:`~app.core.puppets.PuppetLogins` port.

Tokens are never logged: a refused one is reported by Slack's error code only.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from app.core.puppets import PuppetLogin
from app.errors import RemoteError, SyncbotError
from app.slack.ratelimit import RateLimiter
from app.slack.webapi import SlackApi
from app.slack.workspaces import Workspaces
from app.store.puppets import Puppet, PuppetStore

log = logging.getLogger("syncbot.slack.puppets")

USER_TOKEN = re.compile(r"^xoxp-[A-Za-z0-9-]+$")
# Answers that mean the token itself is dead (revoked, or the person left): forget it.
DEAD_TOKEN_CODES = frozenset({"token_revoked", "invalid_auth", "account_inactive", "not_authed"})


@dataclass(frozen=True, slots=True)
class PuppetClient:
    """A Matrix user's Slack identity and an API client acting as it."""

    puppet: Puppet
    api: SlackApi


class NotAUserToken(SyncbotError):
    """The text given is not a Slack user token, or Slack says it is a bot's."""


class SlackPuppets:
    """The Matrix users' Slack user tokens and a paced API client for each."""

    def __init__(self, store: PuppetStore, workspaces: Workspaces) -> None:
        self.store = store
        self._workspaces = workspaces
        self._clients: dict[tuple[str, str], SlackApi] = {}

    async def login(self, mxid: str, token: str, *, management_room: str) -> PuppetLogin:
        if not USER_TOKEN.match(token):
            raise NotAUserToken("that is not a user token (xoxp-...)")
        probe = SlackApi(
            token=token, team_id="?", base_url=self._workspaces.api_url, limiter=RateLimiter()
        )
        auth = await probe.call("auth.test")
        if auth.get("bot_id"):
            raise NotAUserToken("that token is a bot's, not yours (xoxp-...)")
        team_id, user_id = str(auth["team_id"]), str(auth["user_id"])
        try:
            info = await asyncio.to_thread(self._workspaces.info, team_id)
        except SyncbotError:
            raise NotAUserToken(
                f"the app is not installed in workspace {team_id}: log it in with "
                "`login app` (or install it) first"
            ) from None
        puppet = Puppet(mxid=mxid, team_id=team_id, slack_user_id=user_id)
        await asyncio.to_thread(self.store.save, puppet, token, management_room=management_room)
        self._clients.pop((mxid, team_id), None)
        log.info("user token stored", extra={"team_id": team_id, "slack_user": user_id})
        return PuppetLogin(
            team_id=team_id,
            team_name=info.name,
            user_id=user_id,
            user_name=str(auth.get("user") or user_id),
        )

    async def logout(self, mxid: str, team_id: str | None = None) -> list[str]:
        """Hand the tokens back to Slack (``auth.revoke``: it then stops sending the person's
        DMs as user events), then forget them."""
        for puppet in await asyncio.to_thread(self.store.of_user, mxid):
            if team_id is None or puppet.team_id == team_id:
                await self._revoke(puppet)
        return await self._forget(mxid, team_id)

    async def forget_team(self, team_id: str) -> None:
        """A workspace logged out: every token of it is handed back and forgotten."""
        for puppet in await asyncio.to_thread(self.store.of_team, team_id):
            await self._revoke(puppet)
            await self._forget(puppet.mxid, team_id)

    async def _revoke(self, puppet: Puppet) -> None:
        client = await asyncio.to_thread(self.client, puppet.mxid, puppet.team_id)
        if client is None:
            return
        try:
            await client.api.call("auth.revoke")
        except RemoteError as exc:
            # Already dead, or Slack unreachable: forgetting it is what matters here.
            log.info("user token not revoked", extra={"error": exc.code or str(exc)})

    async def _forget(self, mxid: str, team_id: str | None) -> list[str]:
        teams = await asyncio.to_thread(self.store.forget, mxid, team_id)
        for team in teams:
            self._clients.pop((mxid, team), None)
        return teams

    async def logins(self, mxid: str) -> list[PuppetLogin]:
        out = []
        for puppet in await asyncio.to_thread(self.store.of_user, mxid):
            try:
                name = (await asyncio.to_thread(self._workspaces.info, puppet.team_id)).name
            except SyncbotError:
                name = puppet.team_id
            out.append(
                PuppetLogin(puppet.team_id, name, puppet.slack_user_id, puppet.slack_user_id)
            )
        return out

    def client(self, mxid: str, team_id: str) -> PuppetClient | None:
        """A client acting as ``mxid``'s Slack user in ``team_id``, or None without a token.

        Blocking: the token is read from the database each time, so a login or logout made
        by another process counts at once (the client itself is kept).
        """
        rows = [p for p in self.store.of_user(mxid) if p.team_id == team_id]
        if not rows:
            self._clients.pop((mxid, team_id), None)
            return None
        api = self._clients.get((mxid, team_id))
        if api is None:
            token = self.store.token(mxid, team_id)
            if token is None:
                return None
            api = SlackApi(
                token=token,
                team_id=team_id,
                base_url=self._workspaces.api_url,
                limiter=self._workspaces.limiter,
                pool=self._workspaces.http,
            )
            self._clients[(mxid, team_id)] = api
        return PuppetClient(rows[0], api)

    def client_of(self, team_id: str, slack_user_id: str) -> PuppetClient | None:
        """The client of whichever Matrix user is ``slack_user_id`` of ``team_id``. Blocking."""
        puppet = self.store.by_slack_user(team_id, slack_user_id)
        return self.client(puppet.mxid, team_id) if puppet is not None else None

    def of_slack_user(self, team_id: str, slack_user_id: str) -> Puppet | None:
        return self.store.by_slack_user(team_id, slack_user_id)

    def of_team(self, team_id: str) -> list[Puppet]:
        return self.store.of_team(team_id)

    async def dead(self, puppet: Puppet, exc: RemoteError) -> bool:
        """Forget ``puppet``'s token when ``exc`` says it no longer works; True if forgotten."""
        if exc.code not in DEAD_TOKEN_CODES:
            return False
        await self._forget(puppet.mxid, puppet.team_id)
        log.warning(
            "user token no longer works; forgotten",
            extra={"team_id": puppet.team_id, "slack_user": puppet.slack_user_id},
        )
        return True
