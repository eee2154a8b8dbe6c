"""The shapes of a verified Slack payload, checked once before any handler reads it.

A valid signature proves the payload came from Slack (or is a replay within five minutes), not
that every field has the type a handler expects; a handler that meets ``"user": {"id": {}}``
should not be where that is found out. Slack documents these fields as strings, objects and
lists (https://api.slack.com/apis/events-api#callback-field,
https://api.slack.com/reference/interaction-payloads); a payload that breaks those types is
refused with a 400 instead of reaching the event translator, the App Home or the relay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class MalformedPayload(ValueError):
    """A signed payload whose fields do not have the documented types."""


def _check(value: Any, kinds: tuple[type, ...], name: str) -> None:
    if value is not None and not isinstance(value, kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise MalformedPayload(f"{name} must be {expected}")


def _fields(data: dict[str, Any], where: str, spec: Mapping[str, tuple[type, ...]]) -> None:
    for name, kinds in spec.items():
        _check(data.get(name), kinds, f"{where}.{name}")


def _objects(value: Any, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise MalformedPayload(f"{name} must be a list of objects")
    return value


S, D, L, B = (str,), (dict,), (list,), (bool,)
_ENVELOPE = {
    "type": S,
    "team_id": S,
    "api_app_id": S,
    "event_id": S,
    "enterprise_id": S,
    "event": D,
    "authorizations": L,
    "token": S,
    "challenge": S,
}
_EVENT = {
    "type": S,
    "subtype": S,
    "channel": (str, dict),
    "channel_type": S,
    "ts": S,
    "thread_ts": S,
    "event_ts": S,
    "text": S,
    "team": S,
    "bot_id": S,
    "app_id": S,
    "username": S,
    "icons": D,
    "item": D,
    "reaction": S,
    "message": D,
    "previous_message": D,
    "deleted_ts": S,
    "files": L,
    "blocks": L,
    "attachments": L,
    "bot_profile": D,
    "metadata": D,
    "tab": S,
    "tokens": D,
}
_MESSAGE = {
    "type": S,
    "subtype": S,
    "ts": S,
    "thread_ts": S,
    "text": S,
    "user": S,
    "bot_id": S,
    "app_id": S,
    "username": S,
    "icons": D,
    "files": L,
    "blocks": L,
    "attachments": L,
    "metadata": D,
    "edited": D,
}
_INTERACTION = {
    "type": S,
    "user": D,
    "team": D,
    "enterprise": D,
    "channel": D,
    "container": D,
    "view": D,
    "actions": L,
    "trigger_id": S,
    "response_url": S,
    "callback_id": S,
    "api_app_id": S,
}
_ACTION = {
    "type": S,
    "action_id": S,
    "block_id": S,
    "value": S,
    "selected_option": D,
    "selected_options": L,
    "selected_conversation": S,
    "selected_channel": S,
    "selected_user": S,
}
# https://docs.slack.dev/reference/interaction-payloads/view-interactions-payload
_VIEW_PAYLOADS = frozenset({"view_submission", "view_closed"})
_VIEW = {
    "id": S,
    "type": S,
    "callback_id": S,
    "private_metadata": S,
    "state": D,
    "hash": S,
    "blocks": L,
    "external_id": S,
}


def check(payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``payload`` if every field a handler reads has its documented type.

    Raises:
        MalformedPayload: naming the first field that does not.
    """
    if not isinstance(payload.get("type"), str):
        raise MalformedPayload("type must be a string")
    if payload["type"] in ("event_callback", "url_verification", "app_rate_limited"):
        _fields(payload, "payload", _ENVELOPE)
        _objects(payload.get("authorizations"), "payload.authorizations")
        event = payload.get("event") or {}
        _fields(event, "event", _EVENT)
        for name in ("user", "user_id"):
            # ``user`` is an id in message events and an object in user_change.
            _check(event.get(name), (str, dict), f"event.{name}")
        for name in ("message", "previous_message"):
            inner = event.get(name)
            if isinstance(inner, dict):
                _fields(inner, f"event.{name}", _MESSAGE)
                _objects(inner.get("files"), f"event.{name}.files")
        for name in ("files", "blocks", "attachments"):
            _objects(event.get(name), f"event.{name}")
        channel = event.get("channel")
        if isinstance(channel, dict):
            _fields(channel, "event.channel", {"id": S, "name": S})
        item = event.get("item")
        if isinstance(item, dict):
            _fields(item, "event.item", {"type": S, "channel": S, "ts": S})
        return payload
    _fields(payload, "payload", _INTERACTION)
    for name in ("user", "team", "enterprise", "channel", "container"):
        inner = payload.get(name)
        if isinstance(inner, dict):
            _fields(inner, f"payload.{name}", {"id": S, "team_id": S, "name": S})
    actions = _objects(payload.get("actions"), "payload.actions")
    if payload["type"] == "block_actions" and not actions:
        raise MalformedPayload("block_actions carries at least one action")
    for action in actions:
        _fields(action, "action", _ACTION)
        option = action.get("selected_option")
        if isinstance(option, dict):
            _fields(option, "action.selected_option", {"value": S})
        _objects(action.get("selected_options"), "action.selected_options")
    view = payload.get("view")
    if payload["type"] in _VIEW_PAYLOADS and not (
        isinstance(view, dict) and isinstance(view.get("type"), str)
    ):
        # Slack always sends the view with its type; Bolt reads it unguarded.
        raise MalformedPayload(f"{payload['type']} carries a view with its type")
    if isinstance(view, dict):
        _fields(view, "view", _VIEW)
        _objects(view.get("blocks"), "view.blocks")
    return payload
