"""``login token`` and double puppeting (#21 item 4) through a real Synapse and the fake Slack:
a Matrix user logs in as themselves with a Slack user token; their own DMs become their
portals, and what they write reaches Slack as them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.core.endpoints import Endpoint
from app.store.engine import session_factory
from app.store.syncs import SyncAdmin
from fakeslack import Fault
from tests.matrix.conftest import direct_chat
from tests.matrix.test_login_flow import BOT, Flow, flow, login  # noqa: F401 (the fixture)
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration


def login_token(f: Flow, dm: str, token: str) -> str:
    """Alice sends ``login token`` then ``token`` in her DM; returns the token's event id."""
    f.alice.text(dm, "login token")
    wait_for(lambda: any("user token (xoxp-" in n for n in f.notices(dm)))
    return f.alice.text(dm, token)


def stored_tokens(f: Flow) -> list[tuple[str, str, str, str]]:
    with f.engine.connect() as c:
        rows = c.execute(
            text("SELECT user_id, team_id, slack_user_id, token_enc FROM matrix_puppets")
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_login_token_stores_the_users_token_encrypted(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    dm = login(f)
    token = f.slack.add_user_token(f.team, "U1")
    sent = login_token(f, dm, token)
    wait_for(lambda: any(f"Logged in to Acme ({f.team}) as Ada" in n for n in f.notices(dm)))
    # The message that carried it is redacted, and nothing the bot says repeats it.
    wait_for(lambda: not next(e for e in a.events(dm) if e["event_id"] == sent)["content"])
    assert not any(token in n for n in f.notices(dm))
    [(user, team, slack_user, sealed)] = stored_tokens(f)
    assert (user, team, slack_user) == (a.user_id, f.team, "U1")
    assert token not in sealed and "xoxp" not in sealed  # encrypted at rest
    assert f.app.services.slack.puppets.store.token(a.user_id, f.team) == token  # type: ignore[union-attr]
    a.text(dm, "status")
    wait_for(lambda: any(f"You are U1 in Acme ({f.team})." in n for n in f.notices(dm)))

    a.text(dm, "logout")
    wait_for(lambda: any(f"Forgot your user token for {f.team}" in n for n in f.notices(dm)))
    assert stored_tokens(f) == []
    # The token was handed back to Slack; a new one logs her in again. An admin logging the
    # whole workspace out revokes and forgets its users' tokens too.
    assert f.slack.call(lambda: token in f.slack.state.revoked_tokens)
    again = f.slack.add_user_token(f.team, "U1")
    login_token(f, dm, again)
    wait_for(lambda: len(stored_tokens(f)) == 1)
    a.text(dm, f"logout {f.team}")
    wait_for(lambda: any(f"Logged out of {f.team}" in n for n in f.notices(dm)))
    assert stored_tokens(f) == []
    assert f.slack.call(lambda: again in f.slack.state.revoked_tokens)


def test_a_token_slack_refuses_or_a_bot_token_is_not_stored(flow: Flow) -> None:  # noqa: F811
    f = flow
    dm = login(f)
    login_token(f, dm, "xoxp-1-not-a-real-token")
    wait_for(lambda: any("Slack refused the token: invalid_auth" in n for n in f.notices(dm)))
    login_token(f, dm, f.slack.bot_token(f.team))
    wait_for(lambda: any("not a user token" in n for n in f.notices(dm)))
    revoked = f.slack.add_user_token(f.team, "U1")
    f.slack.revoke_user_token(revoked)
    login_token(f, dm, revoked)
    wait_for(lambda: any("Slack refused the token: token_revoked" in n for n in f.notices(dm)))
    assert stored_tokens(f) == []


def test_a_workspace_the_app_is_not_in_is_refused(flow: Flow) -> None:  # noqa: F811
    # No `login app` yet: the user token alone cannot bridge (events need the app installed).
    f = flow
    dm = direct_chat(f.alice, BOT)
    login_token(f, dm, f.slack.add_user_token(f.team, "U1"))
    wait_for(lambda: any("not installed in workspace" in n for n in f.notices(dm)))
    assert stored_tokens(f) == []


def as_ada(f: Flow) -> tuple[str, str, str]:
    """Alice logs Acme in, then herself in as Ada (U1), and joins #general's portal; returns
    her DM with the bot, her user token and the portal."""
    dm = login(f)
    wait_for(lambda: any("Bridged 3" in n for n in f.notices(dm)))
    token = f.slack.add_user_token(f.team, "U1")
    login_token(f, dm, token)
    wait_for(lambda: any("as Ada" in n for n in f.notices(dm)))
    room = f.room_of("C1")
    f.alice.call("POST", f"/join/{room}", json={})
    return dm, token, room


def settle_after(f: Flow, room: str, marker: str) -> None:
    """Everything Slack sent before now has been relayed: Slack delivers a workspace's events
    in order and the room's deliveries keep it, so once ``marker`` is in the room, an echo
    sent before it would be too."""
    f.slack.post_message(f.team, "C1", "U2", marker)
    wait_for(lambda: marker in f.bodies(room))


def test_a_logged_in_users_message_reaches_slack_as_them_once(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    _dm, _token, room = as_ada(f)
    a.text(room, "as myself")
    msg = wait_for(lambda: f.slack.find_message(f.team, "C1", text="as myself"))
    assert (msg.user, msg.bot_id, msg.username) == ("U1", None, None)
    settle_after(f, room, "marker one")
    assert f.bodies(room).count("as myself") == 1  # her own event; the echo came back to no one


def test_the_echo_arriving_before_the_answer_is_no_duplicate(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    _dm, _token, room = as_ada(f)
    # The post lands (and Slack sends its event) but the answer never comes: the echo is
    # relayed before any answer, and the retry finds the post instead of posting again.
    f.slack.fail("chat.postMessage", Fault.hang(after=True))
    a.text(room, "answer lost")
    wait_for(lambda: f.slack.find_message(f.team, "C1", text="answer lost") is not None)
    settle_after(f, room, "marker two")  # its echo has been handled by now
    store = f.app.services.store  # type: ignore[union-attr]
    wait_for(lambda: store.next_due_in() is None, timeout=20)  # the retry found the post
    assert f.bodies(room).count("answer lost") == 1
    assert [m.text for m in f.slack.messages(f.team, "C1")].count("answer lost") == 1


def test_the_echo_arriving_after_the_answer_is_no_duplicate(flow: Flow) -> None:  # noqa: F811
    # The message map knows the copy from chat.postMessage's answer: an echo arriving later
    # is recognised by it even without our metadata.
    f, a = flow, flow.alice
    _dm, _token, room = as_ada(f)
    f.slack.echo(False)
    a.text(room, "late echo")
    msg = wait_for(lambda: f.slack.find_message(f.team, "C1", text="late echo"))
    wait_for(lambda: f.app.services.store.next_due_in() is None)  # type: ignore[union-attr]
    f.slack.echo(True)
    event = {**msg.wire(), "channel": "C1", "channel_type": "channel", "event_ts": msg.ts}
    del event["metadata"]
    f.slack.send_event(f.team, event)
    settle_after(f, room, "marker three")
    assert f.bodies(room).count("late echo") == 1


def test_edits_and_deletes_use_the_users_token(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    _dm, _token, room = as_ada(f)
    sent = a.text(room, "tpyo")
    msg = wait_for(lambda: f.slack.find_message(f.team, "C1", text="tpyo"))
    a.send(
        room,
        {
            "msgtype": "m.text",
            "body": "* typo fixed",
            "m.new_content": {"msgtype": "m.text", "body": "typo fixed"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": sent},
        },
    )
    wait_for(lambda: f.slack.message(f.team, "C1", msg.ts).text == "typo fixed")
    assert f.slack.message(f.team, "C1", msg.ts).edited["user"] == "U1"  # type: ignore[index]
    settle_after(f, room, "marker four")
    # The edit's echo is not relayed back as a second edit by Ada's ghost.
    ghost = f.ghost("U1")
    assert not any(
        e["sender"] == ghost and "m.new_content" in e["content"] for e in a.events(room)
    )
    a.redact(room, sent)
    wait_for(lambda: f.slack.message(f.team, "C1", msg.ts).deleted)


def test_a_revoked_token_falls_back_to_the_bot_and_says_so(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    _dm, token, room = as_ada(f)
    f.slack.revoke_user_token(token)
    a.text(room, "still delivered")
    msg = wait_for(lambda: f.slack.find_message(f.team, "C1", text="still delivered"))
    assert msg.bot_id and msg.username and msg.username.startswith("alice")
    wait_for(lambda: any("no longer accepts your user token" in n for n in f.notices(room)))
    assert stored_tokens(f) == []
    # And the next message goes through the bot without another try of the dead token.
    a.text(room, "next one")
    wait_for(lambda: f.slack.find_message(f.team, "C1", text="next one") is not None)
    assert sum("no longer accepts" in n for n in f.notices(room)) == 1


def test_a_users_own_dms_are_portals_for_them_alone(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    dm, _token, _room = as_ada(f)
    # Another Matrix user of the workspace: invited to its channels, never to Ada's DMs.
    carol = f"@carol-{f.team.lower()}:test.local"
    f.app.bridge.workspace_bridge.record_login(carol, f.team, dm)
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    f.slack.post_message(f.team, with_bob, "U2", "psst, Ada")
    room = f.room_of(with_bob)
    assert f.state(room, "m.room.name")["name"] == "#DM with Bob"
    wait_for(lambda: f.membership(room, a.user_id) == "invite")
    a.call("POST", f"/join/{room}", json={})
    wait_for(lambda: "psst, Ada" in f.bodies(room))
    assert f.membership(room, carol) is None
    # Her answer is hers in Slack, and its echo comes back to no one.
    a.text(room, "hi Bob")
    msg = wait_for(lambda: f.slack.find_message(f.team, with_bob, text="hi Bob"))
    assert (msg.user, msg.bot_id) == ("U1", None)
    f.slack.post_message(f.team, with_bob, "U2", "and a marker")
    wait_for(lambda: "and a marker" in f.bodies(room))
    assert f.bodies(room).count("hi Bob") == 1
    # Bob's edit in their DM arrives too (message_changed is a message.im user event).
    first = f.slack.find_message(f.team, with_bob, text="psst, Ada")
    assert first is not None
    f.slack.edit(f.team, with_bob, first.ts, "psst, Ada, edited")
    wait_for(
        lambda: any(
            (e["content"].get("m.new_content") or {}).get("body") == "psst, Ada, edited"
            for e in a.events(room)
        )
    )

    group = f.slack.open_private_dm(f.team, ["U1", "U2", "U3"])
    f.slack.post_message(f.team, group, "U3", "all three of us")
    groom = f.room_of(group)
    assert f.state(groom, "m.room.name")["name"].startswith("#Group DM: ")
    wait_for(lambda: f.membership(groom, a.user_id) == "invite")
    a.call("POST", f"/join/{groom}", json={})
    wait_for(lambda: "all three of us" in f.bodies(groom))
    a.text(groom, "hello both")
    wait_for(lambda: f.slack.find_message(f.team, group, text="hello both") is not None)
    assert f.membership(groom, carol) is None


def test_login_token_bridges_their_recent_dms(flow: Flow) -> None:  # noqa: F811
    # As mautrix-slack does on login: the person's recent DMs and group DMs get portals at
    # once (`conversations.list types=im,mpim` with their token), not only on the next message.
    f, a = flow, flow.alice
    dm = login(f)
    wait_for(lambda: any("Bridged 3" in n for n in f.notices(dm)))
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    group = f.slack.open_private_dm(f.team, ["U1", "U2", "U3"])
    not_hers = f.slack.open_private_dm(f.team, ["U2", "U3"])
    with_bot = f.slack.open_dm(f.team, "U1")
    token = f.slack.add_user_token(f.team, "U1")
    login_token(f, dm, token)
    wait_for(
        lambda: any("Bridged 2 of your direct message(s) in Acme" in n for n in f.notices(dm))
    )
    for conversation in (with_bob, group):
        room = f.room_of(conversation)
        wait_for(lambda room=room: f.membership(room, a.user_id) == "invite")
    assert f.portal(not_hers) is None and f.portal(with_bot) is None
    listed = f.slack.called("conversations.list", f.team)
    assert any(p.get("types") == "im,mpim" for p in listed)


def test_a_dm_between_two_logged_in_people_is_one_portal_for_both(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    _dm, _token, _room = as_ada(f)
    bob = f.synapse.register_user(f"bob{f.team.lower()}")
    try:
        bobs_dm = direct_chat(bob, BOT)
        bob.text(bobs_dm, "login token")
        wait_for(lambda: any("user token (xoxp-" in n for n in f.notices_of(bob, bobs_dm)))
        bob.text(bobs_dm, f.slack.add_user_token(f.team, "U2"))
        wait_for(lambda: any("as Bob" in n for n in f.notices_of(bob, bobs_dm)))
        theirs = f.slack.open_private_dm(f.team, ["U1", "U2"])
        f.slack.post_message(f.team, theirs, "U2", "just us two")
        room = f.room_of(theirs)
        wait_for(lambda: f.membership(room, a.user_id) == "invite")
        wait_for(lambda: f.membership(room, bob.user_id) == "invite")
    finally:
        bob.close()


def test_a_revoked_token_in_an_own_dm_is_reported_not_lost(flow: Flow) -> None:  # noqa: F811
    # The bot cannot post in someone's own DM: without their token the message is said to be
    # undelivered, not silently dropped.
    f, a = flow, flow.alice
    _dm, token, _room = as_ada(f)
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    f.slack.post_message(f.team, with_bob, "U2", "are you there?")
    room = f.room_of(with_bob)
    wait_for(lambda: f.membership(room, a.user_id) == "invite")
    a.call("POST", f"/join/{room}", json={})
    f.slack.revoke_user_token(token)
    a.text(room, "yes, but")
    wait_for(lambda: any("no longer accepts your user token" in n for n in f.notices(room)))
    wait_for(lambda: any("could not be delivered" in n for n in f.notices(room)), timeout=20)
    assert f.slack.find_message(f.team, with_bob, text="yes, but") is None


def test_logout_hands_the_token_back_and_their_dms_stay_private(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    dm, token, room = as_ada(f)
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    a.text(dm, "logout")
    wait_for(lambda: any("Forgot your user token" in n for n in f.notices(dm)))
    # Revoked at Slack (auth.revoke), so Slack stops sending her DMs at all.
    assert any(c.method == "auth.revoke" and c.token == token for c in f.slack.calls)
    assert f.slack.call(lambda: token in f.slack.state.revoked_tokens)
    f.slack.post_message(f.team, with_bob, "U2", "anyone?")
    # Even an event already on its way makes no portal for a person no longer logged in,
    # least of all one the workspace's other users would be invited to.
    inst = f.slack.installation(f.team)
    late = {"type": "message", "channel": with_bob, "channel_type": "im", "user": "U2"}
    late |= {"text": "late", "ts": "1900000000.000001"}
    f.slack.call(lambda: f.slack.events.emit(inst, late, as_user="U1"))
    settle_after(f, room, "marker five")
    assert f.portal(with_bob) is None


def matrix_edits_of(f: Flow, room: str, event_id: str) -> list[dict[str, Any]]:
    """What shows ``event_id``'s text changed in ``room``: an ``m.replace`` of it, or a reply
    to it (how the bridge shows a change it cannot make to someone's own event)."""
    out = []
    for e in f.alice.events(room):
        if e["type"] != "m.room.message":
            continue
        relates = e["content"].get("m.relates_to") or {}
        replying = (relates.get("m.in_reply_to") or {}).get("event_id")
        if relates.get("event_id") == event_id or replying == event_id:
            out.append(e)
    return out


def test_her_own_slack_edit_of_a_puppeted_copy_is_relayed(flow: Flow) -> None:  # noqa: F811
    f, a = flow, flow.alice
    _dm, _token, room = as_ada(f)
    # #quiet (C4) is synced with #general's portal too: another channel the edit must reach.
    syncs = SyncAdmin(session_factory(f.engine))
    name = syncs.sync_of(Endpoint.slack(f.team, "C1"))
    assert name is not None
    syncs.add(name, Endpoint.slack(f.team, "C4"))
    sent = a.text(room, "first draft")
    c1 = wait_for(lambda: f.slack.find_message(f.team, "C1", text="first draft"))
    c4 = wait_for(lambda: f.slack.find_message(f.team, "C4", text="first draft"))
    assert (c1.user, c1.bot_id, c4.user, c4.bot_id) == ("U1", None, "U1", None)
    # Her Matrix edit changes both copies with her token; its echoes come back to no one.
    a.send(
        room,
        {
            "msgtype": "m.text",
            "body": "* second draft",
            "m.new_content": {"msgtype": "m.text", "body": "second draft"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": sent},
        },
    )
    wait_for(lambda: f.slack.message(f.team, "C1", c1.ts).text == "second draft")
    wait_for(lambda: f.slack.message(f.team, "C4", c4.ts).text == "second draft")
    settle_after(f, room, "marker six")
    assert [e["sender"] for e in matrix_edits_of(f, room, sent)] == [a.user_id]

    # Then she edits the copy in #general in the Slack client: the edit is hers, not ours.
    f.slack.edit(f.team, "C1", c1.ts, "final words")
    wait_for(lambda: f.slack.message(f.team, "C4", c4.ts).text == "final words")

    def final() -> list[dict[str, Any]]:
        return [e for e in matrix_edits_of(f, room, sent) if "final words" in e["content"]["body"]]

    wait_for(final)
    settle_after(f, room, "marker seven")
    # Shown once, answering her event (only she can edit it); the echo of the change to
    # #quiet's copy is not another edit.
    [shown] = final()
    assert shown["sender"] == BOT and "Edited in Slack" in shown["content"]["body"]
    # A later Matrix edit replaces what her Slack edit wrote (blocks and all).
    a.send(
        room,
        {
            "msgtype": "m.text",
            "body": "* from Matrix again",
            "m.new_content": {"msgtype": "m.text", "body": "from Matrix again"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": sent},
        },
    )
    wait_for(lambda: f.slack.message(f.team, "C1", c1.ts).text == "from Matrix again")
    assert not f.slack.message(f.team, "C1", c1.ts).blocks

    # Her reaction on her own copy in Slack reaches Matrix (as her Slack ghost) and #quiet.
    f.slack.react(f.team, "C1", c1.ts, "U1", "tada")
    wait_for(
        lambda: any(
            e["type"] == "m.reaction"
            and e["content"]["m.relates_to"]["event_id"] == sent
            and e["sender"] == f.ghost("U1")
            for e in a.events(room)
        )
    )
    wait_for(lambda: "tada" in f.slack.message(f.team, "C4", c4.ts).reactions)
    # And her deletion in Slack removes it everywhere, her Matrix event included.
    f.slack.delete(f.team, "C1", c1.ts)
    wait_for(lambda: f.slack.message(f.team, "C4", c4.ts).deleted)
    wait_for(lambda: not next(e for e in a.events(room) if e["event_id"] == sent)["content"])
    # The bot's note carrying the text of her Slack edit goes with it.
    wait_for(
        lambda: (
            not next(e for e in a.events(room) if e["event_id"] == shown["event_id"])["content"]
        )
    )


def test_reactions_in_her_own_dm_reach_its_portal(flow: Flow) -> None:  # noqa: F811
    # The bot is not in the DM: Slack sends its reactions only as user events
    # (reaction_added/removed under the manifest's user_events, user scope reactions:read).
    f, a = flow, flow.alice
    _dm, _token, _room = as_ada(f)
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    ts = f.slack.post_message(f.team, with_bob, "U2", "lunch?")
    room = f.room_of(with_bob)
    wait_for(lambda: f.membership(room, a.user_id) == "invite")
    a.call("POST", f"/join/{room}", json={})
    event = wait_for(
        lambda: next((e for e in a.events(room) if e["content"].get("body") == "lunch?"), None)
    )

    def reactions() -> list[tuple[str, str]]:
        return [
            (e["sender"], e["content"]["m.relates_to"]["key"])
            for e in a.events(room)
            if e["type"] == "m.reaction"
            and e["content"].get("m.relates_to", {}).get("event_id") == event["event_id"]
        ]

    f.slack.react(f.team, with_bob, ts, "U1", "thumbsup")
    f.slack.react(f.team, with_bob, ts, "U2", "heart")
    wait_for(lambda: {(f.ghost("U1"), "👍"), (f.ghost("U2"), "❤️")} <= set(reactions()))
    f.slack.unreact(f.team, with_bob, ts, "U2", "heart")
    wait_for(lambda: (f.ghost("U2"), "❤️") not in reactions())


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def file_bytes_in(f: Flow, room: str) -> bytes:
    """The bytes of the first file event in ``room``, read back from Synapse's media repo."""
    a = f.alice
    image = wait_for(
        lambda: next(
            (
                e
                for e in a.events(room)
                if e["type"] == "m.room.message" and e["content"].get("url")
            ),
            None,
        )
    )
    server, media_id = image["content"]["url"].removeprefix("mxc://").split("/", 1)
    resp = a.http.get(f"/_matrix/client/v1/media/download/{server}/{media_id}")
    assert resp.status_code == 200, resp.text
    return bytes(resp.content)


def test_a_file_in_her_own_dm_reaches_its_portal_as_its_bytes(flow: Flow) -> None:  # noqa: F811
    # The bot is not in the DM, so its token cannot download the file (Slack answers with its
    # sign-in page); her token can.
    f, a = flow, flow.alice
    _dm, _token, _room = as_ada(f)
    with_bob = f.slack.open_private_dm(f.team, ["U1", "U2"])
    f.slack.upload_file(f.team, with_bob, "U2", "plan.png", PNG, text="the plan")
    room = f.room_of(with_bob)
    wait_for(lambda: f.membership(room, a.user_id) == "invite")
    a.call("POST", f"/join/{room}", json={})
    assert file_bytes_in(f, room) == PNG
