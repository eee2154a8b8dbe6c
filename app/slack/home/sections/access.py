"""Who clicked: every section handler re-checks the acting user before changing anything.

The shell's middleware has checked the user already and put the :class:`Viewer` in Bolt's
context; a handler still refuses unless that viewer is an admin, so a button that was shown
proves nothing, and a handler reached any other way (no checked viewer) changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from app.errors import SyncbotError
from app.services import Services
from app.slack.home.section import Block, Viewer, notice_view, viewer_of

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


def actor(body: dict[str, Any]) -> tuple[str, str]:
    """(team id, user id) of whoever clicked; empty strings where the payload has none."""
    user = body.get("user") or {}
    team = str((body.get("team") or {}).get("id") or user.get("team_id") or "")
    return team, str(user.get("id") or "")


def actor_team(body: dict[str, Any]) -> str:
    return actor(body)[0]


def can_act(user: Mapping[str, Any]) -> bool:
    """Whether a ``users.info`` user may act at all: not deleted, not a guest, not a bot."""
    return not (user.get("deleted") or user.get("is_restricted") or user.get("is_bot"))


def is_workspace_admin(user: Mapping[str, Any]) -> bool:
    """Whether a ``users.info`` user is an admin or owner of the workspace who may act."""
    return can_act(user) and bool(
        user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
    )


async def call_slack(
    services: Services, viewer: Viewer, method: str, **params: Any
) -> dict[str, Any]:
    """Call Slack's Web API as the bot of the viewer's workspace."""
    return await services.slack.workspaces.api(viewer.team_id).call(method, **params)


async def admin_or_refuse(
    services: Services, body: dict[str, Any], context: Mapping[str, Any]
) -> Viewer | None:
    """The checked admin who clicked, or None once they were told why nothing happens."""
    viewer = admin_viewer(context)
    if viewer is None:
        await refuse(services, body)
    return viewer


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


# The shell answers Slack only once a handler returns (nothing may run after the response on
# Lambda), and Slack gives up on an answer after 3 s: slow work gets this long before the modal
# is answered with a "working on it" view.
ACK_BUDGET = 2.0


class Background:
    """Work a handler let outlive its answer to Slack, awaited by :meth:`settle` (tests, stop)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("home background work failed", exc_info=task.exception())

    async def settle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def answer_in_time(
    ack: Any,
    work: Awaitable[Block],
    *,
    pending: Block,
    later: Callable[[Block], Awaitable[None]],
    background: Background,
) -> None:
    """Answer a modal submission with ``work``'s outcome view if it is ready within
    :data:`ACK_BUDGET`; else answer with ``pending`` now and hand the outcome to ``later`` (a
    ``views.update`` of the modal) when it is ready."""
    task = asyncio.ensure_future(work)
    try:
        outcome = await asyncio.wait_for(asyncio.shield(task), ACK_BUDGET)
    except TimeoutError:
        await ack(response_action="update", view=pending)

        async def finish() -> None:
            await later(await task)

        background.start(finish(), "syncbot-home-outcome")
        return
    await ack(response_action="update", view=outcome)


def modal_updater(
    services: Services, viewer: Viewer, view_id: str | None, what: str
) -> Callable[[Block], Awaitable[None]]:
    """A ``later`` for :func:`answer_in_time`: the outcome replaces the submitted modal
    (``views.update``); a modal closed meanwhile (or no view id) is only logged."""

    async def later(outcome: Block) -> None:
        if view_id:
            try:
                await call_slack(services, viewer, "views.update", view_id=view_id, view=outcome)
                return
            except SyncbotError:
                pass
        log.info("%s modal closed before its outcome was shown", what)

    return later


__all__ = [
    "ACK_BUDGET",
    "REFUSED",
    "Background",
    "actor",
    "actor_team",
    "admin_or_refuse",
    "admin_viewer",
    "answer_in_time",
    "call_slack",
    "can_act",
    "is_workspace_admin",
    "modal_updater",
    "notice_view",
    "refuse",
]
