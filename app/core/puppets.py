"""The puppet login port: a Matrix user logs in as themselves on a chat network (a Slack user
token, ``login token``), so their own conversations are bridged and what they write elsewhere
is posted as them (double puppeting).

The Slack adapter implements it (:class:`app.slack.puppets.SlackPuppets`); the Matrix bot's
commands depend on this port only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class PuppetLogin:
    """Who a token turned out to be (no token in it)."""

    team_id: str
    team_name: str
    user_id: str
    user_name: str


class PuppetLogins(Protocol):
    """Stores and forgets Matrix users' own tokens."""

    async def login(self, mxid: str, token: str, *, management_room: str) -> PuppetLogin:
        """Verify ``token`` and store it (encrypted) for ``mxid``.

        Raises:
            RemoteError: the network refused the token or could not be reached.
            SyncbotError: the token is not a user token of a logged-in workspace.
        """
        ...

    async def logout(self, mxid: str, team_id: str | None = None) -> list[str]:
        """Forget ``mxid``'s tokens (of one workspace, or all); returns the teams forgotten."""
        ...

    async def logins(self, mxid: str) -> list[PuppetLogin]:
        """Where ``mxid`` is logged in as themselves (``user_name`` is the user id)."""
        ...
