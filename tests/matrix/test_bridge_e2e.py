"""Slack <-> Matrix through a real Synapse: every message kind, both ways, in one sync of two
Slack workspaces and one Matrix room."""

from __future__ import annotations

from typing import Any

import pytest

from fakeslack import Message
from tests.matrix.conftest import World
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration


def room_event(w: World, match: Any, *, timeout: float = 15) -> dict[str, Any]:
    return wait_for(lambda: next((e for e in w.alice.events(w.room) if match(e)), None), timeout)


def from_ghost(event: dict[str, Any]) -> bool:
    return event["sender"].startswith("@slack_") and event["type"] == "m.room.message"


def slack_copy(w: World, team: str, channel: str, text: str):
    return wait_for(
        lambda: next((m for m in w.slack.messages(team, channel) if text in m.text), None)
    )


def now(w: World, team: str, channel: str, msg: Message) -> Message:
    """``msg`` as the channel holds it now (the fake hands out snapshots)."""
    return w.slack.message(team, channel, msg.ts)


def ghost_profile(w: World, user_id: str) -> dict[str, Any]:
    return w.alice.call("GET", f"/profile/{user_id}")


def download(w: World, mxc: str) -> bytes:
    server, media_id = mxc.removeprefix("mxc://").split("/", 1)
    resp = w.alice.http.get(f"/_matrix/client/v1/media/download/{server}/{media_id}")
    assert resp.status_code == 200, resp.text
    return resp.content


def test_every_kind_slack_to_matrix(world: World) -> None:
    w = world
    ghost = "@slack_t1_u1:test.local"
    ts = w.slack.post_message("T1", "C1", "U1", "root *post* for <@U1>")
    root = room_event(w, lambda e: from_ghost(e) and e["content"]["body"].startswith("root"))
    assert root["sender"] == ghost
    content = root["content"]
    assert content["formatted_body"] == (
        f'root <strong>post</strong> for <a href="https://matrix.to/#/{ghost}">Ada</a>'
    )
    assert content["body"] == "root post for Ada" and content["m.mentions"]["user_ids"] == [ghost]
    # The second workspace of the same sync gets it too, and its people reach the room as
    # their own ghosts (workspace in the id: no collisions).
    slack_copy(w, "T2", "C2", "root")
    w.slack.post_message("T2", "C2", "U2", "from beta")
    bob = room_event(w, lambda e: from_ghost(e) and e["content"]["body"] == "from beta")
    assert bob["sender"] == "@slack_t2_u2:test.local"
    assert ghost_profile(w, bob["sender"])["displayname"] == "Bob (Beta)"
    slack_copy(w, "T1", "C1", "from beta")
    profile = ghost_profile(w, ghost)
    assert profile["displayname"] == "Ada (Acme)"
    assert download(w, profile["avatar_url"]).endswith(b"U1_192.png")

    w.slack.edit("T1", "C1", ts, "root *edited*")
    edit = room_event(
        w, lambda e: e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
    )
    assert edit["sender"] == ghost
    assert edit["content"]["m.relates_to"]["event_id"] == root["event_id"]
    assert edit["content"]["m.new_content"]["formatted_body"] == "root <strong>edited</strong>"

    w.slack.post_message("T1", "C1", "U1", "a reply", thread_ts=ts)
    reply = room_event(w, lambda e: e["content"].get("body") == "a reply")
    relation = reply["content"]["m.relates_to"]
    assert relation["rel_type"] == "m.thread" and relation["event_id"] == root["event_id"]
    assert relation["m.in_reply_to"]["event_id"] == root["event_id"]

    w.slack.react("T1", "C1", ts, "U1", "thumbsup")
    reaction = room_event(w, lambda e: e["type"] == "m.reaction")
    assert reaction["content"]["m.relates_to"] == {
        "rel_type": "m.annotation",
        "event_id": root["event_id"],
        "key": "👍",
    }
    w.slack.unreact("T1", "C1", ts, "U1", "thumbsup")
    room_event(w, lambda e: e["type"] == "m.reaction" and not e["content"])  # redacted

    w.slack.post_message("T1", "C1", "U1", "", files=[("pic.png", b"\x89PNG-picture")])
    media = room_event(w, lambda e: e["content"].get("msgtype") == "m.image")
    assert media["content"]["info"] == {"mimetype": "image/png", "size": 12}
    assert media["content"]["body"] == "pic.png"
    assert download(w, media["content"]["url"]) == b"\x89PNG-picture"

    w.slack.delete("T1", "C1", ts)
    room_event(w, lambda e: e["event_id"] == root["event_id"] and not e["content"])

    # The same edits reached the second workspace, and nothing echoed back to the first.
    copies = w.slack.messages("T2", "C2", include_deleted=True)
    b = next(m for m in copies if "root" in m.text)
    assert b.text == "root *edited*" and b.deleted
    here = w.slack.messages("T1", "C1", include_deleted=True)
    assert len([m for m in here if m.user == "U1"]) == 3  # root, reply, file
    # The only copy posted into T1 is Bob's: none of Ada's posts came back from the room.
    assert [m.text for m in here if m.bot_id] == ["from beta"]


def test_every_kind_matrix_to_slack(world: World) -> None:
    w = world
    a = w.alice
    avatar = a.upload(b"\x89PNG-alice", "image/png", "alice.png")
    a.call("PUT", f"/profile/{a.user_id}/displayname", json={"displayname": "Alice"})
    a.call("PUT", f"/profile/{a.user_id}/avatar_url", json={"avatar_url": avatar})

    root = a.text(w.room, "hi from matrix", "<strong>hi</strong> from matrix")
    one = slack_copy(w, "T1", "C1", "from matrix")
    two = slack_copy(w, "T2", "C2", "from matrix")
    assert one.text == "*hi* from matrix" and two.text == "*hi* from matrix"
    assert one.username == "Alice (test.local)"
    icon = one.icons["image_48"]
    assert icon.startswith(w.app.url + "/avatars/matrix/test.local/")
    import httpx

    fetched = httpx.get(icon, timeout=10)
    assert fetched.status_code == 200 and fetched.content == b"\x89PNG-alice"
    assert httpx.get(icon.split("?")[0] + "?sig=forged", timeout=10).status_code == 404

    a.send(
        w.room,
        {
            "msgtype": "m.text",
            "body": "* hi edited",
            "m.new_content": {"msgtype": "m.text", "body": "hi edited"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": root},
        },
    )
    wait_for(lambda: (m := now(w, "T1", "C1", one)).text == "hi edited" and m.edited)

    a.send(
        w.room,
        {
            "msgtype": "m.text",
            "body": "> <@x:test.local> hi\n\nthreaded",
            "m.relates_to": {
                "rel_type": "m.thread",
                "event_id": root,
                "m.in_reply_to": {"event_id": root},
                "is_falling_back": True,
            },
        },
    )
    threaded = slack_copy(w, "T1", "C1", "threaded")
    assert threaded.thread_ts == one.ts
    assert threaded.text == "threaded"  # the reply fallback was stripped

    reaction = a.send(
        w.room,
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": "👍"}},
        etype="m.reaction",
    )
    wait_for(lambda: now(w, "T1", "C1", one).reactions.get("+1"))
    a.redact(w.room, reaction)
    wait_for(lambda: not now(w, "T1", "C1", one).reactions.get("+1"))

    pic = a.upload(b"GIF89a-matrix", "image/gif", "m.gif")
    a.send(
        w.room,
        {
            "msgtype": "m.image",
            "body": "m.gif",
            "url": pic,
            "info": {"mimetype": "image/gif", "size": 13},
        },
    )
    shared = wait_for(lambda: next((m for m in w.slack.messages("T1", "C1") if m.files), None))
    (upload,) = [f for f in w.slack.files("T1") if f.id == shared.files[0]]
    assert upload.name == "m.gif" and upload.content == b"GIF89a-matrix"

    a.redact(w.room, root)
    wait_for(lambda: now(w, "T1", "C1", one).deleted and now(w, "T2", "C2", two).deleted)
    # No Slack copy came back into the room as a ghost message (echoes dropped).
    assert not any(from_ghost(e) for e in a.events(w.room))
