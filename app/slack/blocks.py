"""Every Block Kit block and legacy attachment of a message -> the neutral rich-text tree.

Other apps (GitHub, Jira, PagerDuty, CI bots) put their content in ``section``/``context``/
``header`` blocks or in legacy ``attachments``, often with an empty ``text``. Each block becomes
paragraphs of the tree, so the copy says what the original said on every network; interactive
elements (buttons, menus) cannot work in a copy and become their labels (a button with a URL
becomes a link). ``rich_text`` blocks keep their structure through :mod:`app.slack.rich_text`.

Block Kit reference: https://api.slack.com/reference/block-kit/blocks; legacy attachments:
https://api.slack.com/reference/messaging/attachments.
"""

from __future__ import annotations

import logging
from typing import Any

from app.core.richtext import (
    Bold,
    Doc,
    Italic,
    LineBreak,
    Link,
    Node,
    Quote,
    Text,
    normalize,
    plain_text,
)
from app.slack import mrkdwn
from app.slack import rich_text as rich_text_blocks

log = logging.getLogger("syncbot.slack.blocks")

__all__ = ["attachments_body", "blocks_body", "message_body"]

DIVIDER = "———"


def _text_object(obj: Any) -> list[Node]:
    """A composition text object: ``mrkdwn`` is parsed, ``plain_text`` taken verbatim."""
    if isinstance(obj, str):
        return list(mrkdwn.parse(obj).children)
    if not isinstance(obj, dict):
        return []
    value = str(obj.get("text") or "")
    if not value:
        return []
    if obj.get("type") == "plain_text":
        return [Text(value)]
    return list(mrkdwn.parse(value).children)


def _image(url: Any, label: Any) -> list[Node]:
    url = str(url or "")
    label = str(label or "").strip()
    if not url:
        return [Text(label)] if label else []
    return [Link(url, (Text(label or "image"),))]


def _element(el: Any) -> list[Node]:
    """An element of a ``context``/``actions`` block or a section accessory."""
    if not isinstance(el, dict):
        return []
    kind = el.get("type")
    if kind in ("mrkdwn", "plain_text"):
        return _text_object(el)
    if kind == "image":
        # In context blocks images are icons: their alt text is what they say.
        alt = str(el.get("alt_text") or "").strip()
        return [Text(alt)] if alt else []
    if kind == "button":
        label = _text_object(el.get("text"))
        if el.get("url"):
            return [Link(str(el["url"]), tuple(label) or (Text(str(el["url"])),))]
        return [Text("["), *label, Text("]")] if label else []
    if kind == "overflow":
        return []
    # Menus, date pickers and other inputs: their placeholder or chosen value, as text.
    for key in ("initial_option", "placeholder"):
        value = el.get(key)
        if isinstance(value, dict):
            inner = value.get("text") if key == "initial_option" else value
            nodes = _text_object(inner)
            if nodes:
                return [Text("["), *nodes, Text("]")]
    for key in ("initial_date", "initial_time", "initial_date_time"):
        if el.get(key):
            return [Text(str(el[key]))]
    return []


def _joined(parts: list[list[Node]], sep: Node) -> list[Node]:
    out: list[Node] = []
    for part in (p for p in parts if p):
        if out:
            out.append(sep)
        out.extend(part)
    return out


def _block(block: dict[str, Any]) -> list[Node]:
    kind = block.get("type")
    if kind == "rich_text":
        return list(rich_text_blocks.from_blocks([block]).children)
    if kind == "section":
        out = _text_object(block.get("text"))
        fields = [_text_object(f) for f in block.get("fields") or []]
        if fields:
            if out:
                out.append(LineBreak())
            out.extend(_joined(fields, LineBreak()))
        accessory = block.get("accessory")
        if isinstance(accessory, dict):
            extra = (
                _image(accessory.get("image_url"), accessory.get("alt_text"))
                if accessory.get("type") == "image"
                else _element(accessory)
            )
            if extra:
                out.extend([LineBreak(), *extra] if out else extra)
        return out
    if kind == "header":
        label = _text_object(block.get("text"))
        return [Bold(tuple(label))] if label else []
    if kind == "context":
        parts = [_element(e) for e in block.get("elements") or []]
        line = _joined(parts, Text(" "))
        return [Italic(tuple(line))] if line else []
    if kind == "divider":
        return [Text(DIVIDER)]
    if kind == "image":
        title = block.get("title")
        caption = plain_text(Doc(tuple(_text_object(title)))) if title else block.get("alt_text")
        return _image(block.get("image_url") or block.get("slack_file", {}).get("url"), caption)
    if kind == "actions":
        return _joined([_element(e) for e in block.get("elements") or []], Text(" "))
    if kind == "video":
        title = plain_text(Doc(tuple(_text_object(block.get("title")))))
        url = block.get("title_url") or block.get("video_url")
        return _image(url, title or block.get("alt_text") or "video")
    if kind == "file":
        return [Text("(a file)")]
    if kind == "input":
        return _text_object(block.get("label"))
    if kind == "markdown":
        # The markdown block takes standard Markdown; its mrkdwn reading keeps links and text.
        return _text_object({"type": "mrkdwn", "text": block.get("text")})
    # A block type newer than this code: keep whatever text it carries.
    found = block.get("text")
    return _text_object(found) if found else []


def blocks_body(blocks: list[Any]) -> list[Node]:
    """Every block of a message as paragraphs, in order."""
    out: list[Node] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        try:
            nodes = _block(block)
        except (ValueError, KeyError, TypeError, AttributeError):
            log.debug("unparseable block skipped", extra={"block_type": block.get("type")})
            continue
        if nodes:
            out.extend(nodes)
            out.append(LineBreak())
    return out


def _attachment(att: dict[str, Any]) -> list[Node]:
    """One legacy attachment: pretext, author, title, text, fields, image, footer."""
    if att.get("blocks"):
        inner = blocks_body(att["blocks"])
        if inner:
            return inner
    lines: list[list[Node]] = []
    pretext = _text_object(att.get("pretext"))
    body: list[list[Node]] = []
    if att.get("author_name"):
        name = str(att["author_name"])
        link = att.get("author_link")
        body.append([Link(str(link), (Text(name),)) if link else Text(name)])
    if att.get("title"):
        title: Node = Text(str(att["title"]))
        if att.get("title_link"):
            title = Link(str(att["title_link"]), (title,))
        body.append([Bold((title,))])
    text = _text_object(att.get("text"))
    if text:
        body.append(text)
    for field in att.get("fields") or []:
        if not isinstance(field, dict):
            continue
        value = _text_object(field.get("value"))
        title_ = str(field.get("title") or "")
        body.append([Bold((Text(title_),)), Text(": "), *value] if title_ else value)
    if att.get("image_url"):
        body.append(_image(att["image_url"], att.get("title") or "image"))
    elif att.get("thumb_url") and not body:
        body.append(_image(att["thumb_url"], "image"))
    footer = [Text(str(att["footer"]))] if att.get("footer") else []
    if footer:
        body.append([Italic(tuple(footer))])
    if not body and att.get("fallback"):
        body.append([Text(str(att["fallback"]))])
    if pretext:
        lines.append(pretext)
    flat = _joined(body, LineBreak())
    # An attachment is visually set apart (a coloured bar in Slack): a quote elsewhere.
    if flat:
        lines.append([Quote(tuple(flat))])
    return _joined(lines, LineBreak())


def attachments_body(attachments: list[Any]) -> list[Node]:
    out: list[Node] = []
    for att in attachments:
        # Link previews Slack unfurled from the text are not content: every network unfurls
        # the link again from the copy.
        if isinstance(att, dict) and not (att.get("from_url") or att.get("original_url")):
            nodes = _attachment(att)
            if nodes:
                out.extend(nodes)
                out.append(LineBreak())
    return out


def message_body(message: dict[str, Any]) -> Doc:
    """The whole content of a message as one tree.

    Blocks are what Slack shows when present (``text`` is then the notification fallback);
    attachments follow them. Without either, or when they render to nothing, ``text`` is used,
    so a message is never relayed empty while it has something to say.
    """
    nodes = blocks_body(message.get("blocks") or [])
    if not nodes and message.get("text"):
        nodes = list(mrkdwn.parse(str(message["text"])).children)
        nodes.append(LineBreak())
    nodes.extend(attachments_body(message.get("attachments") or []))
    result = normalize(Doc(tuple(nodes)))
    assert isinstance(result, Doc)
    if not plain_text(result).strip() and message.get("text"):
        result = mrkdwn.parse(str(message["text"]))
    return result
