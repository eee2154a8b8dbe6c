"""Direct messages to the bot become portals for the workspace's logged-in Matrix users,
through a real Synapse and the fake Slack (#21 item 4)."""

from __future__ import annotations

import pytest

from tests.matrix.test_login_flow import Flow, flow, login  # noqa: F401 (the fixture)
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration


def test_a_dm_to_the_bot_is_a_portal(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    dm = login(f)
    wait_for(lambda: any("Bridged 3" in n for n in f.notices(dm)))
    im = f.slack.open_dm(f.team, "U2")
    f.slack.post_message(f.team, im, "U2", "psst, bot")
    room = f.room_of(im)
    assert f.state(room, "m.room.name")["name"] == "#DM with Bob"
    wait_for(lambda: f.membership(room, a.user_id) == "invite")
    a.call("POST", f"/join/{room}", json={})
    wait_for(lambda: "psst, bot" in f.bodies(room))
    # And back: Alice's answer reaches Bob's DM with the bot.
    a.text(room, "hello Bob")
    wait_for(lambda: f.slack.find_message(f.team, im, text="hello Bob") is not None)


def test_a_group_dm_with_the_bot_is_a_portal(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    dm = login(f)
    wait_for(lambda: any("Bridged 3" in n for n in f.notices(dm)))
    group = f.slack.open_group_dm(f.team, "G77", ["U1", "U2"])
    f.slack.post_message(f.team, group, "U1", "all of us")
    room = f.room_of(group)
    assert f.state(room, "m.room.name")["name"].startswith("#Group DM: ")
    wait_for(lambda: f.membership(room, a.user_id) == "invite")
    a.call("POST", f"/join/{room}", json={})
    wait_for(lambda: "all of us" in f.bodies(room))
    a.text(room, "hello both")
    wait_for(lambda: f.slack.find_message(f.team, group, text="hello both") is not None)
