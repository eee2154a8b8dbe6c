"""``rich_text`` blocks as Slack's clients attach them to user messages."""

from __future__ import annotations

import hashlib
import re
from typing import Any

_TOKEN = re.compile(r"<([@#!])?([^>|]+)(?:\|([^>]*))?>")


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """Split mrkdwn ``text`` into one ``rich_text`` block of text/user/channel/link elements."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos : match.start()]})
        sigil, target, label = match.groups()
        if sigil == "@":
            elements.append({"type": "user", "user_id": target})
        elif sigil == "#":
            elements.append({"type": "channel", "channel_id": target})
        elif sigil == "!":
            elements.append({"type": "broadcast", "range": target})
        else:
            link: dict[str, Any] = {"type": "link", "url": target}
            if label:
                link["text"] = label
            elements.append(link)
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    return [
        {
            "type": "rich_text",
            "block_id": hashlib.sha1(text.encode()).hexdigest()[:5],
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]
