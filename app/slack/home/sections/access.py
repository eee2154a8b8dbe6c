"""Who clicked: every section handler re-checks the acting user before changing anything.

The shell's middleware has checked the user already and put the :class:`Viewer` in Bolt's
context; a handler still refuses unless that viewer is an admin, so a button that was shown
proves nothing, and a handler reached any other way (no checked viewer) changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.errors import SyncbotError
from app.services import Services
from app.slack.home.section import Viewer, notice_view, viewer_of

log = logging.getLogger("syncbot.slack.home")

REFUSED = "Only admins and owners of this workspace can change this."


def admin_viewer(context: Mapping[str, Any]) -> Viewer | None:
    """The checked viewer of this request when they are an admin, else None."""
    try:
        viewer = viewer_of(context)
    except LookupError:
        log.warning("home action without a checked viewer refused")
        return None
    return viewer if viewer.is_admin else None


def actor_team(body: dict[str, Any]) -> str:
    user = body.get("user") or {}
    return str((body.get("team") or {}).get("id") or user.get("team_id") or "")


async def acting_viewer(services: Services, body: dict[str, Any]) -> Viewer:
    """The acting user with admin rights asked of Slack now (``users.info``).

    For code that has no Bolt context at hand; handlers should use :func:`admin_viewer`, the
    shell's checked viewer. Any failure to ask Slack counts as "not an admin".
    """
    user = str((body.get("user") or {}).get("id") or "")
    team = actor_team(body)
    if not team or not user:
        return Viewer(team_id=team, user_id=user, is_admin=False)
    try:
        data = await services.slack.workspaces.api(team).call("users.info", user=user)
    except SyncbotError as exc:
        log.warning("admin check failed", extra={"team": team, "error": str(exc)})
        return Viewer(team_id=team, user_id=user, is_admin=False)
    info = data.get("user") or {}
    if info.get("deleted") or info.get("is_restricted") or info.get("is_bot"):
        return Viewer(team_id=team, user_id=user, is_admin=False)
    admin = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
    return Viewer(
        team_id=team, user_id=user, is_admin=admin or not services.settings.require_admin
    )


async def refuse(services: Services, body: dict[str, Any], text: str = REFUSED) -> None:
    """Tell someone who clicked a button they may not use why nothing happened."""
    trigger = body.get("trigger_id")
    team = actor_team(body)
    if not trigger or not team:
        return
    try:
        await services.slack.workspaces.api(team).call(
            "views.open", trigger_id=trigger, view=notice_view("Not allowed", text)
        )
    except SyncbotError:
        log.warning("could not show a refusal", extra={"team": team})


__all__ = ["REFUSED", "acting_viewer", "admin_viewer", "notice_view", "refuse"]
