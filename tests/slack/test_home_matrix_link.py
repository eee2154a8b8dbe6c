"""The Matrix link section of the App Home, on every backend, with the homeserver's answers faked.

The homeserver side is a stand-in bot answering as Synapse does (mautrix's errors for unknown
aliases, forbidden joins, missing state); the real-Synapse path of the same ``link_room`` is
covered by the bot command test in tests/matrix/test_appservice.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from mautrix.errors import MForbidden, MNotFound
from sqlalchemy import Engine

from app.core.endpoints import Endpoint
from app.matrix.commands import MatrixRoomLinks
from app.services import Services
from app.slack.home import kit
from app.slack.home.section import Viewer
from app.slack.home.sections.matrix_link import (
    LINK_VIEW,
    OPEN_LINK,
    UNLINK,
    MatrixLinkSection,
    link_view,
)
from fakeslack import FakeSlack
from tests.slack.home_bolt import (
    ack_body,
    block_action,
    block_kit_problems,
    dispatch,
    home_services,
    on_shell,
    opened_views,
    sync,
    texts,
    three_teams,
    view_submission,
)

MATRIX = {
    "matrix_homeserver_url": "http://127.0.0.1:9",
    "matrix_server_name": "hs.test",
    "matrix_as_token": "as-token-0123456789",
    "matrix_hs_token": "hs-token-0123456789",
}
BOT = "@slackbot:hs.test"


class FakeBot:
    """The bridge bot's intent, as far as linking uses it."""

    def __init__(self) -> None:
        self.aliases = {"#lobby:hs.test": "!lobby:hs.test"}
        self.encrypted = {"!secret:hs.test"}
        self.invite_only = {"!closed:hs.test"}
        self.joined: list[str] = []
        self.left: list[str] = []
        self.slow: asyncio.Event | None = None  # set: joins wait for it

    async def resolve_room_alias(self, alias: str) -> Any:
        if alias not in self.aliases:
            raise MNotFound(404, "Room alias not found")
        return SimpleNamespace(room_id=self.aliases[alias])

    async def join_room(self, room: str) -> str:
        if self.slow is not None:
            await self.slow.wait()
        if room in self.invite_only:
            raise MForbidden(403, "You are not invited to this room.")
        self.joined.append(room)
        return room

    async def get_state_event(self, room: str, event_type: Any) -> dict[str, Any]:
        if room in self.encrypted:
            return {"algorithm": "m.megolm.v1.aes-sha2"}
        raise MNotFound(404, "Event not found.")

    async def leave_room(self, room: str) -> None:
        self.left.append(room)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = three_teams()
    yield fake
    fake.stop()


@pytest.fixture
def bot() -> FakeBot:
    return FakeBot()


@pytest.fixture
def services(slack: FakeSlack, engine: Engine, bot: FakeBot) -> Services:
    built = home_services(slack, engine, **MATRIX)
    sync(built, "general", Endpoint.slack("T1", "C1"), Endpoint.slack("T2", "C2"))
    sync(built, "apart", Endpoint.slack("T3", "C3"))
    homeserver = SimpleNamespace(bot=bot, ids=SimpleNamespace(bot=BOT))
    built.matrix_links = MatrixRoomLinks(homeserver, built.syncs)  # type: ignore[arg-type]
    return built


def endpoints(services: Services, name: str) -> set[str]:
    return {e for v in services.syncs.list() if v.name == name for e, _ in v.endpoints}


def submission(user: str, channel: str | None, room: str, team: str = "T2") -> dict[str, Any]:
    values = {
        "channel": {"channel": {"selected_conversation": channel}},
        "room": {"room": {"value": room}},
    }
    return view_submission(team, user, {"id": "VLINK", **link_view(BOT)}, values)


async def test_linking_a_room_by_alias_adds_it_to_the_channels_sync(
    services: Services, slack: FakeSlack, bot: FakeBot
) -> None:
    section = MatrixLinkSection(services)
    app, home = on_shell(services, section)
    admin = Viewer("T2", "UADMINT2", is_admin=True)
    assert section.visible(admin)
    assert "No Matrix room is linked yet" in texts(await section.blocks(admin))

    await dispatch(app, block_action("T2", "UADMINT2", OPEN_LINK))
    modal = opened_views(slack, "T2")[-1]
    assert modal["callback_id"] == LINK_VIEW and BOT in texts(modal["blocks"])
    assert block_kit_problems(modal) == []

    response = await dispatch(app, submission("UADMINT2", "C2", " #lobby:hs.test "))
    answer = ack_body(response)
    assert answer["response_action"] == "update" and answer["view"]["title"]["text"] == "Linked"
    assert "matrix:!lobby:hs.test" in endpoints(services, "general")
    assert bot.joined == ["!lobby:hs.test"]
    assert [v.user_id for v in home.refreshed] == ["UADMINT2"]
    assert home.touched == ["T1"]  # the other workspace of the sync
    linked = await section.blocks(admin)
    assert block_kit_problems(linked) == []
    shown = texts(linked)
    assert "<#C2> ↔ `!lobby:hs.test`" in shown
    # Acme's channel is in the same sync: its admins see the room too.
    assert "!lobby:hs.test" in texts(await section.blocks(Viewer("T1", "UADMINT1", True)))


@pytest.mark.parametrize(
    ("room", "reason"),
    [
        ("!secret:hs.test", "end-to-end encrypted"),
        ("!closed:hs.test", "invite it first"),
        ("#nowhere:hs.test", "no room has the alias"),
    ],
)
async def test_rooms_that_cannot_be_bridged_are_refused_with_the_reason(
    services: Services, slack: FakeSlack, bot: FakeBot, room: str, reason: str
) -> None:
    app, home = on_shell(services, MatrixLinkSection(services))
    outcome = ack_body(await dispatch(app, submission("UADMINT2", "C2", room)))["view"]
    assert outcome["title"]["text"] == "Not linked"
    assert reason in texts(outcome["blocks"])
    assert endpoints(services, "general") == {"slack:T1/C1", "slack:T2/C2"}
    assert bot.left == (["!secret:hs.test"] if "encrypted" in reason else [])
    assert home.refreshed == [] and home.touched == []


async def test_bad_input_and_non_admins_are_answered_in_the_modal(
    services: Services, slack: FakeSlack, bot: FakeBot
) -> None:
    app, _ = on_shell(services, MatrixLinkSection(services))
    cases = [
        (submission("UB", "C2", "#lobby:hs.test"), "channel", "Only admins"),
        (submission("UADMINT2", "C9", "#lobby:hs.test"), "channel", "not in a sync"),
        (submission("UADMINT2", None, "#lobby:hs.test"), "channel", "Pick a channel"),
        (submission("UADMINT2", "C2", "lobby"), "room", "room id"),
    ]
    for payload, field, message in cases:
        answer = ack_body(await dispatch(app, payload))
        assert answer["response_action"] == "errors"
        assert message in answer["errors"][field], answer
    assert bot.joined == []
    assert endpoints(services, "general") == {"slack:T1/C1", "slack:T2/C2"}
    # A non-admin's button click opens a refusal, not the link modal.
    await dispatch(app, block_action("T2", "UB", OPEN_LINK))
    assert "Only admins" in texts(opened_views(slack, "T2")[-1]["blocks"])


async def test_unlink_only_by_admins_of_a_workspace_in_that_sync(
    services: Services, slack: FakeSlack, bot: FakeBot
) -> None:
    services.syncs.add("general", Endpoint.matrix("!lobby:hs.test"))
    app, home = on_shell(services, MatrixLinkSection(services))

    await dispatch(app, block_action("T2", "UB", UNLINK, value="!lobby:hs.test"))
    await dispatch(app, block_action("T3", "UADMINT3", UNLINK, value="!lobby:hs.test"))
    assert "matrix:!lobby:hs.test" in endpoints(services, "general")
    assert home.refreshed == []

    await dispatch(app, block_action("T1", "UADMINT1", UNLINK, value="!lobby:hs.test"))
    assert endpoints(services, "general") == {"slack:T1/C1", "slack:T2/C2"}
    assert [v.team_id for v in home.refreshed] == ["T1"] and home.touched == ["T2"]


def test_hidden_without_the_bridge(slack: FakeSlack, engine: Engine) -> None:
    admin, member = Viewer("T2", "UADMINT2", is_admin=True), Viewer("T2", "UB", is_admin=False)
    assert not MatrixLinkSection(home_services(slack, engine)).visible(admin)
    bridged = MatrixLinkSection(home_services(slack, engine, **MATRIX))
    assert bridged.visible(admin) and not bridged.visible(member)


async def test_a_slow_homeserver_gets_the_modal_answered_in_time_then_updated(
    services: Services, slack: FakeSlack, bot: FakeBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kit, "ACK_BUDGET", 0.05)
    bot.slow = asyncio.Event()
    section = MatrixLinkSection(services)
    app, home = on_shell(services, section)
    answer = ack_body(await dispatch(app, submission("UADMINT2", "C2", "#lobby:hs.test")))
    assert answer["view"]["title"]["text"] == "Linking…"
    assert "matrix:!lobby:hs.test" not in endpoints(services, "general")
    bot.slow.set()
    await section.background.settle()
    assert "matrix:!lobby:hs.test" in endpoints(services, "general")
    assert slack.called("views.update", "T2")[-1]["view_id"] == "VLINK"
    assert opened_views(slack, "T2", "views.update")[-1]["title"]["text"] == "Linked"
    assert [v.user_id for v in home.refreshed] == ["UADMINT2"]
