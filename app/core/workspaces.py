"""The workspace directory port: which chat workspaces are logged in, without their tokens.

The Slack adapter implements it (:class:`app.slack.workspaces.Workspaces`); anything else that
needs to know or change which workspaces are installed — the Matrix bot's ``login app``, the
bridge, the App Home — depends on this port, not on the Slack adapter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from app.errors import SyncbotError


class UnknownWorkspace(SyncbotError):
    """No active installation for this team id."""


@dataclass(frozen=True, slots=True)
class WorkspaceInfo:
    """What the adapters need to know of a workspace, with no token in it."""

    id: int
    team_id: str
    name: str
    domain: str | None
    bot_user_id: str | None
    bot_id: str | None
    app_id: str | None
    status: str
    has_app_token: bool


class WorkspaceDirectory(Protocol):
    """The installed workspaces. Lookups are blocking (run them off the event loop)."""

    def info(self, team_id: str) -> WorkspaceInfo:
        """The active workspace ``team_id``.

        Raises:
            UnknownWorkspace: it is not installed (or no longer active).
        """
        ...

    def all(self) -> list[WorkspaceInfo]:
        """Every known workspace, active or not, by team id."""
        ...

    def forget(self, team_id: str) -> None:
        """Drop what is cached of ``team_id`` (after a token change, a logout or uninstall)."""
        ...

    async def add(self, bot_token: str, app_token: str | None = None) -> WorkspaceInfo:
        """Verify ``bot_token`` with the workspace and store it (tokens encrypted).

        Raises:
            RemoteError: the workspace refused the token or could not be reached.
        """
        ...
