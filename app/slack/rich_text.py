"""Slack ``rich_text`` blocks (what Slack sends for messages people type) -> the neutral tree.

Blocks carry structure mrkdwn cannot (lists, styled ranges), so user messages are read from
their blocks when present and from ``text`` otherwise.
"""

from __future__ import annotations

from typing import Any

from app.core.richtext import (
    BROADCASTS,
    Bold,
    Broadcast,
    ChannelMention,
    Code,
    Doc,
    Emoji,
    Italic,
    LineBreak,
    Link,
    ListBlock,
    Node,
    Pre,
    Quote,
    Strike,
    Text,
    UserMention,
    normalize,
)


def _styled(node: Node, style: dict[str, Any] | None) -> Node:
    style = style or {}
    if style.get("code") and isinstance(node, Text):
        node = Code(node.text)
    if style.get("strike"):
        node = Strike((node,))
    if style.get("italic"):
        node = Italic((node,))
    if style.get("bold"):
        node = Bold((node,))
    return node


def _text_nodes(value: str, style: dict[str, Any] | None) -> list[Node]:
    out: list[Node] = []
    for i, part in enumerate(value.split("\n")):
        if i:
            out.append(LineBreak())
        if part:
            out.append(_styled(Text(part), style))
    return out


def _element(el: dict[str, Any]) -> list[Node]:
    kind = el.get("type")
    if kind == "text":
        return _text_nodes(str(el.get("text") or ""), el.get("style"))
    if kind == "link":
        label = el.get("text")
        children: tuple[Node, ...] = (Text(str(label)),) if label else ()
        return [_styled(Link(str(el.get("url") or ""), children), el.get("style"))]
    if kind == "user":
        return [UserMention(str(el.get("user_id") or ""))]
    if kind == "channel":
        return [ChannelMention(str(el.get("channel_id") or ""))]
    if kind == "usergroup":
        return [Text(f"@{el.get('usergroup_id')}")]
    if kind == "emoji":
        uni = el.get("unicode")
        char = None
        if uni:
            try:
                char = "".join(chr(int(cp, 16)) for cp in str(uni).split("-"))
            except ValueError:
                char = None
        return [Emoji(str(el.get("name") or ""), char)]
    if kind == "broadcast":
        rng = str(el.get("range") or "")
        return [Broadcast(rng)] if rng in BROADCASTS else [Text(f"@{rng}")]
    if kind == "date":
        return [Text(str(el.get("fallback") or ""))]
    if kind == "color":
        return [Text(str(el.get("value") or ""))]
    return [Text(str(el.get("text") or ""))] if el.get("text") else []


def _section(section: dict[str, Any]) -> list[Node]:
    out: list[Node] = []
    for el in section.get("elements") or []:
        out.extend(_element(el))
    return out


def _block_element(el: dict[str, Any]) -> list[Node]:
    kind = el.get("type")
    if kind == "rich_text_section":
        return _section(el)
    if kind == "rich_text_list":
        items = tuple(tuple(_section(item)) for item in el.get("elements") or [])
        return [ListBlock(items, ordered=el.get("style") == "ordered")]
    if kind == "rich_text_quote":
        return [Quote(tuple(_section(el)))]
    if kind == "rich_text_preformatted":
        text = "".join(
            str(e.get("text") or e.get("url") or "") for e in el.get("elements") or []
        )
        return [Pre(text, el.get("language"))]
    return []


def from_blocks(blocks: list[dict[str, Any]]) -> Doc:
    """Convert the ``rich_text`` blocks of a message into one tree."""
    nodes: list[Node] = []
    for block in blocks:
        if block.get("type") != "rich_text":
            continue
        for el in block.get("elements") or []:
            part = _block_element(el)
            if not part:
                continue
            ends_line = nodes and isinstance(nodes[-1], LineBreak | Quote | ListBlock | Pre)
            starts_block = isinstance(part[0], Quote | ListBlock | Pre)
            if nodes and not ends_line and not starts_block:
                nodes.append(LineBreak())
            nodes.extend(part)
    result = normalize(Doc(tuple(nodes)))
    assert isinstance(result, Doc)
    return result
