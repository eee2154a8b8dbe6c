"""A Slack Connect channel seen by two logged-in workspaces is one portal (#21 item 5),
through a real Synapse and the fake Slack emitting the shared-channel event shapes: each
message bridged once, authors as their own workspace's ghosts, Matrix messages posted once
through one installation, and through the other when the first workspace is logged out."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from app.core.endpoints import Endpoint
from tests.matrix.conftest import direct_chat
from tests.matrix.synapse import MatrixUser, Synapse
from tests.matrix.test_login_flow import BOT, Flow, running
from tests.matrix.test_spaces_live import children, space_of
from tests.slack.harness import settled, wait_for

pytestmark = pytest.mark.integration

_names = itertools.count(1)


def login_as(f: Flow, user: MatrixUser, team: str, name: str) -> str:
    dm = direct_chat(user, BOT)
    user.text(dm, "login app")
    wait_for(lambda: any("bot token" in n for n in notices(user, dm)))
    user.text(dm, f.slack.bot_token(team))
    wait_for(lambda: any("app-level token" in n for n in notices(user, dm)))
    user.text(dm, f.slack.app_token)
    wait_for(lambda: any(f"Logged in to {name} ({team})" in n for n in notices(user, dm)))
    return dm


def both_logged_in(f: Flow, ann: MatrixUser, bea: MatrixUser, beta: str) -> str:
    """Ann logs in to Acme, then Bea to Beta, each login's sync done; Ann's DM with the bot."""
    dm = login_as(f, ann, f.team, "Acme")
    wait_for(lambda: f.app.bridge.workspace_bridge.completed_syncs >= 1)
    login_as(f, bea, beta, "Beta")
    wait_for(lambda: f.app.bridge.workspace_bridge.completed_syncs >= 2)
    return dm


def notices(user: MatrixUser, room: str) -> list[str]:
    return [
        e["content"].get("body", "")
        for e in user.events(room)
        if e["type"] == "m.room.message" and e["sender"] == BOT
    ]


@pytest.fixture
def shared(synapse: Synapse, tmp_path: Path) -> Iterator[tuple[Flow, str, MatrixUser]]:
    """Acme (``f.team``) shares #general (C1) with Beta, which installed the app too."""
    n = next(_names)
    team = f"TSH{n}"
    person = f"ann{n}s{tmp_path.name[-6:].lower()}"
    with running(Flow, synapse, tmp_path, team, person) as f:
        beta = f"TSB{n}"
        f.slack.add_workspace(beta, "Beta", socket_mode=True)
        f.slack.add_user(beta, "U7", "Bea")
        f.slack.add_channel(beta, "C9", "beta-only", members=["U7"])
        f.slack.share_channel(team, "C1", beta)
        bot = f.slack.installation(beta).bot_user_id
        f.slack.call(
            lambda: f.slack.state.workspaces[team].channels["C1"].members.extend([bot, "U7"])
        )
        bob = synapse.register_user(f"bea{n}s{tmp_path.name[-6:].lower()}")
        try:
            yield f, beta, bob
        finally:
            bob.close()


def bodies(f: Flow, room: str, text: str) -> list[dict[str, object]]:
    chunk = f.as_bot("GET", f"/rooms/{room}/messages", params={"dir": "b", "limit": 200})
    return [
        e
        for e in chunk["chunk"]
        if e["type"] == "m.room.message" and e["content"].get("body") == text
    ]


def posted(f: Flow, text: str) -> list[str]:
    return [m.text for m in f.slack.messages(f.team, "C1") if m.text == text]


def test_a_channel_shared_by_two_logged_in_workspaces_is_one_portal(
    shared: tuple[Flow, str, MatrixUser],
) -> None:
    f, beta, bea = shared
    alice = f.alice
    both_logged_in(f, alice, bea, beta)
    portals = f.app.matrix.portals
    acme_view, beta_view = Endpoint.slack(f.team, "C1"), Endpoint.slack(beta, "C1")
    room = f.room_of("C1")
    # One portal, kept under the view that had it first; Beta's user is invited to it.
    assert portals.get(beta_view) is None
    wait_for(lambda: f.membership(room, bea.user_id) == "invite")
    beta_only = wait_for(lambda: (p := portals.get(Endpoint.slack(beta, "C9"))) and p.room_id)
    assert beta_only != room

    # Bea of Beta writes in the shared channel: both installations report it; it arrives once,
    # as Beta's ghost.
    f.slack.post_message(beta, "C1", "U7", "hello from beta")
    wait_for(lambda: bodies(f, room, "hello from beta"))
    f.slack.post_message(f.team, "C1", "U1", "hello from acme")
    wait_for(lambda: bodies(f, room, "hello from acme"))
    wait_for(lambda: settled(f.slack, f.app))
    assert [e["sender"] for e in bodies(f, room, "hello from beta")] == [
        f"@slack_{beta.lower()}_u7:test.local"
    ]
    assert [e["sender"] for e in bodies(f, room, "hello from acme")] == [f.ghost("U1")]

    # Matrix -> Slack: posted once, through one installation.
    alice.call("POST", f"/join/{room}", json={})
    bea.call("POST", f"/join/{room}", json={})
    alice.text(room, "from matrix")
    wait_for(lambda: posted(f, "from matrix"))
    wait_for(lambda: settled(f.slack, f.app))
    assert posted(f, "from matrix") == ["from matrix"]

    # Acme logs out: the portal goes on through Beta's installation.
    dm = direct_chat(alice, BOT)
    alice.text(dm, f"logout {f.team}")
    wait_for(lambda: any(f"Logged out of {f.team}" in n for n in notices(alice, dm)))
    moved = wait_for(lambda: portals.get(beta_view))
    assert moved.room_id == room and portals.get(acme_view) is None
    bea.text(room, "after the logout")
    wait_for(lambda: posted(f, "after the logout"))
    assert any(
        c.get("channel") == "C1" and "after the logout" in str(c.get("text"))
        for c in f.slack.called("chat.postMessage", beta)
    )
    wait_for(lambda: settled(f.slack, f.app))
    assert posted(f, "after the logout") == ["after the logout"]
    # And Slack -> Matrix still arrives, once.
    f.slack.post_message(beta, "C1", "U7", "still here")
    wait_for(lambda: bodies(f, room, "still here"))


def test_the_first_message_of_a_shared_channel_makes_one_portal(
    shared: tuple[Flow, str, MatrixUser],
) -> None:
    """A shared channel with no portal yet: both installations report its first message at
    once, and it gets one portal (both workspaces' users invited), the message in it once."""
    f, beta, bea = shared
    both_logged_in(f, f.alice, bea, beta)
    f.slack.add_channel(f.team, "C6", "new-shared", members=["U1"])
    f.slack.share_channel(f.team, "C6", beta)
    bot = f.slack.installation(beta).bot_user_id
    f.slack.call(lambda: f.slack.state.workspaces[f.team].channels["C6"].members.append(bot))
    f.slack.post_message(f.team, "C6", "U1", "first words")
    portals = f.app.matrix.portals
    views = (Endpoint.slack(f.team, "C6"), Endpoint.slack(beta, "C6"))

    def made() -> list[str]:
        found = [portals.get(v) for v in views]
        return [str(p.room_id) for p in found if p is not None and p.state == "active"]

    # Kept under whichever installation's report came first.
    (room,) = wait_for(made)
    wait_for(lambda: bodies(f, room, "first words"))
    wait_for(lambda: settled(f.slack, f.app))
    assert made() == [room]
    assert len(bodies(f, room, "first words")) == 1
    wait_for(lambda: f.membership(room, f.alice.user_id) == "invite")
    wait_for(lambda: f.membership(room, bea.user_id) == "invite")


def test_a_shared_portal_goes_on_through_the_other_installation_after_an_uninstall(
    shared: tuple[Flow, str, MatrixUser],
) -> None:
    f, beta, bea = shared
    both_logged_in(f, f.alice, bea, beta)
    room = f.room_of("C1")
    portals = f.app.matrix.portals
    f.slack.uninstall(f.team)
    moved = wait_for(lambda: portals.get(Endpoint.slack(beta, "C1")))
    assert moved.room_id == room
    bea.call("POST", f"/join/{room}", json={})
    bea.text(room, "after the uninstall")
    wait_for(lambda: posted(f, "after the uninstall"))
    wait_for(lambda: settled(f.slack, f.app))
    assert posted(f, "after the uninstall") == ["after the uninstall"]


def test_looking_up_the_other_views_alias_finds_the_one_portal(
    shared: tuple[Flow, str, MatrixUser],
) -> None:
    f, beta, bea = shared
    login_as(f, f.alice, f.team, "Acme")
    wait_for(lambda: f.app.bridge.workspace_bridge.completed_syncs >= 1)
    room = f.room_of("C1")
    login_as(f, bea, beta, "Beta")
    wait_for(lambda: f.app.bridge.workspace_bridge.completed_syncs >= 2)
    alias = quote(f"#slack_{beta.lower()}_c1:test.local")
    found = bea.call("GET", f"/directory/room/{alias}")
    assert found["room_id"] == room
    assert f.app.matrix.portals.get(Endpoint.slack(beta, "C1")) is None
    bea.call("POST", f"/join/{room}", json={})


def test_a_deleted_shared_portal_leaves_both_workspaces_spaces(
    shared: tuple[Flow, str, MatrixUser],
) -> None:
    """The one portal is a child of each logged-in workspace's space; deleting it unlinks it
    from both, not only from the space of the view it is kept under."""
    f, beta, bea = shared
    dm = both_logged_in(f, f.alice, bea, beta)
    room = f.room_of("C1")
    spaces = [space_of(f, team) for team in (f.team, beta)]
    for space in spaces:
        wait_for(lambda s=space: room in children(f, s))

    f.alice.text(dm, f"delete-portal {room}")
    wait_for(lambda: f.portal("C1") is None)
    for space in spaces:
        wait_for(lambda s=space: room not in children(f, s))


def test_a_reaction_from_the_other_organisation_is_its_own_ghosts(
    shared: tuple[Flow, str, MatrixUser],
) -> None:
    """Reactions carry no team (unlike messages' ``user_team``): the reactor's workspace comes
    from their profile, so Bea of Beta reacts as the same ghost that posts her messages."""
    f, beta, bea = shared
    both_logged_in(f, f.alice, bea, beta)
    room = f.room_of("C1")
    ts = f.slack.post_message(f.team, "C1", "U1", "react to me")
    [event] = wait_for(lambda: bodies(f, room, "react to me"))
    f.slack.react(f.team, "C1", ts, "U7", "tada")
    f.slack.react(f.team, "C1", ts, "U1", "eyes")

    def reactors() -> dict[str, str]:
        chunk = f.as_bot("GET", f"/rooms/{room}/messages", params={"dir": "b", "limit": 100})
        return {
            e["content"]["m.relates_to"]["key"]: e["sender"]
            for e in chunk["chunk"]
            if e["type"] == "m.reaction"
            and e["content"]["m.relates_to"]["event_id"] == event["event_id"]
        }

    wait_for(lambda: len(reactors()) == 2)
    assert reactors() == {"🎉": f"@slack_{beta.lower()}_u7:test.local", "👀": f.ghost("U1")}
