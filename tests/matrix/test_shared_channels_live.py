"""Slack Connect: a channel shared by two installed workspaces is one conversation, through a
real Synapse and the fake Slack emitting the shared-channel event shapes (#21 item 5)."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.endpoints import Endpoint
from tests.matrix.conftest import World
from tests.slack.harness import settled, wait_for

pytestmark = pytest.mark.integration


def ghost_posts(w: World, body: str) -> list[dict[str, Any]]:
    return [
        e
        for e in w.alice.events(w.room)
        if e["type"] == "m.room.message"
        and e["content"].get("body") == body
        and e["sender"].startswith("@slack_")
    ]


def shared(w: World) -> None:
    """Acme shares #general (C1) with Beta; Beta's admin adds their view of it to the sync."""
    w.slack.share_channel("T1", "C1", "T2")
    bot_user = w.slack.call(lambda: w.slack.state.workspaces["T2"].installation.bot_user_id)
    w.slack.call(lambda: w.slack.state.workspaces["T1"].channels["C1"].members.append(bot_user))
    w.syncs.add("general", Endpoint.slack("T2", "C1"))


def test_the_fake_reports_a_shared_channel_event_through_each_installation(
    world: World,
) -> None:
    w = world
    shared(w)
    before = len(w.slack.emitted)
    w.slack.post_message("T2", "C1", "U2", "shape check")
    envelopes = w.slack.emitted[before:]
    assert sorted(e["team_id"] for e in envelopes) == ["T1", "T2"]
    assert len({e["event_id"] for e in envelopes}) == 2
    for env in envelopes:
        assert env["is_ext_shared_channel"] is True
        assert [a["team_id"] for a in env["authorizations"]] == [env["team_id"]]
        assert env["event"]["channel"] == "C1" and env["event"]["user_team"] == "T2"


def test_a_shared_channel_is_one_conversation(world: World) -> None:
    w = world
    shared(w)
    # Bob of Beta writes in the shared channel: both installations report it.
    ts = w.slack.post_message("T2", "C1", "U2", "one conversation")
    wait_for(lambda: ghost_posts(w, "one conversation"))
    wait_for(lambda: w.slack.find_message("T2", "C2", text="one conversation") is not None)
    wait_for(lambda: settled(w.slack, w.app))
    posts = ghost_posts(w, "one conversation")
    assert len(posts) == 1
    # Bob is Beta's: his own workspace's ghost and name, though the channel is Acme's.
    assert posts[0]["sender"] == "@slack_t2_u2:test.local"
    profile = w.alice.call("GET", f"/profile/{posts[0]['sender']}")
    assert profile["displayname"] == "Bob (Beta)"
    assert [m.text for m in w.slack.messages("T2", "C2")].count("one conversation") == 1
    # Nothing copied back into the shared channel itself (it is one place in the sync twice).
    assert [m.text for m in w.slack.messages("T1", "C1")].count("one conversation") == 1

    # An edit reported by both installations reaches Matrix once, on the one post.
    w.slack.edit("T2", "C1", ts, "one conversation, edited")
    wait_for(
        lambda: any(
            e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
            for e in w.alice.events(w.room)
        )
    )
    wait_for(lambda: settled(w.slack, w.app))
    edits = [
        e
        for e in w.alice.events(w.room)
        if e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
    ]
    assert len(edits) == 1
    assert edits[0]["content"]["m.relates_to"]["event_id"] == posts[0]["event_id"]

    # Ada of Acme, in the same channel: once, as Acme's.
    w.slack.post_message("T1", "C1", "U1", "from the host side")
    wait_for(lambda: ghost_posts(w, "from the host side"))
    wait_for(lambda: settled(w.slack, w.app))
    host = ghost_posts(w, "from the host side")
    assert len(host) == 1 and host[0]["sender"] == "@slack_t1_u1:test.local"
