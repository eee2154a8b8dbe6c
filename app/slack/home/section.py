"""The seam between the App Home shell and its parts.

The shell (``app/slack/home/app.py``) owns the Bolt app, who may see what, and when a home view
is published; each section renders its own blocks and registers the Bolt handlers of its own
buttons and modals. A section never publishes views itself: it asks the shell to refresh.

Every Bolt request the shell dispatches has been admin-checked before any section handler runs:
a non-admin's actions and submissions are refused by the shell (when REQUIRE_ADMIN is on), and
``context["viewer"]`` holds the checked :class:`Viewer`. Sections are built with the kit
(:mod:`app.slack.home.kit`): its routes check access again before a handler runs. Action ids and
callback ids start with ``home.<section key>.``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from app.slack.home.blocks import Block

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at (or clicking in) the home tab."""

    team_id: str
    user_id: str
    # Workspace admin or owner, or anyone when REQUIRE_ADMIN=false.
    is_admin: bool


class HomeRefresher(Protocol):
    async def refresh(self, viewer: Viewer) -> None:
        """Publish this viewer's home tab again (after an action of theirs)."""

    def touch(self, *team_ids: str) -> None:
        """Note that these workspaces' homes are out of date; they are rebuilt when next opened.

        It writes to the database: async callers run it with :func:`asyncio.to_thread`.
        """


class HomeSection(Protocol):
    """One part of the home tab."""

    @property
    def key(self) -> str:
        """Names the part in logs and in the ids of its actions (``home.<key>.…``)."""

    def visible(self, viewer: Viewer) -> bool:
        """Whether this viewer sees the section at all (admin-only parts say no to others)."""

    async def blocks(self, viewer: Viewer) -> list[Block]:
        """The section's Block Kit blocks for this viewer."""

    def register(self, bolt: AsyncApp, home: HomeRefresher) -> None:
        """Register the Bolt action/view handlers of the section's buttons and modals."""
