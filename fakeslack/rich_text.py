"""``rich_text`` blocks as Slack's clients attach them to user messages.

A person's message carries both ``text`` (mrkdwn) and the ``rich_text`` block the client built
from the composer: ``*bold*``, ``_italic_``, ``~strike~`` and `` `code` `` become ``text``
elements with a ``style``, ``:name:`` an ``emoji`` element, ``<@U…>``/``<#C…>``/``<!here>``/
``<url|label>`` user/channel/broadcast/link elements
(https://docs.slack.dev/reference/block-kit/blocks/rich-text-block).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

_TOKEN = re.compile(r"<([@#!])?([^>|]+)(?:\|([^>]*))?>")
# A styled run: the marker hugs non-space text and is not inside a word (as Slack's composer).
_STYLE = re.compile(r"(?<![\w*_~`])([*_~`])(?=\S)(.+?)(?<=\S)\1(?![\w*_~`])")
_EMOJI = re.compile(r":([a-z0-9_+'\-]+(?:::skin-tone-[2-6])?):")
_STYLES = {"*": "bold", "_": "italic", "~": "strike", "`": "code"}


def _plain(text: str) -> list[dict[str, Any]]:
    """Text with styled runs and ``:emoji:`` split into their elements."""
    out: list[dict[str, Any]] = []
    pos = 0
    for match in _STYLE.finditer(text):
        out.extend(_emoji(text[pos : match.start()]))
        marker, inner = match.groups()
        out.append({"type": "text", "text": inner, "style": {_STYLES[marker]: True}})
        pos = match.end()
    out.extend(_emoji(text[pos:]))
    return out


def _emoji(text: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    pos = 0
    for match in _EMOJI.finditer(text):
        if match.start() > pos:
            out.append({"type": "text", "text": text[pos : match.start()]})
        out.append({"type": "emoji", "name": match.group(1)})
        pos = match.end()
    if pos < len(text):
        out.append({"type": "text", "text": text[pos:]})
    return out


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """Split mrkdwn ``text`` into one ``rich_text`` block of text/user/channel/link elements."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        if match.start() > pos:
            elements.extend(_plain(text[pos : match.start()]))
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
        elements.extend(_plain(text[pos:]))
    return [
        {
            "type": "rich_text",
            "block_id": hashlib.sha1(text.encode()).hexdigest()[:5],
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]
