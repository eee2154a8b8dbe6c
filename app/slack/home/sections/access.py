"""Who clicked: the acting user of an App Home action, re-checked on every action.

A button shown only to admins proves nothing (anyone can replay a payload shape, and an admin
can be demoted between render and click), so every section handler asks Slack again.
"""

from __future__ import annotations

import logging
from typing import Any

from app.errors import SyncbotError
from app.services import Services
from app.slack.home.section import Block, Viewer

log = logging.getLogger("syncbot.slack.home")

REFUSED = "Only admins and owners of this workspace can change this."


def actor_ids(body: dict[str, Any]) -> tuple[str, str]:
    """(team id, user id) of the person behind an interactive payload."""
    user = body.get("user") or {}
    team = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
    return team, str(user.get("id") or "")


async def acting_viewer(services: Services, body: dict[str, Any]) -> Viewer:
    """The acting user as a :class:`Viewer`, with admin rights looked up now.

    Any failure to ask Slack counts as "not an admin": refusing is the safe answer.
    """
    team, user = actor_ids(body)
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


def notice_view(title: str, text: str) -> Block:
    """A one-paragraph modal (refusals and results)."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


async def refuse(services: Services, body: dict[str, Any]) -> None:
    """Tell a non-admin who clicked an admin button why nothing happened."""
    team, _ = actor_ids(body)
    trigger = body.get("trigger_id")
    if not trigger:
        return
    try:
        await services.slack.workspaces.api(team).call(
            "views.open", trigger_id=trigger, view=notice_view("Not allowed", REFUSED)
        )
    except SyncbotError:
        log.warning("could not show a refusal", extra={"team": team})
