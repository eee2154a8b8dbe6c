"""A person's Matrix reactions and files in their own Slack DMs (#21 item 4) reach Slack as
them, through a real Synapse and the fake Slack.

The bridge bot is not in those DMs, so Slack refuses it there (``reactions.add`` and
``files.completeUploadExternal`` answer ``channel_not_found``); the person's own user token
(``login token``) reacts and uploads instead, and what Slack echoes back of it is not relayed
again. What still cannot reach Slack is said in the room.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.matrix.test_login_flow import BOT, Flow, flow, login  # noqa: F401 (the fixture)
from tests.matrix.test_puppets_live import PNG, as_ada, login_token
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration

# What a person granted before syncbot asked for reactions:write and files:write.
OLD_USER_SCOPES = ["chat:write", "im:history", "im:read", "mpim:history", "mpim:read"]
OLD_USER_SCOPES += ["reactions:read"]


def own_dm(f: Flow, first: str) -> tuple[str, str, str, dict[str, Any]]:
    """Bob writes ``first`` in his DM with Ada; Alice joins its portal. Returns the DM, the
    message's ts, the portal and the message's Matrix event."""
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    ts = f.slack.post_message(f.team, with_bob, "U2", first)
    room = f.room_of(with_bob)
    wait_for(lambda: f.membership(room, f.alice.user_id) == "invite")
    f.alice.call("POST", f"/join/{room}", json={})
    event = wait_for(
        lambda: next((e for e in f.alice.events(room) if e["content"].get("body") == first), None)
    )
    return with_bob, ts, room, event


def react(f: Flow, room: str, event_id: str, key: str) -> str:
    content = {"m.relates_to": {"rel_type": "m.annotation", "event_id": event_id, "key": key}}
    return f.alice.send(room, content, etype="m.reaction")


def send_png(f: Flow, room: str, name: str) -> str:
    mxc = f.alice.upload(PNG, "image/png", name)
    content = {
        "msgtype": "m.image",
        "body": name,
        "url": mxc,
        "info": {"mimetype": "image/png", "size": len(PNG)},
    }
    return f.alice.send(room, content)


def settle_dm(f: Flow, dm: str, room: str, marker: str) -> None:
    """Everything Slack sent of the DM before now has been relayed (events of a workspace
    arrive in order, and the room's deliveries keep it)."""
    f.slack.post_message(f.team, dm, "U2", marker)
    wait_for(lambda: marker in f.bodies(room))


def ghost_reactions(f: Flow, room: str, user: str) -> list[dict[str, Any]]:
    return [
        e
        for e in f.alice.events(room)
        if e["type"] == "m.reaction" and e["sender"] == f.ghost(user) and e["content"]
    ]


def test_her_reaction_in_her_own_dm_reaches_slack_as_her_once(flow: Flow) -> None:  # noqa: F811
    f = flow
    as_ada(f)
    dm, ts, room, event = own_dm(f, "lunch?")
    reaction = react(f, room, event["event_id"], "👍")
    wait_for(lambda: f.slack.message(f.team, dm, ts).reactions.get("+1") == ["U1"])
    # Slack sends her reaction back as her own reaction_added (a user event): it is ours, not
    # a second reaction by her Slack ghost.
    settle_dm(f, dm, room, "marker one")
    assert ghost_reactions(f, room, "U1") == []
    assert not any("could not be delivered" in n for n in f.notices(room))

    f.alice.redact(room, reaction)
    wait_for(lambda: "+1" not in f.slack.message(f.team, dm, ts).reactions)
    # Bob's reaction still arrives as his ghost's (only our own echoes are dropped).
    f.slack.react(f.team, dm, ts, "U2", "heart")
    wait_for(lambda: ghost_reactions(f, room, "U2"))
    settle_dm(f, dm, room, "marker two")
    assert ghost_reactions(f, room, "U1") == []


def test_a_file_in_her_own_dm_reaches_slack_as_her(flow: Flow) -> None:  # noqa: F811
    f = flow
    as_ada(f)
    dm, _ts, room, _event = own_dm(f, "send me the plan")
    send_png(f, room, "plan.png")
    shared = wait_for(lambda: next((m for m in f.slack.messages(f.team, dm) if m.files), None))
    assert (shared.user, shared.bot_id) == ("U1", None)  # her upload, not the bot's
    (upload,) = [x for x in f.slack.files(f.team) if x.id == shared.files[0]]
    assert upload.name == "plan.png" and upload.content == PNG and upload.user == "U1"
    # Its share comes back from Slack as her message with the file: not relayed again.
    settle_dm(f, dm, room, "marker three")
    files = [
        e
        for e in f.alice.events(room)
        if e["type"] == "m.room.message" and e["content"].get("url")
    ]
    assert [e["sender"] for e in files] == [f.alice.user_id]
    assert not any("could not be delivered" in n for n in f.notices(room))


def test_what_her_old_token_may_not_do_is_said_in_the_room(flow: Flow) -> None:  # noqa: F811
    # A token given before syncbot asked for reactions:write / files:write: Slack answers
    # missing_scope; she is told what did not reach Slack and how to fix it.
    f = flow
    dm_with_bot = login(f)
    wait_for(lambda: any("Bridged 3" in n for n in f.notices(dm_with_bot)))
    login_token(f, dm_with_bot, f.slack.add_user_token(f.team, "U1", scopes=OLD_USER_SCOPES))
    wait_for(lambda: any("as Ada" in n for n in f.notices(dm_with_bot)))
    dm, ts, room, event = own_dm(f, "did you see it?")
    react(f, room, event["event_id"], "👍")
    told = wait_for(
        lambda: next((n for n in f.notices(room) if "Your reaction" in n), None), timeout=20
    )
    assert "reactions:write" in told and "login token" in told
    assert "+1" not in f.slack.message(f.team, dm, ts).reactions

    send_png(f, room, "old.png")
    told = wait_for(
        lambda: next((n for n in f.notices(room) if "files:write" in n), None), timeout=20
    )
    assert "old.png" in told and "login token" in told
    assert not any(m.files for m in f.slack.messages(f.team, dm))


def test_a_reaction_after_her_token_was_revoked_is_said_in_the_room(flow: Flow) -> None:  # noqa: F811
    f = flow
    _dm, token, _room = as_ada(f)
    dm, ts, room, event = own_dm(f, "still there?")
    f.slack.revoke_user_token(token)
    react(f, room, event["event_id"], "👍")
    told = wait_for(
        lambda: next((n for n in f.notices(room) if "Your reaction" in n), None), timeout=20
    )
    assert "no longer accepts your user token" in told and "login token" in told
    assert "+1" not in f.slack.message(f.team, dm, ts).reactions
    # Forgotten now: the next reaction cannot go as her, nor as the bot, and she is told so.
    react(f, room, event["event_id"], "❤️")
    told = wait_for(
        lambda: next((n for n in f.notices(room) if "not logged in as yourself" in n), None),
        timeout=20,
    )
    assert "Your reaction :heart:" in told and "login token" in told
    assert f.slack.message(f.team, dm, ts).reactions == {}
    assert BOT  # the notices are the bot's (notices() reads only the bot's messages)
