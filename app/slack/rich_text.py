"""Slack ``rich_text`` blocks (what Slack sends for messages people type) <-> the neutral tree.

Blocks carry structure mrkdwn cannot (lists, styled ranges), so user messages are read from
their blocks when present and from ``text`` otherwise. :func:`to_blocks` is the way back, for
posting a body whose structure mrkdwn would lose. Slack sends a nested list as separate
``rich_text_list`` elements with an ``indent``; they are folded back into one nested list here.
Slack sends user mentions without names; the relay looks names up when it needs them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.richtext import (
    BROADCASTS,
    MAX_DEPTH,
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
    plain_text,
)

__all__ = ["from_blocks", "to_blocks"]


def _styled(node: Node, style: Any) -> Node:
    style = style if isinstance(style, dict) else {}
    if style.get("code") and isinstance(node, Text):
        node = Code(node.text)
    if style.get("strike"):
        node = Strike((node,))
    if style.get("italic"):
        node = Italic((node,))
    if style.get("bold"):
        node = Bold((node,))
    return node


def _text_nodes(value: str, style: Any) -> list[Node]:
    if isinstance(style, dict) and style.get("code"):
        return [_styled(Text(value), style)] if value else []  # code is verbatim, newlines too
    # One styled run even across newlines; normalization moves edge breaks out of the style.
    return [_styled(Doc((Text(value),)), style)] if value else []


def _unicode(codepoints: Any) -> str | None:
    """``"1f44d-1f3fb"`` -> the emoji itself; ``None`` when absent or malformed."""
    try:
        return "".join(chr(int(cp, 16)) for cp in str(codepoints).split("-")) or None
    except (ValueError, OverflowError):
        return None


def _element(el: Any) -> list[Node]:
    if not isinstance(el, dict):
        return []
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
        return [Text(f"@{el.get('usergroup_id') or 'group'}")]
    if kind == "emoji":
        uni = _unicode(el.get("unicode")) if el.get("unicode") else None
        return [Emoji(str(el.get("name") or ""), uni)]
    if kind == "broadcast":
        rng = str(el.get("range") or "")
        return [Broadcast(rng)] if rng in BROADCASTS else [Text(f"@{rng}")]
    if kind == "date":
        return [Text(str(el.get("fallback") or ""))]
    if kind == "color":
        return [Text(str(el.get("value") or ""))]
    return [Text(str(el.get("text")))] if el.get("text") else []


def _section(section: dict[str, Any]) -> list[Node]:
    out: list[Node] = []
    for el in section.get("elements") or []:
        out.extend(_element(el))
    return out


@dataclass(slots=True)
class _List:
    """A list under construction: nested lists arrive as later, indented elements."""

    ordered: bool
    items: list[list[Node | _List]] = field(default_factory=list)

    def freeze(self) -> ListBlock:
        return ListBlock(
            tuple(
                tuple(n.freeze() if isinstance(n, _List) else n for n in item)
                for item in self.items
            ),
            self.ordered,
        )


def _add_list(out: list[Node | _List], el: dict[str, Any]) -> None:
    ordered = el.get("style") == "ordered"
    items = [
        list[Node | _List](_section(i)) for i in el.get("elements") or [] if isinstance(i, dict)
    ]
    raw_indent = el.get("indent")
    indent = max(0, min(raw_indent, MAX_DEPTH // 2)) if isinstance(raw_indent, int) else 0
    # Walk down the previous list's last items to the level this element is indented to.
    siblings = out
    for _ in range(indent):
        last = siblings[-1] if siblings else None
        if not isinstance(last, _List) or not last.items:
            break
        siblings = last.items[-1]
    last = siblings[-1] if siblings else None
    if isinstance(last, _List) and last.ordered == ordered:
        last.items.extend(items)
    else:
        siblings.append(_List(ordered, items))


def from_blocks(blocks: Sequence[Any]) -> Doc:
    """Convert the ``rich_text`` blocks of a message into one tree.

    Args:
        blocks: The message's ``blocks``; blocks of other types are skipped.

    Returns:
        The normalized document. Unknown elements keep their ``text`` if they have one.
    """
    out: list[Node | _List] = []
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") != "rich_text":
            continue
        for el in block.get("elements") or []:
            if not isinstance(el, dict):
                continue
            kind = el.get("type")
            if kind == "rich_text_list":
                _add_list(out, el)
            elif kind == "rich_text_quote":
                out.append(Quote(tuple(_section(el))))
            elif kind == "rich_text_preformatted":
                code = "".join(
                    str(e.get("text") or e.get("url") or "")
                    for e in el.get("elements") or []
                    if isinstance(e, dict)
                )
                lang = el.get("language")
                out.append(Pre(code, lang if isinstance(lang, str) else None))
            elif kind == "rich_text_section":
                out.extend(_section(el))
                # A section is a paragraph: what follows starts on a new line.
                out.append(LineBreak())
    nodes = [n.freeze() if isinstance(n, _List) else n for n in out]
    result = normalize(Doc(tuple(nodes)))
    assert isinstance(result, Doc)
    return result


# -- rendering --------------------------------------------------------------------------------

_Style = frozenset[str]


def _inline_elements(node: Node, style: _Style) -> list[dict[str, Any]]:
    def styled(element: dict[str, Any]) -> dict[str, Any]:
        if style:
            element["style"] = {name: True for name in sorted(style)}
        return element

    match node:
        case Text(text=t):
            return [styled({"type": "text", "text": t})] if t else []
        case LineBreak():
            return [styled({"type": "text", "text": "\n"})]
        case Code(text=t):
            return [
                {"type": "text", "text": t, "style": dict.fromkeys(sorted(style | {"code"}), True)}
            ]
        case Bold(children=c) | Italic(children=c) | Strike(children=c):
            inner = style | {_STYLE_OF[type(node)]}
            return [e for child in c for e in _inline_elements(child, inner)]
        case Link(url=url, children=c):
            element: dict[str, Any] = {"type": "link", "url": url}
            if c:
                element["text"] = plain_text(Doc(c))
            return [styled(element)]
        case UserMention(user_id=uid):
            return [{"type": "user", "user_id": uid}]
        case ChannelMention(channel_id=cid):
            return [{"type": "channel", "channel_id": cid}]
        case Broadcast(kind=kind):
            return [{"type": "broadcast", "range": kind}]
        case Emoji(name=name, unicode=uni):
            element = {"type": "emoji", "name": name}
            if uni:
                element["unicode"] = "-".join(f"{ord(ch):x}" for ch in uni)
            return [element]
        case Doc(children=c):
            return [e for child in c for e in _inline_elements(child, style)]
    # A block inside inline content (a quote in bold text): keep its words.
    return _inline_elements(Text(plain_text(node)), style)


_STYLE_OF: dict[type, str] = {Bold: "bold", Italic: "italic", Strike: "strike"}


def _section_of(nodes: list[Node]) -> dict[str, Any]:
    elements: list[dict[str, Any]] = []
    for element in (e for n in nodes for e in _inline_elements(n, frozenset())):
        prev = elements[-1] if elements else None
        # Text split only by line breaks is one element, as Slack itself sends it.
        if (
            prev is not None
            and prev["type"] == element["type"] == "text"
            and prev.get("style") == element.get("style")
            and not element.get("style", {}).get("code")
        ):
            prev["text"] += element["text"]
        else:
            elements.append(element)
    return {"type": "rich_text_section", "elements": elements}


def _list_elements(block: ListBlock, indent: int) -> list[dict[str, Any]]:
    """One ``rich_text_list`` per run of items; nested lists follow as indented lists."""
    style = "ordered" if block.ordered else "bullet"
    out: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    done = 0

    def flush() -> None:
        nonlocal run, done
        if run:
            element: dict[str, Any] = {
                "type": "rich_text_list",
                "style": style,
                "indent": indent,
                "elements": run,
            }
            if block.ordered and done:
                element["offset"] = done
            out.append(element)
            done += len(run)
            run = []

    for item in block.items:
        run.append(_section_of([n for n in item if not isinstance(n, ListBlock)]))
        for nested in (n for n in item if isinstance(n, ListBlock)):
            flush()
            out.extend(_list_elements(nested, indent + 1))
    flush()
    return out


def to_blocks(node: Node) -> list[dict[str, Any]]:
    """Render a tree as one ``rich_text`` block for ``chat.postMessage``.

    Mentions are written with the ids they carry: rewrite them for the target workspace first
    (see :func:`app.core.richtext.transform`). Quotes hold inline content only in Slack, so
    blocks inside a quote keep just their text.

    Args:
        node: The tree (normalized or not).

    Returns:
        ``[{"type": "rich_text", "elements": [...]}]``, or ``[]`` for an empty body.
    """
    tree = normalize(node)
    children = tree.children if isinstance(tree, Doc) else (tree,)
    elements: list[dict[str, Any]] = []
    run: list[Node] = []
    for child in children:
        if not isinstance(child, Quote | ListBlock | Pre):
            run.append(child)
            continue
        if run:
            elements.append(_section_of(run))
            run = []
        if isinstance(child, Quote):
            quote = _section_of(list(child.children))
            elements.append({"type": "rich_text_quote", "elements": quote["elements"]})
        elif isinstance(child, ListBlock):
            elements.extend(_list_elements(child, 0))
        else:
            text = [{"type": "text", "text": child.text}] if child.text else []
            elements.append({"type": "rich_text_preformatted", "elements": text})
    if run:
        elements.append(_section_of(run))
    return [{"type": "rich_text", "elements": elements}] if elements else []
