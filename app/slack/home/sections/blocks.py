"""Block Kit builders and modal-state readers shared by the App Home sections.

Texts are cut to Slack's limits (3000 for a section or context, 75 for a button, 24 for a modal
title): Slack refuses a whole view for one text too long.
"""

from __future__ import annotations

import json
from typing import Any

from app.slack.home.section import Block


def plain_text(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


def header(text: str) -> Block:
    return {"type": "header", "text": plain_text(text)}


def mrkdwn(text: str, block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}
    if block_id:
        block["block_id"] = block_id
    return block


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


def button(
    text: str,
    action_id: str,
    value: str = "",
    *,
    style: str | None = None,
    confirm: tuple[str, str] | None = None,
) -> Block:
    element: Block = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text[:75]},
    }
    if value:
        element["value"] = value
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = {
            "title": {"type": "plain_text", "text": confirm[0][:100]},
            "text": {"type": "mrkdwn", "text": confirm[1][:300]},
            "confirm": {"type": "plain_text", "text": "Yes"},
            "deny": {"type": "plain_text", "text": "Cancel"},
            "style": "danger",
        }
    return element


def actions(block_id: str, *elements: Block) -> Block:
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def modal(
    callback_id: str, title: str, blocks: list[Block], *, submit: str, metadata: Any = None
) -> Block:
    view: Block = {
        "type": "modal",
        "callback_id": callback_id,
        "title": {"type": "plain_text", "text": title[:24]},
        "submit": {"type": "plain_text", "text": submit[:24]},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }
    if metadata is not None:
        view["private_metadata"] = json.dumps(metadata)
    return view


def text_input(block_id: str, label: str, *, max_length: int, placeholder: str = "") -> Block:
    element: Block = {"type": "plain_text_input", "action_id": "value", "max_length": max_length}
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": placeholder}
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }


def submitted(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    """The state of the single element of input ``block_id`` (empty when absent)."""
    values = ((view.get("state") or {}).get("values") or {}).get(block_id) or {}
    return next(iter(values.values()), {}) if isinstance(values, dict) else {}


def metadata(view: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def option(label: str, value: str) -> Block:
    return {"text": {"type": "plain_text", "text": label[:75]}, "value": value}


def select_input(
    block_id: str, label: str, options: list[Block], *, initial: Block | None = None
) -> Block:
    """An input with a static select of ``options`` (Slack allows 100 at most)."""
    element: Block = {"type": "static_select", "action_id": "value", "options": options}
    if initial is not None:
        element["initial_option"] = initial
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label[:75]},
        "element": element,
    }
