"""Custom Slack emoji reach Matrix as images, uploaded once, in messages and as reactions,
through a real Synapse and the fake Slack (#21 item 3)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.matrix.conftest import World
from tests.slack.harness import wait_for

pytestmark = pytest.mark.integration

IMG = re.compile(r'<img data-mx-emoticon src="(mxc://[^"]+)" alt=":(\w+):"')


def message(w: World, text: str) -> dict[str, Any]:
    return wait_for(
        lambda: next(
            (
                e
                for e in w.alice.events(w.room)
                if e["type"] == "m.room.message" and text in e["content"].get("body", "")
            ),
            None,
        )
    )


def test_custom_emoji_are_images_uploaded_once(world: World) -> None:
    w = world
    w.slack.add_emoji("T1", "partyparrot", "https://emoji.slack-edge.test/T1/partyparrot.gif")
    w.slack.add_emoji("T1", "parrot2", "alias:partyparrot")
    ts = w.slack.post_message("T1", "C1", "U1", "hello :partyparrot: and :parrot2: :smile:")
    first = message(w, "hello")["content"]
    assert first["body"] == "hello :partyparrot: and :parrot2: 😄"
    images = IMG.findall(first["formatted_body"])
    assert [name for _, name in images] == ["partyparrot", "parrot2"]
    mxc = images[0][0]
    assert images[1][0] == mxc  # an alias is the same image

    # Used again: the same upload, not a new one.
    w.slack.post_message("T1", "C1", "U1", "again :partyparrot:")
    again = message(w, "again")["content"]
    assert IMG.findall(again["formatted_body"]) == [(mxc, "partyparrot")]

    # As a reaction: the image is the key, the shortcode alongside.
    w.slack.react("T1", "C1", ts, "U1", "partyparrot")
    reaction = wait_for(
        lambda: next((e for e in w.alice.events(w.room) if e["type"] == "m.reaction"), None)
    )
    assert reaction["content"]["m.relates_to"]["key"] == mxc
    assert reaction["content"]["com.beeper.reaction.shortcode"] == ":partyparrot:"
    w.slack.unreact("T1", "C1", ts, "U1", "partyparrot")
    wait_for(
        lambda: any(
            e["type"] == "m.room.redaction"
            and reaction["event_id"] in (e.get("redacts"), e["content"].get("redacts"))
            for e in w.alice.events(w.room)
        )
    )


def test_an_unknown_name_stays_text(world: World) -> None:
    w = world
    w.slack.post_message("T1", "C1", "U1", "what is :nosuchemoji:")
    content = message(w, "what is")["content"]
    assert content["body"] == "what is :nosuchemoji:"
    assert "data-mx-emoticon" not in content.get("formatted_body", "")


def test_image_pack_emoji_reach_slack_by_name(world: World) -> None:
    """Matrix custom emoji (image packs) reach Slack as ``:name:``, in text and reactions."""
    w = world
    a = w.alice
    for team in ("T1", "T2"):
        w.slack.add_emoji(team, "blobcat", f"https://emoji.slack-edge.test/{team}/blobcat.png")
    image = a.upload(b"\x89PNG-blobcat", "image/png", "blobcat.png")
    html = f'hi <img data-mx-emoticon src="{image}" alt=":blobcat:" title=":blobcat:" height="32">'
    root = a.text(w.room, "hi :blobcat:", html)
    copy = wait_for(lambda: w.slack.find_message("T1", "C1", text="hi :blobcat:"))
    reaction = a.send(
        w.room,
        {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": root, "key": image},
            "com.beeper.reaction.shortcode": ":blobcat:",
        },
        "m.reaction",
    )
    wait_for(
        lambda: "blobcat" in w.slack.message("T1", "C1", copy.ts).reactions,
    )
    # Its removal finds the same name.
    a.redact(w.room, reaction)
    wait_for(lambda: not w.slack.message("T1", "C1", copy.ts).reactions.get("blobcat"))


def test_an_edit_shows_custom_emoji_as_images(world: World) -> None:
    """An edit renders like a new message: the new content's custom emoji are images."""
    w = world
    w.slack.add_emoji("T1", "partyparrot", "https://emoji.slack-edge.test/T1/partyparrot.gif")
    ts = w.slack.post_message("T1", "C1", "U1", "before the edit")
    original = message(w, "before the edit")
    w.slack.edit("T1", "C1", ts, "after the edit :partyparrot:")
    edit = wait_for(
        lambda: next(
            (
                e
                for e in w.alice.events(w.room)
                if e["content"].get("m.relates_to", {}).get("rel_type") == "m.replace"
            ),
            None,
        )
    )
    assert edit["content"]["m.relates_to"]["event_id"] == original["event_id"]
    new = edit["content"]["m.new_content"]
    assert new["body"] == "after the edit :partyparrot:"
    assert [name for _, name in IMG.findall(new["formatted_body"])] == ["partyparrot"]
    # The fallback for clients without edits shows the image too.
    assert [name for _, name in IMG.findall(edit["content"]["formatted_body"])] == ["partyparrot"]
