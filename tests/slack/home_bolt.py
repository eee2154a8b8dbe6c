"""Driving App Home sections through a real Bolt app against the fake Slack.

Payloads go through the shell's ``AsyncApp.async_dispatch`` as Socket Mode requests, as the
shell itself dispatches them (SlackEvents verified the signature before; the payload shapes are
Slack's). ``process_before_response`` makes
each dispatch return only after the handler finished, so tests need no waiting.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine

from app.assembly import assemble
from app.core.endpoints import Endpoint
from app.services import Services
from app.slack.home.section import Viewer
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY, local_settings


class RecordingHome:
    """A HomeRefresher that remembers what it was asked to do."""

    def __init__(self) -> None:
        self.refreshed: list[Viewer] = []
        self.touched: list[str] = []

    async def refresh(self, viewer: Viewer) -> None:
        self.refreshed.append(viewer)

    def touch(self, *team_ids: str) -> None:
        self.touched.extend(team_ids)


def home_services(slack: FakeSlack, engine: Engine, **settings: Any) -> Services:
    """The app's services on ``engine`` with every fake workspace installed by bot token."""
    config = local_settings(
        slack_signing_secret=slack.signing_secret, slack_api_url=slack.base_url, **settings
    )
    sessions = session_factory(engine)
    cipher = TokenCipher(TEST_KEY)
    workspaces = Workspaces(sessions, cipher, api_url=slack.base_url)
    for team in sorted(slack.state.workspaces):
        asyncio.run(workspaces.add(slack.bot_token(team)))
    return assemble(
        config,
        engine=engine,
        sessions=sessions,
        cipher=cipher,
        slack_rate_scale=1000.0,
        slack_timeout=5.0,
        socket_mode=False,
        matrix=False,
    ).services


def three_teams() -> FakeSlack:
    """A started fake Slack: Acme (T1), Beta (T2) and Gamma (T3), each with a channel C1..C3
    and an admin ``UADMIN<team>``; Bob (UB) of Beta is no admin. Stop it when done."""
    fake = FakeSlack().start()
    for team, name, channel in (("T1", "Acme", "C1"), ("T2", "Beta", "C2"), ("T3", "Gamma", "C3")):
        fake.add_workspace(team, name)
        fake.add_channel(team, channel, "general")
        fake.add_user(team, f"UADMIN{team}", "root", is_admin=True)
    fake.add_user("T2", "UB", "bob")
    return fake


def sync(services: Services, name: str, *endpoints: Endpoint) -> None:
    admin = SyncAdmin(services.sessions)
    admin.create(name)
    for endpoint in endpoints:
        admin.add(name, endpoint)


def shell_bolt(services: Services) -> AsyncApp:
    """The home shell's Bolt app: its authorize and its admin gate (``context["viewer"]``).

    Sections register on it with a :class:`RecordingHome` instead of the shell itself.
    """
    from app.slack.home.app import HomeApp

    shell = HomeApp(
        workspaces=services.slack.workspaces,
        sessions=services.sessions,
        require_admin=services.settings.require_admin,
        api_url=services.settings.slack_api_url,
    )
    return shell.bolt


def on_shell(services: Services, section: Any) -> tuple[AsyncApp, RecordingHome]:
    """``section`` registered on the shell's Bolt app (see :func:`shell_bolt`)."""
    app = shell_bolt(services)
    home = RecordingHome()
    section.register(app, home)
    return app, home


def bolt_app(slack: FakeSlack) -> AsyncApp:
    """A Bolt app without the shell's gate: no checked viewer reaches the handlers."""

    async def authorize(enterprise_id: str | None, team_id: str, **_: Any) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id,
            bot_token=slack.bot_token(team_id),
            bot_user_id=f"U{team_id}BOT",
            bot_id=f"B{team_id}BOT",
        )

    return AsyncApp(
        client=AsyncWebClient(base_url=slack.base_url),
        authorize=authorize,
        signing_secret=slack.signing_secret,
        process_before_response=True,
        request_verification_enabled=False,
    )


async def dispatch(app: AsyncApp, body: dict[str, Any]) -> BoltResponse:
    return await app.async_dispatch(AsyncBoltRequest(body=body, mode="socket_mode"))


def ack_body(response: BoltResponse) -> dict[str, Any]:
    return json.loads(response.body) if response.body else {}


def _interaction(kind: str, team: str, user: str) -> dict[str, Any]:
    """What every interaction payload of ``user`` in ``team`` carries."""
    return {
        "type": kind,
        "api_app_id": "A0SYNCBOT",
        "team": {"id": team, "domain": team.lower()},
        "user": {"id": user, "team_id": team},
        "trigger_id": f"trigger-{user}",
    }


HOME_VIEW = {"id": "VHOME", "type": "home", "hash": "h0", "private_metadata": ""}


def block_action(
    team: str,
    user: str,
    action_id: str,
    *,
    value: str | None = None,
    option: str | None = None,
    view: dict[str, Any] | None = None,
) -> dict[str, Any]:
    action: dict[str, Any] = {"action_id": action_id, "block_id": "b", "action_ts": "1.0"}
    if option is not None:
        action |= {"type": "overflow", "selected_option": {"value": option}}
    else:
        action |= {"type": "button", "value": value or ""}
    shown = view or HOME_VIEW
    return {
        **_interaction("block_actions", team, user),
        "container": {"type": "view", "view_id": shown["id"]},
        "view": shown,
        "actions": [action],
    }


def view_submission(
    team: str, user: str, view: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    shown = dict(view)
    shown.setdefault("id", "VMODAL")
    shown["state"] = {"values": values}
    return {**_interaction("view_submission", team, user), "view": shown}


def opened_views(slack: FakeSlack, team: str, method: str = "views.open") -> list[dict[str, Any]]:
    """The views the app asked Slack to open (or update/push) in ``team``, oldest first."""
    out = []
    for params in slack.called(method, team):
        view = params.get("view")
        out.append(json.loads(view) if isinstance(view, str) else view)
    return out


def block_objects(node: Any) -> Iterator[dict[str, Any]]:
    """Every object in a Block Kit tree of objects and lists, each before what it holds."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from block_objects(value)
    elif isinstance(node, list):
        for item in node:
            yield from block_objects(item)


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every text in ``blocks`` joined, for asserting what a person would read."""
    return "\n".join(n["text"] for n in block_objects(blocks) if isinstance(n.get("text"), str))


def block_kit_problems(view_or_blocks: dict[str, Any] | list[dict[str, Any]]) -> list[str]:
    """Slack limits the fake does not enforce (Slack rejects the whole view for any of them)."""
    problems: list[str] = []
    if isinstance(view_or_blocks, dict):
        blocks = view_or_blocks.get("blocks") or []
        title = (view_or_blocks.get("title") or {}).get("text", "")
        if len(title) > 24:
            problems.append(f"modal title over 24 characters: {title!r}")
    else:
        blocks = view_or_blocks
    if len(blocks) > 100:
        problems.append(f"{len(blocks)} blocks")
    ids = [b["block_id"] for b in blocks if "block_id" in b]
    if len(ids) != len(set(ids)):
        problems.append(f"duplicate block ids: {ids}")

    for node in block_objects(blocks):
        kind = node.get("type")
        if kind == "overflow" and not 2 <= len(node.get("options") or []) <= 5:
            problems.append(f"overflow with {len(node.get('options') or [])} options")
        if kind == "static_select" and not 1 <= len(node.get("options") or []) <= 100:
            problems.append("static_select options out of 1..100")
        if kind == "button" and len(node["text"]["text"]) > 75:
            problems.append(f"button text too long: {node['text']['text']!r}")
        if kind == "plain_text_input" and node.get("initial_value") == "":
            problems.append("empty initial_value")
        if kind == "section" and len((node.get("text") or {}).get("text", "")) > 3000:
            problems.append("section text over 3000 characters")
    return problems
