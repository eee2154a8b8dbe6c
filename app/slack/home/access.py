"""Who may act in the App Home, and how everyone else is told no: one check, one refusal.

Two levels of access (:class:`Need`):

* ``ADMIN``: the viewer the shell checked (``users.info``, cached for a minute) is an admin or
  owner of their workspace, or anyone when REQUIRE_ADMIN=false. The shell's middleware refuses
  others before any section handler runs; the handler's own check still refuses them, so a
  button that was shown proves nothing, and a handler reached any other way (no checked viewer)
  changes nothing.
* ``OPERATOR``: an admin or owner of the PRIMARY_WORKSPACE (the instance's operators), asked of
  Slack on every click whatever REQUIRE_ADMIN says: replacing or wiping every workspace's data
  is a workspace admin's decision, and admins can be demoted.

Everyone refused is told so with the same words for the same level: a "Not allowed" modal for
a click, the message on the modal's first input for a submission.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from app.errors import SyncbotError
from app.slack.home.blocks import Block, first_input, notice_view
from app.slack.home.section import Viewer
from app.slack.workspaces import Workspaces

log = logging.getLogger("syncbot.slack.home")

REFUSED = "Only admins and owners of this workspace can change syncbot's settings."
REFUSED_OPERATOR = (
    "Only admins and owners of the primary workspace (syncbot's operators) can back up, restore "
    "or reset syncbot."
)
REFUSAL_TITLE = "Not allowed"
# How long the shell trusts a users.info answer about who is an admin.
ADMIN_TTL = 60.0


class Need(Enum):
    ADMIN = REFUSED
    OPERATOR = REFUSED_OPERATOR

    @property
    def refusal(self) -> str:
        return str(self.value)


def actor(body: Mapping[str, Any]) -> tuple[str, str]:
    """(team id, user id) of whoever clicked; empty strings where the payload has none."""
    user = body.get("user") or {}
    team = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
    return team, str(user.get("id") or "")


def can_act(user: Mapping[str, Any]) -> bool:
    """Whether a ``users.info`` user may act at all: not deleted, not a guest, not a bot."""
    return not (user.get("deleted") or user.get("is_restricted") or user.get("is_bot"))


def is_workspace_admin(user: Mapping[str, Any]) -> bool:
    """Whether a ``users.info`` user is an admin or owner of the workspace who may act."""
    return can_act(user) and bool(
        user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
    )


def checked_viewer(context: Mapping[str, Any]) -> Viewer | None:
    """The viewer the shell checked and put in Bolt's ``context`` for this request, if any."""
    viewer = context.get("viewer")
    if not isinstance(viewer, Viewer):
        log.warning("home action without a checked viewer refused")
        return None
    return viewer


def refusal_answer(view: Mapping[str, Any], text: str, field: str | None = None) -> dict[str, Any]:
    """The answer to a refused modal submission: ``text`` on input ``field`` or else the
    modal's first input (the modal stays open), or the modal replaced by a notice when it has
    no input."""
    field = field or first_input(dict(view))
    if field:
        return {"response_action": "errors", "errors": {field: text}}
    return {"response_action": "update", "view": notice_view(REFUSAL_TITLE, text)}


class Access:
    """The access checks and refusals of the shell's gate and of every home handler (see
    :mod:`.kit`)."""

    def __init__(
        self,
        workspaces: Workspaces,
        *,
        primary_workspace: str | None,
        require_admin: bool = True,
        admin_ttl: float = ADMIN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._workspaces = workspaces
        self._primary = primary_workspace
        self._require_admin = require_admin
        self._admin_ttl = admin_ttl
        self._clock = clock
        self._admins: dict[tuple[str, str], tuple[bool, float]] = {}

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """Whether the user may configure syncbot (the shell's gate): an admin or owner of the
        workspace, cached for ``admin_ttl``; anyone when REQUIRE_ADMIN=false."""
        if not self._require_admin:
            return True
        now = self._clock()
        cached = self._admins.get((team_id, user_id))
        if cached is not None and cached[1] > now:
            return cached[0]
        admin = await self._asks_slack(team_id, user_id)
        if admin is None:
            return False  # refusing is the safe answer; not cached, the next click asks again
        self._admins[(team_id, user_id)] = (admin, now + self._admin_ttl)
        return admin

    async def _asks_slack(self, team_id: str, user_id: str) -> bool | None:
        """Whether ``users.info`` says the user is a workspace admin; None if Slack did not say."""
        try:
            data = await self._workspaces.api(team_id).call("users.info", user=user_id)
        except SyncbotError as exc:
            log.warning("admin check failed", extra={"team": team_id, "error": str(exc)})
            return None
        return is_workspace_admin(data.get("user") or {})

    def is_primary(self, team_id: str) -> bool:
        return bool(self._primary) and team_id == self._primary

    def is_operator(self, viewer: Viewer) -> bool:
        """Whether this checked viewer is an admin of the primary workspace (for what to show;
        handlers needing it ask Slack again, see :meth:`check`)."""
        return viewer.is_admin and self.is_primary(viewer.team_id)

    async def check(
        self, need: Need, body: Mapping[str, Any], context: Mapping[str, Any]
    ) -> Viewer | None:
        """The viewer acting in this request when they have ``need``, else None."""
        if need is Need.ADMIN:
            viewer = checked_viewer(context)
            return viewer if viewer is not None and viewer.is_admin else None
        team, user = actor(body)
        if not user or not self.is_primary(team):
            log.info("refused an operator action outside the primary workspace")
            return None
        # Asked again, never cached: see the module's docstring.
        if not await self._asks_slack(team, user):
            log.info("refused a non-admin's operator action", extra={"team": team})
            return None
        return Viewer(team, user, is_admin=True)

    async def refuse_click(self, body: Mapping[str, Any], text: str = REFUSED) -> None:
        """Tell someone who clicked why nothing happened, in a modal (a click has no other
        reply); without a trigger or a team there is no one to tell."""
        trigger = body.get("trigger_id")
        team = actor(body)[0]
        if not trigger or not team:
            return
        await self.show(team, trigger, notice_view(REFUSAL_TITLE, text))

    async def show(self, team_id: str, trigger_id: str, view: Block) -> None:
        """Open ``view`` as a modal for a click. One that cannot be opened (the trigger expired
        after 3 s, Slack is down) is only logged: the click changed nothing, and it can simply
        be repeated."""
        try:
            await self._workspaces.api(team_id).call(
                "views.open", trigger_id=trigger_id, view=view
            )
        except SyncbotError as exc:
            log.warning("could not open a modal", extra={"team": team_id, "error": str(exc)})


__all__ = [
    "ADMIN_TTL",
    "REFUSED",
    "REFUSED_OPERATOR",
    "Access",
    "Need",
    "actor",
    "can_act",
    "checked_viewer",
    "is_workspace_admin",
    "refusal_answer",
]
