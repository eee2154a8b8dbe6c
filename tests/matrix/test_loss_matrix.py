"""Nothing lost or left behind between Slack and a real Synapse (#17)."""

from __future__ import annotations

import pytest

from fakeslack import Upload
from tests.matrix.conftest import World
from tests.matrix.test_bridge_e2e import from_ghost, room_event
from tests.slack.harness import settled, wait_for

pytestmark = pytest.mark.integration


def test_a_delete_redacts_every_event_of_a_text_and_file_post(world: World) -> None:
    w = world
    # #17 item 8: a text with two files is three Matrix events; a delete redacts all three.
    one = Upload("one.png", b"\x89PNG-one", "image/png")
    two = Upload("two.txt", b"plain two", "text/plain")
    ts = w.slack.post_message("T1", "C1", "U1", "private things", files=[one, two])
    text = room_event(w, lambda e: from_ghost(e) and e["content"].get("body") == "private things")
    pic = room_event(w, lambda e: from_ghost(e) and e["content"].get("body") == "one.png")
    doc = room_event(w, lambda e: from_ghost(e) and e["content"].get("body") == "two.txt")
    w.slack.delete("T1", "C1", ts)
    ids = {text["event_id"], pic["event_id"], doc["event_id"]}

    def redacted() -> bool:
        events = {e["event_id"]: e for e in w.alice.events(w.room)}
        return all(i in events and not events[i]["content"] for i in ids)

    wait_for(redacted)


def test_reactions_use_every_emoji_both_ways_and_come_from_the_reactor(world: World) -> None:
    w = world
    # #17 item 5: complete emoji data both ways, skin tones included; a reaction from Slack
    # is sent by the reactor's ghost. A custom emoji is its image (#21 item 3): the mxc://
    # key, with its :name: as the shortcode.
    ts = w.slack.post_message("T1", "C1", "U1", "react to me")
    root = room_event(w, lambda e: from_ghost(e) and e["content"].get("body") == "react to me")
    w.slack.add_emoji("T1", "custom_party", "https://emoji.slack-edge.test/party.gif")
    for name in ("sweat_smile", "+1::skin-tone-4", "custom_party"):
        w.slack.react("T1", "C1", ts, "U1", name)
    keys = {}
    for key in ("😅", "👍🏽", ":custom_party:"):
        event = room_event(
            w,
            lambda e, k=key: (
                e["type"] == "m.reaction"
                and k
                in (
                    e["content"].get("m.relates_to", {}).get("key"),
                    e["content"].get("com.beeper.reaction.shortcode"),
                )
            ),
        )
        if key.startswith(":"):
            assert event["content"]["m.relates_to"]["key"].startswith("mxc://")
        keys[key] = event["sender"]
    assert set(keys.values()) == {"@slack_t1_u1:test.local"}
    w.slack.unreact("T1", "C1", ts, "U1", "sweat_smile")
    room_event(w, lambda e: e["type"] == "m.reaction" and not e["content"])  # redacted

    copy = w.slack.messages("T2", "C2")[0]
    for key in ("🥳", "😍", "👍🏽"):
        relation = {"rel_type": "m.annotation", "event_id": root["event_id"], "key": key}
        w.alice.send(w.room, {"m.relates_to": relation}, etype="m.reaction")
    wait_for(
        lambda: (
            {"partying_face", "heart_eyes", "+1::skin-tone-4"}
            <= set(w.slack.reactions("T2", "C2", copy.ts))
        )
    )


def _notice_to(w: World, event_id: str) -> dict:
    return room_event(
        w,
        lambda e: (
            e["type"] == "m.room.message"
            and e["content"].get("msgtype") == "m.notice"
            and e["content"].get("m.relates_to", {}).get("m.in_reply_to", {}).get("event_id")
            == event_id
        ),
    )


def test_the_sender_hears_of_what_could_not_be_bridged_or_delivered(world: World) -> None:
    w, a = world, world.alice
    # #17 item 7: an unsupported event and a refused delivery each get a notice in the room.
    encrypted_file = a.send(
        w.room,
        {"msgtype": "m.file", "body": "secret.pdf", "file": {"url": "mxc://x/y", "v": "v2"}},
    )
    assert "encrypted attachments" in _notice_to(w, encrypted_file)["content"]["body"]
    poll = a.send(
        w.room,
        {"org.matrix.msc3381.poll.start": {"question": {"body": "lunch?"}, "answers": []}},
        etype="org.matrix.msc3381.poll.start",
    )
    assert "polls" in _notice_to(w, poll)["content"]["body"]

    # Beta's channel is archived without the bridge hearing of it: posts there are refused.
    w.slack.echo(False, "T2")
    w.slack.archive("T2", "C2", "U2")
    w.slack.echo(True, "T2")
    sent = a.text(w.room, "will not reach beta")
    wait_for(lambda: any(m.text == "will not reach beta" for m in w.slack.messages("T1", "C1")))
    body = _notice_to(w, sent)["content"]["body"]
    assert "could not be delivered" in body and "C2" in body and "is_archived" in body

    # A sticker is an image: relayed, not refused.
    mxc = a.upload(b"\x89PNG-sticker", "image/png", "sticker.png")
    a.send(
        w.room,
        {"body": "a waving cat", "url": mxc, "info": {"mimetype": "image/png", "size": 13}},
        etype="m.sticker",
    )
    wait_for(lambda: [m for m in w.slack.messages("T1", "C1") if m.files])


def test_a_thread_broadcast_shows_in_the_thread_and_the_room_timeline(world: World) -> None:
    w = world
    # #17 item 9: "also send to channel" reaches Matrix in the thread and in the timeline.
    root_ts = w.slack.post_message("T1", "C1", "U1", "thread root")
    root = room_event(w, lambda e: from_ghost(e) and e["content"].get("body") == "thread root")
    ts = w.slack.post_message("T1", "C1", "U1", "loud reply", thread_ts=root_ts, broadcast=True)

    def relation(e: dict) -> dict:
        return e["content"].get("m.relates_to") or {}

    threaded = room_event(
        w,
        lambda e: (
            from_ghost(e)
            and e["content"].get("body") == "loud reply"
            and relation(e).get("rel_type") == "m.thread"
        ),
    )
    timeline = room_event(
        w,
        lambda e: (
            from_ghost(e)
            and e["content"].get("body") == "loud reply"
            and "rel_type" not in relation(e)
        ),
    )
    assert threaded["content"]["m.relates_to"]["event_id"] == root["event_id"]
    assert timeline["content"]["m.relates_to"]["m.in_reply_to"]["event_id"] == root["event_id"]

    w.slack.edit("T1", "C1", ts, "louder reply")
    for original in (threaded, timeline):
        room_event(
            w,
            lambda e, o=original: (
                relation(e).get("rel_type") == "m.replace"
                and relation(e).get("event_id") == o["event_id"]
            ),
        )
    w.slack.delete("T1", "C1", ts)
    ids = {threaded["event_id"], timeline["event_id"]}
    wait_for(lambda: all(not e["content"] for e in w.alice.events(w.room) if e["event_id"] in ids))


def test_other_apps_blocks_and_attachments_reach_the_room_formatted(world: World) -> None:
    # #17 item 1 on Matrix: a bot message with only blocks and attachments arrives with its
    # content as HTML (header bold, links, the attachment quoted), not as an empty message.
    from tests.slack.test_blocks import GITHUB_LIKE, JIRA_LIKE

    w = world
    w.slack.bot_message(
        "T1",
        "C1",
        "BJIRA",
        "",
        username="Jira",
        attachments=JIRA_LIKE["attachments"],
    )
    w.slack.bot_message("T1", "C1", "BGITHUB", "", username="GitHub", blocks=GITHUB_LIKE["blocks"])
    jira = room_event(w, lambda e: "PROJ-1 Broken login" in e["content"].get("body", ""))
    assert "<blockquote>" in jira["content"]["formatted_body"]
    assert 'href="https://jira.example/PROJ-1"' in jira["content"]["formatted_body"]
    github = room_event(w, lambda e: "Deploy finished" in e["content"].get("body", ""))
    assert "<strong>Deploy finished</strong>" in github["content"]["formatted_body"]
    assert "[Approve]" in github["content"]["body"]


def test_a_matrix_message_whose_slack_answer_was_lost_is_posted_once(world: World) -> None:
    w = world
    # Slack stores the post but the answer never arrives (a 500 after the write): the retry
    # looks for the copy by its delivery id in history from just before the message was sent
    # (`oldest`), which Slack compares with its own clock. A fake whose timestamps were not
    # wall-clock times hid that this lookup must use one clock with Slack's.
    w.slack.fail("chat.postMessage", "500_after", "500_after")
    w.alice.text(w.room, "said once")
    for team, channel in (("T1", "C1"), ("T2", "C2")):
        wait_for(lambda t=team, c=channel: "said once" in [m.text for m in w.slack.messages(t, c)])
    wait_for(lambda: settled(w.slack, w.app))
    for team, channel in (("T1", "C1"), ("T2", "C2")):
        assert [m.text for m in w.slack.messages(team, channel)].count("said once") == 1, team
