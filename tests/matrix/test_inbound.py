"""Matrix events to core events: edits, threads, replies without fallbacks, reactions, files."""

from __future__ import annotations

from typing import Any

from app.core import richtext as rt
from app.core.endpoints import Endpoint
from app.core.events import DeletePost, EditPost, NewPost, ReactionChange
from app.matrix.inbound import strip_plain_fallback, translate

ROOM = Endpoint.matrix("!r:hs.example")


def event(content: dict[str, Any], etype: str = "m.room.message", **extra: Any) -> dict:
    return {
        "type": etype,
        "event_id": "$e1",
        "sender": "@ann:hs.example",
        "room_id": "!r:hs.example",
        "content": content,
        **extra,
    }


def test_html_message() -> None:
    post = translate(
        event(
            {
                "msgtype": "m.text",
                "body": "hi there",
                "format": "org.matrix.custom.html",
                "formatted_body": "<b>hi</b> there",
            }
        ),
        ROOM,
    )
    assert isinstance(post, NewPost)
    assert post.body == rt.doc(rt.Bold((rt.Text("hi"),)), rt.Text(" there"))
    assert post.dedupe_key == "matrix:$e1" and post.author.native_id == "@ann:hs.example"
    assert post.author.origin == "hs.example"


def test_edit_uses_new_content() -> None:
    edit = translate(
        event(
            {
                "msgtype": "m.text",
                "body": "* fixed",
                "m.new_content": {"msgtype": "m.text", "body": "fixed"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$orig"},
            }
        ),
        ROOM,
    )
    assert isinstance(edit, EditPost)
    assert edit.native_id == "$orig" and edit.body == rt.text("fixed")


def test_thread_and_plain_reply() -> None:
    threaded = translate(
        event(
            {
                "msgtype": "m.text",
                "body": "in thread",
                "m.relates_to": {
                    "rel_type": "m.thread",
                    "event_id": "$root",
                    "m.in_reply_to": {"event_id": "$x"},
                },
            }
        ),
        ROOM,
    )
    assert isinstance(threaded, NewPost) and threaded.thread_native_id == "$root"
    reply = translate(
        event(
            {
                "msgtype": "m.text",
                "body": "> <@bob:hs> quoted\n> more\n\nmy answer",
                "format": "org.matrix.custom.html",
                "formatted_body": "<mx-reply><blockquote>quoted</blockquote></mx-reply>my answer",
                "m.relates_to": {"m.in_reply_to": {"event_id": "$parent"}},
            }
        ),
        ROOM,
    )
    assert isinstance(reply, NewPost)
    assert reply.thread_native_id == "$parent" and reply.body == rt.text("my answer")
    assert strip_plain_fallback("> <@b:hs> q\n\nanswer") == "answer"
    assert strip_plain_fallback("no fallback\n> later quote") == "no fallback\n> later quote"


def test_reactions_and_redactions() -> None:
    react = translate(
        event(
            {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "👍"}},
            "m.reaction",
        ),
        ROOM,
    )
    assert isinstance(react, ReactionChange)
    assert (react.emoji, react.native_id, react.added) == ("+1", "$m", True)
    # Every emoji has a Slack name (#17 item 5): none is dropped.
    parrot = event(
        {"m.relates_to": {"rel_type": "m.annotation", "event_id": "$m", "key": "🦜"}}, "m.reaction"
    )
    assert translate(parrot, ROOM).emoji == "parrot"  # type: ignore[union-attr]
    redaction = event({}, "m.room.redaction", redacts="$m")
    delete = translate(redaction, ROOM)
    assert isinstance(delete, DeletePost) and delete.native_id == "$m"
    unreact = translate(redaction, ROOM, reaction_redacted=("$m", "👍"))
    assert isinstance(unreact, ReactionChange) and not unreact.added


def test_media() -> None:
    image = translate(
        event(
            {
                "msgtype": "m.image",
                "body": "cat.png",
                "url": "mxc://hs/abc",
                "info": {"mimetype": "image/png", "size": 10},
            }
        ),
        ROOM,
    )
    assert isinstance(image, NewPost) and image.body == rt.doc()
    (ref,) = image.files
    assert (ref.name, ref.mimetype, ref.size, ref.url) == (
        "cat.png",
        "image/png",
        10,
        "mxc://hs/abc",
    )
    captioned = translate(
        event(
            {"msgtype": "m.file", "body": "see this", "filename": "a.pdf", "url": "mxc://hs/pdf"}
        ),
        ROOM,
    )
    assert isinstance(captioned, NewPost) and captioned.body == rt.text("see this")
    assert captioned.files[0].name == "a.pdf"
    encrypted = translate(event({"msgtype": "m.file", "body": "x", "file": {}}), ROOM)
    assert isinstance(encrypted, NewPost) and encrypted.files == ()
