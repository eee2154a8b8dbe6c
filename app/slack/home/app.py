"""The App Home shell: one Bolt app for the home tab, its buttons and its modals.

:class:`SlackEvents` has already verified the v0 signature (in constant time) and parsed the
payload, so the Bolt app runs with request verification off and receives the parsed payload, the
same way for HTTP and Socket Mode envelopes. Bolt's ``authorize`` hands out the workspace's bot
token from :class:`Workspaces` (decrypted on demand, never logged).

Who may act: with REQUIRE_ADMIN on (the default) only workspace admins and owners (``users.info``,
cached for a minute) get the real home; everyone else sees a short explanation, and every action
and submission of theirs is refused by a global middleware before any section handler runs.

Refreshes stay cheap: an action republishes the acting user's home only. Other workspaces whose
homes changed are *touched* (their version in ``home_versions`` goes up); a home opened with an
older version than its workspace's is rebuilt, any other open costs one database read. The
version lives in the database so every instance agrees, and in the published view's
``private_metadata`` so Slack hands it back with ``app_home_opened``.

Bolt note: when SLACK_CLIENT_ID/SECRET are in the environment Bolt builds an OAuth flow object
of its own; it stays unused (our ``authorize`` takes precedence and no route reaches it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from starlette.responses import Response

from app.slack.home import blocks as kit_blocks
from app.slack.home.access import ADMIN_TTL, REFUSED, Access, Need, refusal_answer
from app.slack.home.blocks import Block, actions, button, context, header, home_view
from app.slack.home.section import HomeSection, Viewer
from app.slack.home.sections.backup import BackupSection
from app.slack.home.sections.channels import ChannelsSection
from app.slack.home.sections.federation import FederationSection
from app.slack.home.sections.groups import GroupsSection
from app.slack.home.sections.held import HeldChannelsSection
from app.slack.home.sections.mappings import MappingsSection
from app.slack.home.sections.matrix_link import MatrixLinkSection
from app.slack.workspaces import UnknownWorkspace, Workspaces
from app.store.engine import Sessions
from app.store.groups import HomeVersions

if TYPE_CHECKING:
    from app.services import Services
    from app.slack.events_route import SlackEvents

log = logging.getLogger("syncbot.slack.home")

INTERACTIONS = frozenset({"block_actions", "view_submission", "view_closed"})
REFRESH_ACTION = "home.refresh"
MAX_HOME_BLOCKS = kit_blocks.MAX_VIEW_BLOCKS  # Slack's limit for a home view
NOT_ADMIN = (
    "syncbot is set up by this workspace's admins and owners. Ask one of them to publish or "
    "subscribe channels for you."
)


class HomeApp:
    """Implements :class:`HomeRefresher`; sections plug in with :meth:`add`."""

    def __init__(
        self,
        *,
        workspaces: Workspaces,
        sessions: Sessions,
        require_admin: bool = True,
        api_url: str = "https://slack.com/api/",
        admin_ttl: float = ADMIN_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._workspaces = workspaces
        # The shell checks and refuses as every section does (PRIMARY_WORKSPACE matters only to
        # their operator routes, never to the shell's gate).
        self._access = Access(
            workspaces,
            primary_workspace=None,
            require_admin=require_admin,
            admin_ttl=admin_ttl,
            clock=clock,
        )
        self._versions = HomeVersions(sessions)
        self.sections: list[HomeSection] = []

        # A plain function: Bolt reads the parameter names of ``authorize`` (a bound method's
        # ``self`` would be one of them).
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            return await self._authorize(enterprise_id, team_id)

        self.bolt = AsyncApp(
            name="syncbot-home",
            client=AsyncWebClient(base_url=api_url),
            authorize=authorize,
            # Answer only after the handler ran: on Lambda nothing runs after the response.
            process_before_response=True,
            signing_secret="",  # unused: SlackEvents verified the request
            # No token verification either: AsyncApp has no such switch, and with an
            # ``authorize`` function (no ``token``) it never calls auth.test on its own.
            request_verification_enabled=False,
            ssl_check_enabled=False,
            url_verification_enabled=False,
        )
        self.bolt.middleware(self._admin_gate)
        self.bolt.event("app_home_opened")(self._on_home_opened)
        self.bolt.action(REFRESH_ACTION)(self._on_refresh)

    def add(self, section: HomeSection) -> None:
        self.sections.append(section)
        section.register(self.bolt, self)

    def hook(self, events: SlackEvents) -> None:
        """Receive interactions and ``app_home_opened`` from this events path."""
        events.interaction_hooks.append(self.on_interaction)
        events.on({"app_home_opened"}, self.on_event)

    # --- entry points from SlackEvents ---------------------------------------------------------

    async def on_interaction(self, payload: dict[str, Any]) -> Response | None:
        if payload.get("type") not in INTERACTIONS:
            return None
        return await self._dispatch(payload)

    async def on_event(self, payload: dict[str, Any]) -> None:
        event = payload.get("event") or {}
        if event.get("type") != "app_home_opened":
            return
        try:
            await self._dispatch(payload)
        except Exception:
            # The relay path after this hook must still run; a home is rebuilt on the next open.
            log.exception("app_home_opened failed")

    async def _dispatch(self, payload: dict[str, Any]) -> Response:
        bolt_response = await self.bolt.async_dispatch(
            AsyncBoltRequest(body=payload, mode="socket_mode")
        )
        return _starlette(bolt_response)

    # --- HomeRefresher ---------------------------------------------------------------------

    async def refresh(self, viewer: Viewer) -> None:
        await self._publish(
            viewer, await asyncio.to_thread(self._versions.current, viewer.team_id)
        )

    async def _publish(self, viewer: Viewer, version: int) -> None:
        """Build the viewer's home and publish it, stamped with its workspace's ``version``."""
        view = home_view(await self._blocks(viewer), _metadata(version, viewer.is_admin))
        await self._workspaces.api(viewer.team_id).call(
            "views.publish", user_id=viewer.user_id, view=view
        )

    def touch(self, *team_ids: str) -> None:
        self._versions.bump(team_ids)

    # --- who may see and act ---------------------------------------------------------------

    async def _authorize(self, enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        if not team_id:
            return None  # type: ignore[return-value]  # Bolt answers "not authorized"
        try:
            info = self._workspaces.info(team_id)
            token = self._workspaces.api(team_id).token
        except UnknownWorkspace:
            return None  # type: ignore[return-value]
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=token,
            bot_user_id=info.bot_user_id,
            bot_id=info.bot_id,
        )

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        return await self._access.is_admin(team_id, user_id)

    async def _admin_gate(self, body: dict[str, Any], context: Any, next_: Any) -> Any:
        team_id, user_id = context.team_id, context.user_id
        if not team_id or not user_id:
            return BoltResponse(status=200, body="")
        viewer = Viewer(team_id, user_id, await self.is_admin(team_id, user_id))
        context["viewer"] = viewer
        kind = body.get("type")
        if viewer.is_admin or kind not in ("block_actions", "view_submission"):
            return await next_()
        log.info("refused a non-admin's home action", extra={"team": team_id})
        if kind == "view_submission":
            return BoltResponse(status=200, body=refusal_answer(body.get("view") or {}, REFUSED))
        await self._access.refuse_click(body, Need.ADMIN.refusal)
        return BoltResponse(status=200, body="")

    # --- handlers of the shell itself ------------------------------------------------------

    async def _on_home_opened(self, event: dict[str, Any], context: Any) -> None:
        if event.get("tab", "home") != "home":
            return
        viewer: Viewer = context["viewer"]
        version = await asyncio.to_thread(self._versions.current, viewer.team_id)
        shown = (event.get("view") or {}).get("private_metadata") or ""
        if shown == _metadata(version, viewer.is_admin):
            return  # up to date: nothing changed for this workspace since it was built
        await self._publish(viewer, version)

    async def _on_refresh(self, ack: Any, context: Any) -> None:
        await ack()
        await self.refresh(context["viewer"])

    async def _blocks(self, viewer: Viewer) -> list[Block]:
        blocks: list[Block] = [header("syncbot", "home.header")]
        if not viewer.is_admin:
            blocks.append(kit_blocks.section(f":lock: {NOT_ADMIN}", "home.not_admin"))
        else:
            blocks.append(actions("home.tools", button("Refresh", REFRESH_ACTION)))
        for section in self.sections:
            if not section.visible(viewer):
                continue
            try:
                part = await section.blocks(viewer)
            except Exception:
                # One broken part must not take the whole home down.
                log.exception("home section failed", extra={"section": section.key})
                part = [context(f"The {section.key} part could not be shown just now.")]
            if part:
                blocks.append(kit_blocks.divider())
                blocks.extend(part)
        if len(blocks) > MAX_HOME_BLOCKS:
            blocks = blocks[: MAX_HOME_BLOCKS - 1]
            blocks.append(context("More than Slack can show in one home tab; some is left out."))
        return blocks


def _metadata(version: int, is_admin: bool) -> str:
    return json.dumps({"v": version, "admin": is_admin}, separators=(",", ":"))


def _starlette(response: BoltResponse) -> Response:
    if response.status == 404:
        # Nothing registered for it (a URL button, a closed modal): acknowledge, change nothing.
        return Response(status_code=200)
    headers = {k: v for k, v in response.first_headers_without_set_cookie().items()}
    return Response(content=response.body or b"", status_code=response.status, headers=headers)


def build_sections(services: Services) -> Iterable[HomeSection]:
    """Every section of the home tab, in the order they are shown."""
    return [
        HeldChannelsSection(services),
        GroupsSection(services),
        ChannelsSection(services),
        MappingsSection(services),
        MatrixLinkSection(services),
        FederationSection(services),
        BackupSection(services),
    ]


def build_home(services: Services) -> HomeApp:
    """Build the home shell with its sections (the composition root hooks it into the events
    path, which HTTP and Socket Mode share)."""
    home = HomeApp(
        workspaces=services.slack.workspaces,
        sessions=services.sessions,
        require_admin=services.settings.require_admin,
        api_url=services.settings.slack_api_url,
    )
    for section in build_sections(services):
        home.add(section)
    return home
