"""Nothing lost or left behind between Slack and a real Synapse (#17)."""

from __future__ import annotations

import pytest

from fakeslack import Upload
from tests.matrix.conftest import World
from tests.matrix.test_bridge_e2e import from_ghost, room_event
from tests.slack.harness import wait_for

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
    # #17 item 5: complete emoji data both ways, skin tones included; custom emoji are kept
    # as :name: text; a reaction from Slack is sent by the reactor's ghost.
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
                e["type"] == "m.reaction" and e["content"].get("m.relates_to", {}).get("key") == k
            ),
        )
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
