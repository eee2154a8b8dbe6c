"""Ghost profiles follow Slack at once: a profile change renames the ghost, a departure marks it.

Without this a ghost's name and avatar change only when its author next posts, and a person
whose account was deactivated keeps looking like an active member forever. Slack sends the
whole user object in ``user_profile_changed`` and ``user_change`` (the latter with
``deleted: true`` for a deactivated account): https://api.slack.com/events/user_change,
https://api.slack.com/events/user_profile_changed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.events import Author
from app.errors import RemoteError, SyncbotError
from app.matrix.ghosts import Ghosts
from app.matrix.ids import BridgeIds
from app.slack.profiles import profile_of
from app.slack.workspaces import Workspaces

log = logging.getLogger("syncbot.bridge.ghost_profiles")

PROFILE_EVENTS = frozenset({"user_profile_changed", "user_change"})


def ghost_profile_hook(
    ghosts: Ghosts, ids: BridgeIds, workspaces: Workspaces
) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """A Slack event hook updating the ghost of a changed (or departed) Slack user.

    Only ghosts that already exist are touched: a workspace-wide profile event must not
    register a Matrix account for every member of the workspace.
    """

    async def on_event(envelope: dict[str, Any]) -> None:
        event = envelope.get("event") or {}
        user = event.get("user")
        team = str(envelope.get("team_id") or "")
        if event.get("type") not in PROFILE_EVENTS or not isinstance(user, dict) or not team:
            return
        profile = profile_of(user)
        if not profile.user_id:
            return
        mxid = ids.slack_ghost(team, profile.user_id)
        if not await ghosts.known(mxid):
            return
        try:
            origin = workspaces.info(team).name
        except SyncbotError:
            return  # not a workspace of ours
        author = Author(
            name=profile.name,
            native_id=f"{team}/{profile.user_id}",
            avatar_url=profile.avatar_url,
            origin=origin,
        )
        try:
            await ghosts.update(
                mxid, f"slack:{author.native_id}", author, left=bool(user.get("deleted"))
            )
        except RemoteError as exc:
            # The next post by this author applies the profile anyway.
            log.warning("ghost profile not updated", extra={"ghost": mxid, "error": str(exc)})

    return on_event
