"""The App Home section kit: how a section declares its buttons and modals, one way for all.

A section subclasses :class:`Section`, renders its blocks with :mod:`app.slack.home.blocks` and
lists its routes: :class:`OnClick` for a button or menu, :class:`OnSubmit` for a modal's
submission. Every route goes through the same steps before the section's code runs:

1. a click is acknowledged at once (Slack wants an answer in 3 s; the click has no other reply);
2. :class:`~app.slack.home.access.Access` checks the acting user against the route's
   :class:`~app.slack.home.access.Need`; anyone else gets the level's refusal and nothing runs;
3. the handler gets one typed request, a :class:`Click` or a :class:`Form`, to read the payload
   and answer through; an error of the section's ``explains`` types is shown to the person (a
   "Not done" modal for a click, the form's field for a submission).

Slow work that must outlive the answer to Slack runs in the section's :class:`Background`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from app.errors import SyncbotError
from app.slack.home import blocks
from app.slack.home.access import Access, Need, refusal_answer
from app.slack.home.blocks import Block, first_input, notice_view
from app.slack.home.section import HomeRefresher, Viewer

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from app.services import Services
    from app.slack.webapi import SlackApi

log = logging.getLogger("syncbot.slack.home")

# The shell answers Slack only once a handler returns (nothing may run after the response on
# Lambda), and Slack gives up on an answer after 3 s: slow work gets this long before the modal
# is answered with a "working on it" view.
ACK_BUDGET = 2.0

Ack = Callable[..., Awaitable[Any]]
ClickHandler = Callable[["Click"], Awaitable[None]]
FormHandler = Callable[["Form"], Awaitable[None]]


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


# --- the two kinds of request a handler gets ---------------------------------------------------


class Click:
    """A click on a button or menu of the section, by a user who passed the route's check."""

    def __init__(
        self, section: Section, viewer: Viewer, body: Mapping[str, Any], need: Need
    ) -> None:
        self.viewer = viewer
        self.body = body
        self._section = section
        self._need = need

    @property
    def action(self) -> Mapping[str, Any]:
        return (self.body.get("actions") or [{}])[0] or {}

    @property
    def value(self) -> str:
        """The clicked button's value, or the value of the chosen menu option ("" if none)."""
        chosen = (self.action.get("selected_option") or {}).get("value")
        return str(chosen if chosen is not None else self.action.get("value") or "")

    @property
    def view(self) -> Mapping[str, Any]:
        """The view the click happened in: the home tab or a modal."""
        return self.body.get("view") or {}

    @property
    def in_modal(self) -> bool:
        return self.view.get("type") == "modal"

    async def open(self, view: Block) -> None:
        """Open ``view`` as a modal (a failure is logged: the click can be repeated)."""
        trigger = str(self.body.get("trigger_id") or "")
        await self._section.access.show(self.viewer.team_id, trigger, view)

    async def push(self, view: Block) -> None:
        """Push ``view`` onto the modal the click happened in."""
        await self._section.api(self.viewer).call(
            "views.push", trigger_id=self.body.get("trigger_id"), view=view
        )

    async def explain(self, error: Exception) -> None:
        """Tell the person who clicked why nothing happened."""
        await self.open(notice_view("Not done", str(error)))

    async def refuse(self, text: str | None = None) -> None:
        """Refuse the click: the route's refusal, or ``text`` for a reason of the section's."""
        await self._section.access.refuse_click(self.body, text or self._need.refusal)


class Form:
    """A submission of one of the section's modals, by a user who passed the route's check.

    The handler answers exactly once: :meth:`close`, :meth:`error`/:meth:`errors`,
    :meth:`update`, :meth:`refuse` or :meth:`answer_in_time`.
    """

    def __init__(
        self,
        section: Section,
        viewer: Viewer,
        body: Mapping[str, Any],
        ack: Ack,
        route: OnSubmit,
    ) -> None:
        self.viewer = viewer
        self.body = body
        self.answered = False
        self._section = section
        self._ack = ack
        self._need = route.need
        self._field = route.field

    @property
    def view(self) -> dict[str, Any]:
        return dict(self.body.get("view") or {})

    @property
    def metadata(self) -> dict[str, Any]:
        return blocks.metadata(self.view)

    def text(self, block_id: str) -> str:
        return blocks.submitted_text(self.view, block_id)

    def choice(self, block_id: str) -> str | None:
        return blocks.submitted_choice(self.view, block_id)

    def state(self, block_id: str) -> dict[str, Any]:
        return blocks.submitted(self.view, block_id)

    async def _answer(self, **answer: Any) -> None:
        self.answered = True
        await self._ack(**answer)

    async def close(self) -> None:
        await self._answer()

    async def error(self, field: str, message: str) -> None:
        """Show ``message`` on input ``field``; the modal stays open."""
        await self.errors({field: message})

    async def errors(self, errors: Mapping[str, str]) -> None:
        await self._answer(response_action="errors", errors=dict(errors))

    async def update(self, view: Block) -> None:
        """Replace the modal with ``view``."""
        await self._answer(response_action="update", view=view)

    async def refuse(self, text: str | None = None) -> None:
        await self._answer(**refusal_answer(self.view, text or self._need.refusal, self._field))

    async def answer_in_time(self, work: Awaitable[Block], *, pending: Block, what: str) -> None:
        """Replace the modal with ``work``'s outcome view if it is ready within
        :data:`ACK_BUDGET`; else with ``pending`` now, and with the outcome (``views.update``)
        once it is ready. A modal closed meanwhile is only logged."""
        task = asyncio.ensure_future(work)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), ACK_BUDGET)
        except TimeoutError:
            await self.update(pending)
            self._section.background.start(self._later(task, what), f"syncbot-home-{what}")
            return
        await self.update(outcome)

    async def _later(self, task: Awaitable[Block], what: str) -> None:
        outcome = await task
        view_id = self.view.get("id")
        if view_id:
            try:
                await self._section.api(self.viewer).call(
                    "views.update", view_id=view_id, view=outcome
                )
                return
            except SyncbotError:
                pass
        log.info("%s modal closed before its outcome was shown", what)


# --- routes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OnClick:
    """Bolt action ``action_id`` (a string, or a pattern for a family of ids) runs ``handle``."""

    action_id: str | re.Pattern[str]
    handle: ClickHandler
    need: Need = Need.ADMIN


@dataclass(frozen=True, slots=True)
class OnSubmit:
    """A submission of modal ``callback_id`` runs ``handle``.

    ``field`` is the input a refusal or an explained error is shown on (the modal's first input
    if None, as the shell's gate does).
    """

    callback_id: str
    handle: FormHandler
    need: Need = Need.ADMIN
    field: str | None = None


Route = OnClick | OnSubmit


class Section(ABC):
    """One part of the home tab (implements :class:`~app.slack.home.section.HomeSection`)."""

    key: ClassVar[str]
    # Errors whose message is for the person who clicked or submitted (the store's "cannot be
    # done as asked" errors); anything else is a fault, logged by Bolt.
    explains: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(self, services: Services) -> None:
        self.services = services
        self.access = Access(
            services.slack.workspaces, primary_workspace=services.settings.primary_workspace
        )
        # Work started by clicks that outlives their answer to Slack.
        self.background = Background()
        self._home: HomeRefresher | None = None

    @property
    def home(self) -> HomeRefresher:
        if self._home is None:
            raise LookupError(f"home section {self.key} is not registered with a home")
        return self._home

    def visible(self, viewer: Viewer) -> bool:
        return viewer.is_admin

    @abstractmethod
    async def blocks(self, viewer: Viewer) -> list[Block]:
        """The section's blocks for this viewer (built with :mod:`app.slack.home.blocks`)."""

    @abstractmethod
    def routes(self) -> Iterable[Route]:
        """The section's buttons, menus and modals."""

    def register(self, bolt: AsyncApp, home: HomeRefresher) -> None:
        self._home = home
        for route in self.routes():
            if isinstance(route, OnClick):
                bolt.action(route.action_id)(self._on_click(route))
            else:
                bolt.view(route.callback_id)(self._on_submit(route))

    async def wait_idle(self) -> None:
        """Wait until the work started by clicks so far has finished."""
        await self.background.settle()

    def api(self, viewer: Viewer) -> SlackApi:
        """Slack's Web API as the bot of the viewer's workspace."""
        return self.services.slack.workspaces.api(viewer.team_id)

    async def changed(self, viewer: Viewer, teams: Iterable[str]) -> None:
        """After the viewer changed something: mark stale the homes of ``teams`` and publish
        the viewer's again."""
        await asyncio.to_thread(self.home.touch, *teams)
        await self.home.refresh(viewer)

    # Bolt passes a listener the arguments its parameter names ask for.

    def _on_click(self, route: OnClick) -> Callable[..., Awaitable[None]]:
        async def listener(ack: Ack, body: dict[str, Any], context: Mapping[str, Any]) -> None:
            await ack()
            viewer = await self.access.check(route.need, body, context)
            if viewer is None:
                await self.access.refuse_click(body, route.need.refusal)
                return
            click = Click(self, viewer, body, route.need)
            try:
                await route.handle(click)
            except self.explains as exc:
                await click.explain(exc)

        return listener

    def _on_submit(self, route: OnSubmit) -> Callable[..., Awaitable[None]]:
        async def listener(ack: Ack, body: dict[str, Any], context: Mapping[str, Any]) -> None:
            viewer = await self.access.check(route.need, body, context)
            if viewer is None:
                await ack(
                    **refusal_answer(body.get("view") or {}, route.need.refusal, route.field)
                )
                return
            form = Form(self, viewer, body, ack, route)
            try:
                await route.handle(form)
            except self.explains as exc:
                if form.answered:
                    raise
                await form.error(route.field or first_input(form.view) or "", str(exc))

        return listener


__all__ = [
    "ACK_BUDGET",
    "Background",
    "Click",
    "ClickHandler",
    "Form",
    "FormHandler",
    "OnClick",
    "OnSubmit",
    "Route",
    "Section",
]
