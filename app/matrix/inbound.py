"""Matrix events to core events (the ``to_core`` side of the adapter).

Reply and edit fallbacks are stripped here — forwarding them is the classic duplicate-quote bug
of bridges — and replies become thread replies on the replied-to message, as Slack has no
other reply form. Echo suppression happens before this module is called.
"""

from __future__ import annotations

from typing import Any

from app.core import richtext
from app.core.endpoints import Endpoint
from app.core.events import (
    Author,
    DeletePost,
    EditPost,
    FileRef,
    InboundEvent,
    NewPost,
    ReactionChange,
)
from app.emoji import to_slack_name
from app.matrix import emoji, html

MEDIA_TYPES = ("m.image", "m.file", "m.video", "m.audio")


def dedupe_key(event_id: str) -> str:
    return f"matrix:{event_id}"


def strip_plain_fallback(body: str) -> str:
    """Drop the ``> <@user> quoted`` lines a reply's plain body starts with."""
    lines = body.split("\n")
    index = 0
    while index < len(lines) and lines[index].startswith(">"):
        index += 1
    if index and index < len(lines) and lines[index] == "":
        index += 1
    return "\n".join(lines[index:]) if index else body


def body_of(content: dict[str, Any], *, is_reply: bool = False) -> richtext.Doc:
    """The rich-text body of message content: ``formatted_body`` when HTML, else ``body``."""
    formatted = content.get("formatted_body")
    mentions = content.get("m.mentions")
    room = isinstance(mentions, dict) and mentions.get("room") is True
    if content.get("format") == "org.matrix.custom.html" and isinstance(formatted, str):
        # html.parse drops <mx-reply> fallbacks itself.
        return html.parse(formatted, room_mention=room)
    text = str(content.get("body") or "")
    if is_reply:
        text = strip_plain_fallback(text)
    return html.parse_body(text)


def _relation(content: dict[str, Any]) -> dict[str, Any]:
    rel = content.get("m.relates_to")
    return rel if isinstance(rel, dict) else {}


def _file(event_id: str, content: dict[str, Any]) -> FileRef | None:
    url = content.get("url")
    if not isinstance(url, str) or not url.startswith("mxc://"):
        return None  # encrypted attachments are not supported
    raw_info = content.get("info")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    name = str(content.get("filename") or content.get("body") or "file")
    return FileRef(
        native_id=event_id,
        name=name,
        mimetype=str(info.get("mimetype") or "application/octet-stream"),
        size=int(info.get("size") or 0),
        url=url,
    )


def translate(
    event: dict[str, Any], source: Endpoint, *, reaction_redacted: tuple[str, str] | None = None
) -> InboundEvent | None:
    """The core event for one room event, or None when it is not a message change.

    Args:
        event: the raw event as the homeserver pushed it.
        source: the room's endpoint.
        reaction_redacted: for a redaction of a reaction we recorded, the reacted-to event id
            and the reaction key.
    """
    etype = event.get("type")
    event_id = str(event.get("event_id") or "")
    sender = str(event.get("sender") or "")
    raw = event.get("content")
    content: dict[str, Any] = raw if isinstance(raw, dict) else {}
    key = dedupe_key(event_id)
    origin = sender.partition(":")[2]
    if etype == "m.sticker":
        # A sticker is an image with its description as body: relayed as one.
        etype, content = "m.room.message", {**content, "msgtype": "m.image"}
    if etype == "m.room.message":
        rel = _relation(content)
        if rel.get("rel_type") == "m.replace" and isinstance(rel.get("event_id"), str):
            new = content.get("m.new_content")
            new = new if isinstance(new, dict) else content
            return EditPost(
                source=source, native_id=rel["event_id"], dedupe_key=key, body=body_of(new)
            )
        reply_to = (rel.get("m.in_reply_to") or {}).get("event_id")
        thread = rel.get("event_id") if rel.get("rel_type") == "m.thread" else reply_to
        msgtype = content.get("msgtype")
        files: tuple[FileRef, ...] = ()
        if msgtype in MEDIA_TYPES:
            ref = _file(event_id, content)
            files = (ref,) if ref else ()
            caption = content.get("filename") and content.get("body") != content.get("filename")
            body = body_of(content) if caption else richtext.doc()
        else:
            body = body_of(content, is_reply=bool(reply_to))
            if msgtype == "m.emote":
                body = richtext.doc(richtext.Italic(body.children))
        return NewPost(
            source=source,
            native_id=event_id,
            dedupe_key=key,
            author=Author(name="", native_id=sender, origin=origin),
            body=body,
            thread_native_id=str(thread) if thread else None,
            files=files,
        )
    if etype == "m.reaction":
        rel = _relation(content)
        name = to_slack_name(emoji.reaction_key(content))
        target = rel.get("event_id")
        if rel.get("rel_type") != "m.annotation" or not name or not isinstance(target, str):
            return None
        return ReactionChange(
            source=source, native_id=target, dedupe_key=key, emoji=name, actor=sender, added=True
        )
    if etype == "m.room.redaction":
        redacts = event.get("redacts") or content.get("redacts")
        if not isinstance(redacts, str):
            return None
        if reaction_redacted is not None:
            target, reaction_key = reaction_redacted
            name = to_slack_name(reaction_key)
            if not name:
                return None
            return ReactionChange(
                source=source,
                native_id=target,
                dedupe_key=key,
                emoji=name,
                actor=sender,
                added=False,
            )
        return DeletePost(source=source, native_id=redacts, dedupe_key=key)
    return None
