"""Ghost profiles follow Slack at once, through a real Synapse (#21 item 6)."""

from __future__ import annotations

import pytest

from tests.matrix.conftest import World
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration

ADA = "@slack_t1_u1:test.local"


def displayname(w: World, mxid: str) -> str | None:
    return w.alice.call("GET", f"/profile/{mxid}").get("displayname")


def first_post(w: World) -> None:
    w.slack.post_message("T1", "C1", "U1", "hello from ada")
    wait_for(
        lambda: any(
            e["sender"] == ADA and e["content"].get("body") == "hello from ada"
            for e in w.alice.events(w.room)
        )
    )
    assert displayname(w, ADA) == "Ada (Acme)"


def test_a_profile_change_renames_the_ghost_at_once(world: World) -> None:
    w = world
    first_post(w)
    before = w.alice.call("GET", f"/profile/{ADA}")["avatar_url"]
    # No further post: only the event can tell the bridge.
    w.slack.change_profile("T1", "U1", display_name="Countess", avatar="-v2")
    wait_for(lambda: displayname(w, ADA) == "Countess (Acme)")
    after = wait_for(
        lambda: (url := w.alice.call("GET", f"/profile/{ADA}")["avatar_url"]) != before and url
    )
    assert after.startswith("mxc://")
    # The room's member event follows the profile too (what clients show).
    state = f"/rooms/{w.room}/state/m.room.member/{ADA}"
    wait_for(lambda: w.alice.call("GET", state)["displayname"] == "Countess (Acme)")


def test_a_deactivated_slack_user_is_marked_as_gone(world: World) -> None:
    w = world
    first_post(w)
    w.slack.deactivate_user("T1", "U1")
    wait_for(lambda: displayname(w, ADA) == "Ada (left Acme)")


def test_profile_events_register_no_new_ghosts(world: World) -> None:
    w = world
    first_post(w)
    w.slack.add_user("T1", "U7", "eve", real_name="Eve", display_name="Eve")
    w.slack.change_profile("T1", "U7", display_name="Evelyn")
    # Ada's change, sent after Eve's, is applied: by then Eve's was handled too.
    w.slack.change_profile("T1", "U1", display_name="Ada L.")
    wait_for(lambda: displayname(w, ADA) == "Ada L. (Acme)")
    resp = w.alice.http.get("/_matrix/client/v3/profile/@slack_t1_u7:test.local")
    assert resp.status_code == 404, resp.text
