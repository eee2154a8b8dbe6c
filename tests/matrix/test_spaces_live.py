"""A space per logged-in workspace, kept in step with its portals, on a real Synapse (#21
item 1)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.matrix.synapse import SERVER
from tests.matrix.test_login_flow import Flow, flow, login  # noqa: F401 (the fixture)
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration


def space_of(f: Flow, team: str | None = None) -> str:
    alias = quote(f"#slack_{(team or f.team).lower()}_space:{SERVER}")
    return str(f.as_bot("GET", f"/directory/room/{alias}")["room_id"])


def children(f: Flow, space: str) -> set[str]:
    state = f.as_bot("GET", f"/rooms/{space}/state")
    return {
        e["state_key"] for e in state if e["type"] == "m.space.child" and e["content"].get("via")
    }


def child_events(f: Flow, space: str) -> int:
    chunk = f.as_bot("GET", f"/rooms/{space}/messages", params={"dir": "b", "limit": 500})
    return sum(1 for e in chunk["chunk"] if e["type"] == "m.space.child")


def test_a_logged_in_workspace_is_a_space_of_its_portals(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    dm = login(f)
    wait_for(lambda: any("Bridged 3" in n for n in f.notices(dm)))
    rooms = {c: f.room_of(c) for c in ("C1", "C2", "C3")}
    space = space_of(f)
    # A space, named and pictured like the workspace, Alice invited.
    assert f.state(space, "m.room.create")["type"] == "m.space"
    assert f.state(space, "m.room.name")["name"] == "Acme"
    wait_for(lambda: f.state(space, "m.room.avatar").get("url", "").startswith("mxc://"))
    assert f.membership(space, a.user_id) == "invite"
    # Its children are the portals, each pointing back at it.
    wait_for(lambda: children(f, space) == set(rooms.values()))
    for room in rooms.values():
        parent = f.state(room, f"m.space.parent/{space}")
        assert parent["via"] == [SERVER] and parent["canonical"] is True

    # A portal created by a message joins the space.
    f.slack.post_message(f.team, "C4", "U1", "first words in quiet")
    quiet = f.room_of("C4")
    wait_for(lambda: quiet in children(f, space))

    # A deleted portal leaves it.
    a.text(dm, f"delete-portal {rooms['C2']}")
    wait_for(lambda: f.portal("C2") is None)
    wait_for(lambda: rooms["C2"] not in children(f, space))
    assert children(f, space) == {rooms["C1"], rooms["C3"], quiet}

    # A restart finds the same space and links only portals it did not hold (the resync may
    # bridge C2 again: it is among the most recent channels).
    before, linked = child_events(f, space), children(f, space)
    f.app.stop()
    f.app = f.start_app()
    bridge = f.app.bridge.workspace_bridge
    wait_for(lambda: bridge.completed_syncs >= 1)
    assert space_of(f) == space
    new = children(f, space) - linked
    assert child_events(f, space) == before + len(new)
    assert linked <= children(f, space)
