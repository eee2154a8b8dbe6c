"""Matrix ids of the bridge: ghost user ids, portal aliases, and our namespace.

Ghost localparts come from ``MATRIX_GHOST_TEMPLATE`` (default ``slack_{team}_{user}``) and are
lowercased, because Slack user ids are only unique per workspace and the Matrix user-id grammar
only allows lowercase for new ids. Authors from other networks get a hashed localpart under the
same prefix, so every ghost stays inside the one exclusive namespace of the registration.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from app.core.endpoints import Endpoint, Network
from app.settings import Settings

_LOCALPART_OK = re.compile(r"[^a-z0-9._=/+-]")


def _clean(value: str) -> str:
    return _LOCALPART_OK.sub("_", value.lower())


@dataclass(frozen=True, slots=True)
class BridgeIds:
    """Naming rules of one bridge deployment (server name, bot, ghost template)."""

    server_name: str
    bot_localpart: str = "slackbot"
    ghost_template: str = "slack_{team}_{user}"

    @classmethod
    def from_settings(cls, settings: Settings) -> BridgeIds:
        return cls(
            server_name=settings.matrix_server_name or "localhost",
            bot_localpart=settings.matrix_bot_localpart,
            ghost_template=settings.matrix_ghost_template,
        )

    @property
    def bot(self) -> str:
        return f"@{self.bot_localpart}:{self.server_name}"

    @property
    def prefix(self) -> str:
        """The literal start of every ghost localpart (``slack_`` for the default template)."""
        return _clean(self.ghost_template.split("{", 1)[0])

    def slack_ghost(self, team: str, user: str) -> str:
        localpart = _clean(self.ghost_template.format(team=team, user=user))
        return f"@{localpart}:{self.server_name}"

    def ghost_for(self, source: Endpoint, native_id: str | None) -> str:
        """The ghost standing for the author ``native_id`` of a post from ``source``.

        Slack authors are ``TEAM/USER``; anything else (a peer's author, a Matrix user of
        another server relayed into a second room) is hashed under the ghost prefix.
        """
        ref = native_id or "unknown"
        if source.network is Network.SLACK:
            team, _, user = ref.partition("/")
            if team and user:
                return self.slack_ghost(team, user)
        digest = hashlib.sha256(f"{source.network}:{ref}".encode()).hexdigest()[:20]
        return f"@{self.prefix}{source.network}_{digest}:{self.server_name}"

    def portal_alias(self, endpoint: Endpoint) -> str:
        """``#slack_t1_c1:server`` for ``slack:T1/C1``."""
        localpart = _clean(f"{self.prefix}{endpoint.slack_team}_{endpoint.slack_channel}")
        return f"#{localpart}:{self.server_name}"

    def endpoint_for_alias(self, alias: str) -> Endpoint | None:
        """The Slack channel a portal alias in our namespace names, if any."""
        match = re.fullmatch(
            rf"#{re.escape(self.prefix)}(t[a-z0-9]+)_([cg][a-z0-9]+):{re.escape(self.server_name)}",
            alias,
        )
        if match is None:
            return None
        return Endpoint.slack(match.group(1).upper(), match.group(2).upper())

    def is_ours(self, user_id: str) -> bool:
        """True for the bridge bot and every ghost: their events are our own echoes."""
        if user_id == self.bot:
            return True
        if not user_id.startswith("@"):
            return False  # a room alias or id shares the shape, not the sigil
        localpart, _, server = user_id[1:].partition(":")
        return server == self.server_name and localpart.startswith(self.prefix)

    def user_regex(self) -> str:
        return f"@{re.escape(self.prefix)}.*:{re.escape(self.server_name)}"

    def alias_regex(self) -> str:
        return f"#{re.escape(self.prefix)}.*:{re.escape(self.server_name)}"
