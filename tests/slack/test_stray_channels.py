"""The bot in a channel no sync uses: a note on joining, a goodbye and a leave after the grace
period — unless a sync took the channel meanwhile or the workspace is bridged whole to Matrix."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.core.endpoints import Endpoint
from app.slack.stray_channels import GOODBYE, StrayChannels
from app.slack.workspaces import Workspaces
from app.store.cipher import TokenCipher
from app.store.engine import session_factory
from app.store.models import Workspace
from app.store.models_matrix import MatrixLogin, MatrixUser
from app.store.models_presence import StrayChannel
from app.store.syncs import SyncAdmin
from fakeslack import FakeSlack
from tests.conftest import TEST_KEY


@pytest.fixture
def world(engine) -> Iterator[tuple[FakeSlack, StrayChannels, object]]:
    slack = FakeSlack().start()
    slack.add_workspace("T1", "Acme")
    for channel in ("C1", "C8", "C9"):
        slack.add_channel("T1", channel, channel.lower())
    sessions = session_factory(engine)
    workspaces = Workspaces(sessions, TokenCipher(TEST_KEY), api_url=slack.base_url)
    asyncio.run(workspaces.add(slack.bot_token("T1")))
    SyncAdmin(sessions).create("general")
    SyncAdmin(sessions).add("general", Endpoint.slack("T1", "C1"))
    yield slack, StrayChannels(sessions, workspaces), sessions
    slack.stop()


def notice(strays: StrayChannels, payload: dict) -> None:
    async def run() -> None:
        await strays.on_event(payload)
        await strays.wait_idle()

    asyncio.run(run())


def joined(slack: FakeSlack, channel: str, user: str | None = None) -> dict:
    event = {
        "type": "member_joined_channel",
        "user": user or slack.installation("T1").bot_user_id,
        "channel": channel,
        "team": "T1",
    }
    return {"type": "event_callback", "team_id": "T1", "event": event}


def texts(slack: FakeSlack, channel: str) -> list[str]:
    return [m.text for m in slack.messages("T1", channel)]


def later(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def test_the_bot_explains_itself_then_leaves_a_channel_nothing_uses(world) -> None:
    slack, strays, _sessions = world
    notice(strays, joined(slack, "C9"))
    notice(strays, joined(slack, "C1"))  # in a sync: nothing to say
    notice(strays, joined(slack, "C9", user="U_SOMEONE"))  # not the bot
    (hello,) = texts(slack, "C9")
    assert "App Home" in hello and "30 minutes" in hello
    assert texts(slack, "C1") == []
    assert asyncio.run(strays.sweep(now=later(10))) == 0  # still within the grace period
    assert asyncio.run(strays.sweep(now=later(31))) == 1
    assert texts(slack, "C9")[-1] == GOODBYE
    assert [c["channel"] for c in slack.called("conversations.leave")] == ["C9"]
    assert asyncio.run(strays.sweep(now=later(62))) == 0  # gone for good


def test_a_channel_that_gets_a_sync_in_time_is_kept(world) -> None:
    slack, strays, sessions = world
    notice(strays, joined(slack, "C8"))
    SyncAdmin(sessions).add("general", Endpoint.slack("T1", "C8"))
    assert asyncio.run(strays.sweep(now=later(31))) == 0
    assert slack.called("conversations.leave") == []
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(StrayChannel)).scalar_one() == 0


def test_a_workspace_bridged_whole_to_matrix_is_exempt(world) -> None:
    slack, strays, sessions = world
    with sessions() as s, s.begin():
        s.add(MatrixUser(mxid="@ada:example.org"))
        s.flush()
        s.add(MatrixLogin(user_id="@ada:example.org", team_id="T1"))
    notice(strays, joined(slack, "C9"))
    assert texts(slack, "C9") == []
    assert asyncio.run(strays.sweep(now=later(31))) == 0


def test_leaving_by_itself_or_a_purge_forgets_the_channel(world) -> None:
    slack, strays, sessions = world
    notice(strays, joined(slack, "C9"))
    left = joined(slack, "C9") | {}
    left["event"] = left["event"] | {"type": "member_left_channel"}
    notice(strays, left)
    notice(strays, joined(slack, "C8"))
    with sessions() as s, s.begin():
        s.delete(s.execute(select(Workspace)).scalar_one())  # the retention purge
    with sessions() as s:
        assert s.execute(select(func.count()).select_from(StrayChannel)).scalar_one() == 0
