"""Slack mrkdwn <-> the neutral rich-text tree.

Slack escapes only ``&``, ``<`` and ``>`` in message text; everything in angle brackets is an
entity (mention, channel, broadcast, link). Rendering escapes all user text, so a message can
never smuggle in a mention or link it did not contain as a node. Mentions are rendered through a
callback: the relay decides whether ``@Ada`` becomes ``<@U123>`` in the target workspace or a
readable, non-pinging ``@Ada (Acme)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

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


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- parsing ----------------------------------------------------------------------------------

_INLINE = re.compile(
    r"(?P<entity><[^<>\n]+>)"
    r"|(?P<code>`[^`\n]+`)"
    r"|(?P<bold>(?<![\w*])\*(?=[^\s*])(?P<bold_in>[^*\n]*?[^\s*])\*(?![\w*]))"
    r"|(?P<italic>(?<![\w_])_(?=[^\s_])(?P<italic_in>[^_\n]*?[^\s_])_(?![\w_]))"
    r"|(?P<strike>(?<![\w~])~(?=[^\s~])(?P<strike_in>[^~\n]*?[^\s~])~(?![\w~]))"
    r"|(?P<emoji>:(?P<emoji_name>[a-z0-9_+\-']+(?:::skin-tone-[2-6])?):)"
    r"|(?P<br>\n)"
)
_PRE = re.compile(r"```(?P<body>.*?)```", re.DOTALL)
_QUOTE = re.compile(r"^(?:&gt;|>) ?")


def _entity(raw: str) -> Node:
    inner = raw[1:-1]
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return UserMention(target[1:], unescape(label))
    if target.startswith("#"):
        return ChannelMention(target[1:], unescape(label))
    if target.startswith("!"):
        name = target[1:].split("^", 1)[0]
        if name in BROADCASTS:
            return Broadcast(name)
        # Subteams, dates and other specials: keep Slack's own fallback text.
        return Text(unescape(label or target[1:]))
    url = unescape(target)
    return Link(url, (Text(unescape(label)),) if label else ())


def _inline(text: str) -> list[Node]:
    out: list[Node] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            out.append(Text(unescape(text[pos : m.start()])))
        if m.group("entity"):
            out.append(_entity(m.group("entity")))
        elif m.group("code"):
            out.append(Code(unescape(m.group("code")[1:-1])))
        elif m.group("bold"):
            out.append(Bold(tuple(_inline(m.group("bold_in")))))
        elif m.group("italic"):
            out.append(Italic(tuple(_inline(m.group("italic_in")))))
        elif m.group("strike"):
            out.append(Strike(tuple(_inline(m.group("strike_in")))))
        elif m.group("emoji"):
            out.append(Emoji(m.group("emoji_name")))
        elif m.group("br"):
            out.append(LineBreak())
        pos = m.end()
    if pos < len(text):
        out.append(Text(unescape(text[pos:])))
    return out


def _lines(text: str) -> list[Node]:
    """Block structure of a stretch without code blocks: quote runs and inline lines."""
    out: list[Node] = []
    quote: list[Node] = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        m = _QUOTE.match(line)
        if m:
            if quote:
                quote.append(LineBreak())
            quote.extend(_inline(line[m.end() :]))
            continue
        if quote:
            out.append(Quote(tuple(quote)))
            quote = []
        out.extend(_inline(line))
        if not last:
            out.append(LineBreak())
    if quote:
        out.append(Quote(tuple(quote)))
    return out


def parse(text: str) -> Doc:
    """Parse Slack message text (as Slack sends it, entities escaped) into a tree."""
    nodes: list[Node] = []
    pos = 0
    for m in _PRE.finditer(text):
        nodes.extend(_lines(text[pos : m.start()]))
        body = m.group("body")
        nodes.append(Pre(unescape(body[1:] if body.startswith("\n") else body).rstrip("\n")))
        pos = m.end()
    nodes.extend(_lines(text[pos:]))
    result = normalize(Doc(tuple(nodes)))
    assert isinstance(result, Doc)
    return _drop_quote_breaks(result)


def _drop_quote_breaks(node: Doc) -> Doc:
    # A quote is a block: the line break that ended the quoted line belongs to it.
    out: list[Node] = []
    for child in node.children:
        if isinstance(child, LineBreak) and out and isinstance(out[-1], Quote):
            continue
        out.append(child)
    return Doc(tuple(out))


# -- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Renderers:
    """How entities become mrkdwn in one target; the defaults keep source ids verbatim."""

    user: Callable[[UserMention], str] = lambda m: f"<@{m.user_id}>"
    channel: Callable[[ChannelMention], str] = lambda m: (
        f"<#{m.channel_id}|{escape(m.name)}>" if m.name else f"<#{m.channel_id}>"
    )
    broadcast: Callable[[Broadcast], str] = lambda b: f"<!{b.kind}>"


DEFAULT = Renderers()


def _link(node: Link, r: Renderers) -> str:
    url = node.url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C")
    label = "".join(_render(c, r) for c in node.children)
    return f"<{url}|{label}>" if label else f"<{url}>"


def _render(node: Node, r: Renderers) -> str:
    match node:
        case Text(text=t):
            return escape(t)
        case Bold(children=c):
            return "*" + "".join(_render(x, r) for x in c) + "*"
        case Italic(children=c):
            return "_" + "".join(_render(x, r) for x in c) + "_"
        case Strike(children=c):
            return "~" + "".join(_render(x, r) for x in c) + "~"
        case Code(text=t):
            return "`" + escape(t.replace("`", "'")) + "`"
        case Pre(text=t):
            return "```\n" + escape(t.replace("```", "'''")) + "\n```"
        case Link():
            return _link(node, r)
        case UserMention():
            return r.user(node)
        case ChannelMention():
            return r.channel(node)
        case Broadcast():
            return r.broadcast(node)
        case Emoji(name=name):
            return f":{name}:"
        case LineBreak():
            return "\n"
        case Quote(children=c):
            inner = "".join(_render(x, r) for x in c)
            return "\n".join("> " + line for line in inner.split("\n")) + "\n"
        case ListBlock(items=items, ordered=ordered):
            lines = [
                (f"{i + 1}. " if ordered else "• ") + "".join(_render(x, r) for x in item)
                for i, item in enumerate(items)
            ]
            return "\n".join(lines) + "\n"
        case Doc(children=c):
            return "".join(_render(x, r) for x in c)
    raise TypeError(f"not a rich-text node: {node!r}")


def render(node: Node, renderers: Renderers = DEFAULT) -> str:
    """Render a tree as mrkdwn for ``chat.postMessage``/``chat.update``."""
    return _render(node, renderers).rstrip("\n")
