"""The App Home end to end: signed payloads to ``/slack/events`` drive the real Bolt handlers
against the fake Slack; groups, publishing, subscribing, admin refusals, cheap refreshes, and a
message flowing through the sync the home created."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import Engine, func, select

from app.assembly import build_runtime
from app.slack.home import blocks as block_kit
from app.slack.home.app import ADMIN_TTL, MAX_HOME_BLOCKS, NOT_ADMIN, REFUSED, HomeApp
from app.slack.home.section import Viewer
from app.slack.home.sections import channels, groups
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import make_engine, session_factory
from app.store.groups import MAX_FAILED_JOINS, Groups, HomeVersions
from app.store.migrate import upgrade
from app.store.models import Delivery, SyncEndpoint
from app.store.models_groups import WorkspaceGroup
from fakeslack import APP_ID, FakeSlack, sign
from tests.conftest import TEST_KEY, local_settings
from tests.databases import throwaway_database
from tests.slack.harness import AppServer, wait_for

# The whole flow runs on every backend; the rest of the home logic is backend-neutral (the
# store's own tests cover the three backends).
sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])

# (team, workspace name, admin, second admin, non-admin)
TEAMS = (
    ("T1", "Acme", "UA1", "UA2", "UA3"),
    ("T2", "Beta", "UB1", "UB2", "UB3"),
    ("T3", "Gamma", "UC1", "UC2", "UC3"),
)
_seq = itertools.count(1)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        for team, name, admin, second, member in TEAMS:
            fake.add_workspace(team, name)
            fake.add_channel(team, f"C{team}GEN", "general")
            # Not joined yet: publishing and subscribing make the bot join.
            fake.add_channel(team, f"C{team}NEWS", "news", bot_member=False)
            fake.add_user(team, admin, f"admin-{team}", is_admin=True)
            fake.add_user(team, second, f"owner-{team}", is_owner=True)
            fake.add_user(team, member, f"member-{team}")
        yield fake


@pytest.fixture
def app(slack: FakeSlack, engine: Engine) -> Iterator[AppServer]:
    settings = local_settings(
        slack_signing_secret=slack.signing_secret, slack_api_url=slack.base_url
    )
    server = AppServer(settings, engine).start()
    slack.app_url = f"{server.url}/slack/events"
    assert server.services is not None
    for team, *_ in TEAMS:
        server.run(server.services.slack.workspaces.add(slack.bot_token(team)))
    yield server
    server.stop()


# --- what Slack would send ----------------------------------------------------------------------


def post(app: AppServer, slack: FakeSlack, body: bytes, content_type: str) -> httpx.Response:
    headers = {**sign(slack.signing_secret, body), "Content-Type": content_type}
    return httpx.post(f"{app.url}/slack/events", content=body, headers=headers, timeout=15)


def interact(app: AppServer, slack: FakeSlack, payload: dict[str, Any]) -> httpx.Response:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    response = post(app, slack, body, "application/x-www-form-urlencoded")
    assert response.status_code == 200, response.text
    return response


def actor(team: str, user: str) -> dict[str, Any]:
    return {
        "team": {"id": team, "domain": team.lower()},
        "user": {"id": user, "team_id": team, "username": user},
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": f"{next(_seq)}.{team}.trigger",
    }


def click(
    app: AppServer, slack: FakeSlack, team: str, user: str, action_id: str, value: str = ""
) -> httpx.Response:
    return interact(
        app,
        slack,
        {
            "type": "block_actions",
            **actor(team, user),
            "container": {"type": "view", "view_id": f"VHOME{team}"},
            "view": {"id": f"VHOME{team}", "type": "home", "team_id": team},
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "action_ts": "1700000000.000001",
                }
            ],
        },
    )


def submit(
    app: AppServer, slack: FakeSlack, team: str, user: str, view: dict[str, Any], values: dict
) -> httpx.Response:
    state = {block: {"value": element} for block, element in values.items()}
    return interact(
        app,
        slack,
        {
            "type": "view_submission",
            **actor(team, user),
            "view": {
                **view,
                "id": f"VMODAL{next(_seq)}",
                "team_id": team,
                "state": {"values": state},
            },
        },
    )


def text_value(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}


def conversation(channel: str) -> dict[str, Any]:
    return {"type": "conversations_select", "selected_conversation": channel}


def option(value: str) -> dict[str, Any]:
    return {"type": "static_select", "selected_option": {"value": value}}


def open_home(
    app: AppServer, slack: FakeSlack, team: str, user: str, view: dict[str, Any] | None = None
) -> httpx.Response:
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user,
        "channel": f"D{user}",
        "tab": "home",
        "event_ts": "1700000000.000100",
    }
    if view is not None:
        event["view"] = view
    envelope = {
        "token": "legacy-verification-token",
        "team_id": team,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": f"Ev{next(_seq):08d}",
        "event_time": 1700000000,
        "authorizations": [{"team_id": team, "user_id": f"U{team}BOT", "is_bot": True}],
        "event": event,
    }
    response = post(app, slack, json.dumps(envelope).encode(), "application/json")
    assert response.status_code == 200, response.text
    return response


# --- what the fake recorded ------------------------------------------------------------------


def _view(params: dict[str, Any]) -> dict[str, Any]:
    view = params["view"]
    return json.loads(view) if isinstance(view, str) else view


def published(slack: FakeSlack, team: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(user id, view) of every views.publish so far."""
    return [(p["user_id"], _view(p)) for p in slack.called("views.publish", team)]


def home_of(slack: FakeSlack, team: str, user: str) -> dict[str, Any]:
    views = [v for u, v in published(slack, team) if u == user]
    assert views, f"no home published for {user}"
    return views[-1]


def last_modal(slack: FakeSlack, team: str) -> dict[str, Any]:
    return _view(slack.called("views.open", team)[-1])


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"])


def button_value(view: dict[str, Any], action_id: str) -> str:
    for block in view["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return str(element.get("value", ""))
    raise AssertionError(f"no {action_id} button in {text_of(view)}")


def make_group(app: AppServer, slack: FakeSlack, name: str = "North") -> str:
    """A1 creates a group; returns its invite code as shown in A1's home."""
    click(app, slack, "T1", "UA1", groups.CREATE)
    form = last_modal(slack, "T1")
    assert form["callback_id"] == groups.CREATE
    answer = submit(app, slack, "T1", "UA1", form, {"name": text_value(name)})
    assert answer.content == b""  # closes the modal
    match = re.search(r"Invite code: `([A-Z0-9-]+)`", text_of(home_of(slack, "T1", "UA1")))
    assert match, text_of(home_of(slack, "T1", "UA1"))
    return match.group(1)


def join(app: AppServer, slack: FakeSlack, team: str, user: str, code: str) -> httpx.Response:
    click(app, slack, team, user, groups.JOIN)
    return submit(app, slack, team, user, last_modal(slack, team), {"code": text_value(code)})


# --- tests ----------------------------------------------------------------------------------


def test_a_group_publishes_a_channel_and_messages_flow_to_the_subscriber(
    app: AppServer, slack: FakeSlack, engine: Engine
) -> None:
    sessions = session_factory(engine)
    open_home(app, slack, "T1", "UA1")
    assert "Create a group" in text_of(home_of(slack, "T1", "UA1"))

    code = make_group(app, slack)
    assert join(app, slack, "T2", "UB1", code).content == b""
    assert join(app, slack, "T3", "UC1", code).content == b""
    gamma_home = home_of(slack, "T3", "UC1")
    group_id = Groups(sessions).groups_of("T1")[0].id
    assert {m.team_id for m in Groups(sessions).groups_of("T1")[0].members} == {"T1", "T2", "T3"}

    # B publishes its #news to the whole group.
    before = len(published(slack))
    click(app, slack, "T2", "UB1", channels.PUBLISH, str(group_id))
    form = last_modal(slack, "T2")
    assert form["callback_id"] == channels.PUBLISH
    answer = submit(
        app,
        slack,
        "T2",
        "UB1",
        form,
        {"channel": conversation("CT2NEWS"), "audience": option(channels.EVERYONE)},
    )
    assert answer.content == b""
    assert "UT2BOT" in slack.channel("T2", "CT2NEWS").members  # the bot joined it
    # Only the acting admin's home was republished; the others are marked stale.
    after = published(slack)[before:]
    assert [(user, "news" in text_of(view)) for user, view in after] == [("UB1", True)]
    versions = HomeVersions(sessions)
    assert versions.current("T3") > json.loads(gamma_home["private_metadata"])["v"]

    # Gamma's admin opens the (stale) home: rebuilt once, then left alone while up to date.
    open_home(app, slack, "T3", "UC1", gamma_home)
    fresh = home_of(slack, "T3", "UC1")
    sync_id = button_value(fresh, channels.SUBSCRIBE)
    count = len(published(slack))
    open_home(app, slack, "T3", "UC1", fresh)
    assert len(published(slack)) == count

    # Gamma subscribes with its own #news.
    click(app, slack, "T3", "UC1", channels.SUBSCRIBE, sync_id)
    form = last_modal(slack, "T3")
    answer = submit(app, slack, "T3", "UC1", form, {"channel": conversation("CT3NEWS")})
    assert answer.content == b""
    assert "UT3BOT" in slack.channel("T3", "CT3NEWS").members
    assert "is syncing" in text_of(home_of(slack, "T3", "UC1"))

    # A message posted in Beta's channel arrives in Gamma's, through the ordinary relay.
    slack.post_message("T2", "CT2NEWS", "UB3", "hello from Beta")
    copy = wait_for(
        lambda: [m for m in slack.messages("T3", "CT3NEWS") if "hello from Beta" in m.text]
    )
    assert copy[0].username and "Beta" in copy[0].username
    assert not [m for m in slack.messages("T1", "CT1NEWS") if "hello" in m.text]

    # Gamma pauses: the relay writes nothing for its channel; resume and it flows again.
    click(app, slack, "T3", "UC1", channels.PAUSE, sync_id)
    assert "is paused" in text_of(home_of(slack, "T3", "UC1"))
    slack.post_message("T2", "CT2NEWS", "UB3", "while paused")
    slack.wait_idle()
    with sessions() as s:
        to_gamma = s.execute(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.target_endpoint == "slack:T3/CT3NEWS")
        ).scalar_one()
    assert to_gamma == 1
    click(app, slack, "T3", "UC1", channels.RESUME, sync_id)
    slack.post_message("T2", "CT2NEWS", "UB3", "resumed")
    wait_for(lambda: [m for m in slack.messages("T3", "CT3NEWS") if "resumed" in m.text])

    # Gamma stops; Beta unpublishes: the sync is gone.
    click(app, slack, "T3", "UC1", channels.STOP, sync_id)
    with sessions() as s:
        assert s.execute(select(SyncEndpoint.endpoint)).scalars().all() == ["slack:T2/CT2NEWS"]
    click(app, slack, "T2", "UB1", channels.UNPUBLISH, sync_id)
    with sessions() as s:
        assert s.execute(select(SyncEndpoint)).first() is None
    assert "news" not in text_of(home_of(slack, "T2", "UB1"))
    # No home of a workspace's other admins was ever published: they rebuild when they look.
    assert not [u for u, _ in published(slack) if u in ("UA2", "UB2", "UC2")]


@sqlite_only
def test_non_admins_see_an_explanation_and_change_nothing(
    app: AppServer, slack: FakeSlack, engine: Engine
) -> None:
    code = make_group(app, slack)
    open_home(app, slack, "T2", "UB3")
    home = home_of(slack, "T2", "UB3")
    assert NOT_ADMIN.split(".")[0] in text_of(home)
    assert groups.JOIN not in text_of(home) and code not in text_of(home)

    opens = len(slack.called("views.open", "T2"))
    click(app, slack, "T2", "UB3", groups.JOIN)
    refusals = slack.called("views.open", "T2")[opens:]
    assert len(refusals) == 1 and REFUSED in json.dumps(_view(refusals[0]))

    # A forged submission of the join modal, with the right code, is refused too.
    form = block_kit.modal(
        groups.JOIN,
        "Join a group",
        [block_kit.text_input("code", "Code", max_length=16)],
        submit="Join",
    )
    answer = submit(app, slack, "T2", "UB3", form, {"code": text_value(code)})
    assert answer.json() == {"response_action": "errors", "errors": {"code": REFUSED}}
    assert Groups(session_factory(engine)).groups_of("T2") == []
    # And so is a forged click of somebody else's button.
    group_id = Groups(session_factory(engine)).groups_of("T1")[0].id
    click(app, slack, "T1", "UA3", groups.LEAVE, str(group_id))
    assert len(Groups(session_factory(engine)).groups_of("T1")) == 1


@sqlite_only
def test_wrong_codes_are_limited_through_the_home(
    app: AppServer, slack: FakeSlack, engine: Engine
) -> None:
    code = make_group(app, slack)
    for _ in range(MAX_FAILED_JOINS):
        answer = join(app, slack, "T2", "UB1", "ZZZZ-ZZZZ")
        assert "no group has that code" in answer.json()["errors"]["code"]
    answer = join(app, slack, "T2", "UB1", code)
    assert "too many wrong codes" in answer.json()["errors"]["code"]
    assert Groups(session_factory(engine)).groups_of("T2") == []
    # Another workspace is not held back.
    assert join(app, slack, "T3", "UC1", code).content == b""


@sqlite_only
def test_invite_accept_and_leave(app: AppServer, slack: FakeSlack, engine: Engine) -> None:
    sessions = session_factory(engine)
    make_group(app, slack)
    group_id = Groups(sessions).groups_of("T1")[0].id
    click(app, slack, "T1", "UA1", groups.INVITE, str(group_id))
    form = last_modal(slack, "T1")
    choices = [o["value"] for o in form["blocks"][0]["element"]["options"]]
    assert choices == ["T2", "T3"]
    submit(app, slack, "T1", "UA1", form, {"workspace": option("T2")})

    open_home(app, slack, "T2", "UB2")  # any admin of the invited workspace sees it
    invitation = home_of(slack, "T2", "UB2")
    assert "invited this workspace" in text_of(invitation)
    click(app, slack, "T2", "UB2", groups.ACCEPT, button_value(invitation, groups.ACCEPT))
    assert [g.my_status for g in Groups(sessions).groups_of("T2")] == ["active"]

    # Beta publishes, Acme subscribes; Beta leaves: its channel leaves the sync.
    sync_id = Groups(sessions).publish(group_id, "T2", "CT2NEWS", channel_name="news")
    Groups(sessions).subscribe(sync_id, "T1", "CT1NEWS")
    click(app, slack, "T2", "UB2", groups.LEAVE, str(group_id))
    assert Groups(sessions).groups_of("T2") == []
    with sessions() as s:
        assert s.execute(select(SyncEndpoint)).first() is None  # one endpoint left: ended
        assert s.get(WorkspaceGroup, group_id) is not None
    # Leaving again is explained, not a crash.
    opens = len(slack.called("views.open", "T2"))
    click(app, slack, "T2", "UB2", groups.LEAVE, str(group_id))
    assert "not a member" in json.dumps(_view(slack.called("views.open", "T2")[opens]))


@sqlite_only
def test_a_socket_mode_only_install_gets_the_home_through_its_envelopes(
    slack: FakeSlack, backend: str, tmp_path: Path
) -> None:
    """No signing secret, no HTTP route: interactive and events_api envelopes take the socket
    events path (SlackEvents.process), which the assembly hooked the home into."""
    with throwaway_database(backend, tmp_path) as url:
        settings = local_settings(slack_signing_secret=None, slack_api_url=slack.base_url)
        engine = make_engine(settings, url=url)
        upgrade(engine)
        runtime = build_runtime(settings, engine=engine)
        try:
            services = runtime.services
            assert not services.slack.routes  # no HTTP events route
            assert runtime.socket_mode is not None
            events = runtime.socket_mode.events

            async def scenario() -> tuple[int, int]:
                await services.slack.workspaces.add(slack.bot_token("T1"))
                opened = {
                    "type": "event_callback",
                    "team_id": "T1",
                    "event_id": "EvSOCKET1",
                    "event": {"type": "app_home_opened", "user": "UA1", "tab": "home"},
                }
                await events.process(opened, started=float("-inf"))
                create = {
                    "type": "view_submission",
                    **actor("T1", "UA1"),
                    "view": {
                        **block_kit.modal(groups.CREATE, "Create a group", [], submit="Create"),
                        "id": "VSOCK",
                        "state": {"values": {"name": {"value": text_value("Socket")}}},
                    },
                }
                answer = await events.process(create, started=float("-inf"))
                return answer.status_code, len(answer.body)

            assert asyncio.run(scenario()) == (200, 0)
            assert "Create a group" in text_of(published(slack, "T1")[0][1])
            assert [g.name for g in Groups(session_factory(engine)).groups_of("T1")] == ["Socket"]
        finally:
            runtime.close()
            engine.dispose()


class _Section:
    """A stand-in section: ``count`` blocks, or a failure."""

    def __init__(self, key: str, count: int = 1, fail: bool = False) -> None:
        self.key, self.count, self.fail = key, count, fail

    def visible(self, viewer: Viewer) -> bool:
        return True

    async def blocks(self, viewer: Viewer) -> list[dict[str, Any]]:
        if self.fail:
            raise RuntimeError("boom")
        return [block_kit.context(f"{self.key} {i}") for i in range(self.count)]

    def register(self, bolt: Any, home: Any) -> None:
        pass


@sqlite_only
def test_admin_checks_are_cached_briefly_and_sections_cannot_break_the_home(
    slack: FakeSlack, engine: Engine
) -> None:
    sessions = session_factory(engine)
    workspaces = Workspaces(sessions, TokenCipher(TEST_KEY), api_url=slack.base_url)
    now = [0.0]
    home = HomeApp(
        workspaces=workspaces, sessions=sessions, api_url=slack.base_url, clock=lambda: now[0]
    )
    everyone = HomeApp(workspaces=workspaces, sessions=sessions, require_admin=False)
    home.add(_Section("broken", fail=True))
    home.add(_Section("long", count=150))

    async def scenario() -> dict[str, Any]:
        await workspaces.add(slack.bot_token("T1"))
        checks = [await home.is_admin("T1", u) for u in ("UA1", "UA2", "UA3", "UA1")]
        asked = len(slack.called("users.info", "T1"))
        now[0] = ADMIN_TTL + 1
        await home.is_admin("T1", "UA1")
        await home.refresh(Viewer("T1", "UA1", True))
        return {
            "checks": checks,
            "asked": asked,
            "asked_later": len(slack.called("users.info", "T1")),
            "member_without_gate": await everyone.is_admin("T1", "UA3"),
        }

    result = asyncio.run(scenario())
    # Admin and owner yes, member no; the repeat came from the cache until it expired.
    assert result["checks"] == [True, True, False, True]
    assert (result["asked"], result["asked_later"]) == (3, 4)
    assert result["member_without_gate"] is True
    assert len(slack.called("users.info", "T1")) == 4  # REQUIRE_ADMIN=false asks nobody
    view = home_of(slack, "T1", "UA1")
    assert len(view["blocks"]) == MAX_HOME_BLOCKS
    assert "The broken part could not be shown" in text_of(view)
    assert "some is left out" in json.dumps(view["blocks"][-1])
