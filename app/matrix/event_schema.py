"""The one validating layer every event the homeserver pushes goes through first.

Room events are written by any user of a bridged room, and the homeserver passes their
``content`` on as the client sent it: ``"m.in_reply_to": "x"`` or ``"info": {"size": "abc"}``
are as possible as well-formed content. Code that reads an event trusts what this module
checked — the top-level fields, and the types of every content field the bridge reads — so a
malformed event is refused here, skipped by the transaction handler (logged and counted), and
never turns a transaction into a 500 that the homeserver would replay forever.
"""

from __future__ import annotations

from typing import Any

MAX_ID = 255  # room, event and user ids (the spec caps them at 255 bytes)


class MalformedEvent(ValueError):
    """An event whose shape the bridge cannot read."""


def _text(value: Any, name: str, *, required: bool = False, limit: int | None = None) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value):
        raise MalformedEvent(f"{name} must be a string")
    if limit is not None and len(value) > limit:
        raise MalformedEvent(f"{name} is longer than {limit} characters")


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedEvent(f"{name} must be an object")
    return value


def _relation(content: dict[str, Any], where: str) -> None:
    rel = _object(content.get("m.relates_to"), f"{where}.m.relates_to")
    for field in ("rel_type", "key"):
        _text(rel.get(field), f"{where}.m.relates_to.{field}")
    _text(rel.get("event_id"), f"{where}.m.relates_to.event_id", limit=MAX_ID)
    reply = _object(rel.get("m.in_reply_to"), f"{where}.m.relates_to.m.in_reply_to")
    _text(reply.get("event_id"), f"{where}.m.relates_to.m.in_reply_to.event_id", limit=MAX_ID)


def _message_content(content: dict[str, Any], where: str) -> None:
    for field in ("body", "formatted_body", "format", "msgtype", "filename", "url"):
        _text(content.get(field), f"{where}.{field}")
    info = _object(content.get("info"), f"{where}.info")
    size = info.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise MalformedEvent(f"{where}.info.size must be a non-negative integer")
    _text(info.get("mimetype"), f"{where}.info.mimetype")
    _object(content.get("m.mentions"), f"{where}.m.mentions")
    _relation(content, where)


def validate(event: Any) -> dict[str, Any]:
    """Return ``event`` if the bridge can read it.

    Raises:
        MalformedEvent: saying which field is wrong.
    """
    if not isinstance(event, dict):
        raise MalformedEvent("an event must be an object")
    _text(event.get("type"), "type", required=True, limit=255)
    _text(event.get("event_id"), "event_id", limit=MAX_ID)
    _text(event.get("sender"), "sender", limit=MAX_ID)
    _text(event.get("room_id"), "room_id", limit=MAX_ID)
    room = event.get("room_id")
    if room is not None and (not room.startswith("!") or any(c.isspace() for c in room)):
        raise MalformedEvent("room_id must be a room id (!opaque:server)")
    _text(event.get("state_key"), "state_key", limit=MAX_ID)
    _text(event.get("redacts"), "redacts", limit=MAX_ID)
    content = _object(event.get("content"), "content")
    _text(content.get("redacts"), "content.redacts", limit=MAX_ID)
    _text(content.get("membership"), "content.membership")
    unsigned = _object(event.get("unsigned"), "unsigned")
    stripped = unsigned.get("invite_room_state")
    if stripped is not None and (
        not isinstance(stripped, list) or not all(isinstance(s, dict) for s in stripped)
    ):
        raise MalformedEvent("unsigned.invite_room_state must be a list of objects")
    etype = event["type"]
    if etype in ("m.room.message", "m.reaction", "m.sticker"):
        if not event.get("event_id") or not event.get("sender"):
            raise MalformedEvent(f"a {etype} event needs event_id and sender")
        _message_content(content, "content")
        new = content.get("m.new_content")
        if new is not None:
            _message_content(_object(new, "content.m.new_content"), "content.m.new_content")
    if etype == "m.room.member" and event.get("state_key") is None:
        raise MalformedEvent("a membership event needs a state_key")
    return event
