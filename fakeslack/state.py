"""The fake's whole state plus the lookups and mutations shared by API methods and test actions."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .faults import Fault
from .model import APP_ID, Channel, Installation, Message, TsClock, User, UserGrant, Workspace


class SlackError(Exception):
    """An ``ok:false`` answer with Slack's ``error`` string."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class Call:
    """One recorded Web API call: when it came (``time.monotonic()``), from which client socket,
    and the fault injected into it, if any."""

    method: str
    params: dict[str, Any]
    team_id: str | None
    token: str | None
    at: float = 0.0
    peer: tuple[str, int] | None = None
    fault: Fault | None = None


@dataclass
class SlackState:
    """Workspaces, tokens and bookkeeping; mutated only on the fake's event loop."""

    workspaces: dict[str, Workspace] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    revoked_tokens: dict[str, str] = field(default_factory=dict)
    app_tokens: set[str] = field(default_factory=set)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    # User tokens (``xoxp-``) by token.
    user_tokens: dict[str, UserGrant] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    clock: TsClock = field(default_factory=TsClock)
    emit: Callable[[str, dict[str, Any]], str | None] = lambda team, event: None
    base_url: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def new_id(self, prefix: str) -> str:
        """A fresh Slack-looking id (``C0000007``, ``F0000008``, ...)."""
        return f"{prefix}{next(self._ids):08d}"

    def workspace(self, team_id: str) -> Workspace:
        """The workspace ``team_id`` (KeyError if unknown)."""
        return self.workspaces[team_id]

    def auth(self, token: str | None) -> tuple[Workspace, Installation]:
        """Resolve a bot token to its workspace, raising Slack's auth errors."""
        if not token:
            raise SlackError("not_authed")
        if token in self.revoked_tokens:
            raise SlackError("token_revoked")
        grant = self.user_tokens.get(token)
        if grant is not None:
            return self._user_auth(grant)
        team_id = self.tokens.get(token)
        if team_id is None:
            raise SlackError("invalid_auth")
        ws = self.workspaces[team_id]
        if ws.installation is None or ws.installation.revoked:
            raise SlackError("token_revoked")
        return ws, ws.installation

    def _user_auth(self, grant: UserGrant) -> tuple[Workspace, Installation]:
        ws = self.workspaces[grant.team_id]
        # Uninstalling the app revokes every token it was granted, the users' too.
        if grant.revoked or ws.installation is None or ws.installation.revoked:
            raise SlackError("token_revoked")
        member = ws.users.get(grant.user_id)
        if member is None or member.deleted:
            raise SlackError("account_inactive")
        view = Installation(
            ws.id, grant.user_id, "", grant.token, scopes=list(grant.scopes), as_user=True
        )
        return ws, view

    def grants(self, ws: Workspace) -> list[UserGrant]:
        """The live user tokens of ``ws``, by member id."""
        live = [g for g in self.user_tokens.values() if g.team_id == ws.id and not g.revoked]
        return sorted(live, key=lambda g: g.user_id)

    def channel(self, ws: Workspace, channel_id: str | None) -> Channel:
        """The channel or ``channel_not_found``."""
        ch = ws.channels.get(channel_id or "")
        if ch is None:
            raise SlackError("channel_not_found")
        return ch

    def message(self, ch: Channel, ts: str | None) -> Message:
        """A live message or ``message_not_found``."""
        msg = ch.messages.get(ts or "")
        if msg is None or msg.deleted:
            raise SlackError("message_not_found")
        return msg

    def user(self, ws: Workspace, user_id: str | None) -> User:
        """A user or ``user_not_found``."""
        user = ws.users.get(user_id or "")
        if user is None:
            raise SlackError("user_not_found")
        return user

    def visible_user(self, ws: Workspace, user_id: str | None) -> User:
        """A member of ``ws``, or of an organisation sharing a Slack Connect channel with it
        (their user object, with their own ``team_id``: "you'll encounter messages and users
        originating from other teams", https://api.slack.com/apis/channels-between-orgs);
        anyone else is ``user_not_found``."""
        if (user_id or "") in ws.users:
            return ws.users[user_id or ""]
        for ch in ws.channels.values():
            for team in ch.shared_teams:
                other = self.workspaces.get(team)
                if other is not None and other is not ws and (user_id or "") in other.users:
                    return other.users[user_id or ""]
        raise SlackError("user_not_found")

    def bot_profile(self, ws: Workspace, inst: Installation) -> dict[str, Any]:
        """The ``bot_profile`` Slack attaches to messages posted by the app."""
        bot = ws.users[inst.bot_user_id]
        return {
            "id": inst.bot_id,
            "app_id": APP_ID,
            "name": bot.real_name or bot.name,
            "icons": {
                f"image_{n}": f"https://avatars.slack-edge.test/{ws.id}/{inst.bot_id}_{n}.png"
                for n in (36, 48, 72)
            },
            "deleted": False,
            "updated": 1700000000,
            "team_id": ws.id,
        }

    def add_message(self, ch: Channel, msg: Message) -> Message:
        """Store ``msg`` in ``ch``, threading it under its parent if it is a reply."""
        if msg.thread_ts and msg.thread_ts != msg.ts:
            parent = self.message(ch, msg.thread_ts)
            parent.thread_ts = parent.ts
            parent.replies.append(msg.ts)
            parent.reply_users.append(msg.user or msg.bot_id or "")
        ch.messages[msg.ts] = msg
        return msg

    def history(self, ch: Channel) -> list[Message]:
        """Channel history (top level plus broadcasts), newest first, as Slack returns it."""
        live = [m for m in ch.messages.values() if not m.deleted]
        top = [m for m in live if not m.thread_ts or m.thread_ts == m.ts or m.reply_broadcast]
        return sorted(top, key=lambda m: float(m.ts), reverse=True)

    def thread(self, ch: Channel, thread_ts: str) -> list[Message]:
        """The parent then its replies, oldest first."""
        live = [m for m in ch.messages.values() if not m.deleted]
        msgs = [m for m in live if m.ts == thread_ts or m.thread_ts == thread_ts]
        return sorted(msgs, key=lambda m: float(m.ts))
