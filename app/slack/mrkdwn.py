"""Slack mrkdwn <-> the neutral rich-text tree.

Slack escapes only ``&``, ``<`` and ``>`` in message text; everything in angle brackets is an
entity (mention, channel, broadcast, link). mrkdwn has no escape for its formatting markers, so
rendering puts a zero-width space (U+200B) in front of a literal marker that could otherwise
open or close formatting, start a quote or list line, or form an emoji shortcode; parsing takes
those zero-width spaces out again. A message can therefore never smuggle in a mention, link or
formatting it did not contain as a node. Mentions are rendered through callbacks: the relay
decides whether ``@Ada`` becomes ``<@U123>`` in the target workspace or a readable, non-pinging
``@Ada (Acme)``.

Limits of the format (what does not survive a round trip): formatting is only recognised at word
boundaries (``a*b*`` is text, as in Slack), formatting, code and list items cannot span lines,
quotes hold inline content only, lists do not nest, code blocks carry no language, and inline
code cannot contain a backtick (it becomes ``'``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from app.core.richtext import (
    BLOCKS,
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

__all__ = ["DEFAULT", "Renderers", "escape", "parse", "render", "unescape"]

ZWSP = "\u200b"


def escape(text: str) -> str:
    """Escape text the way Slack does (``&``, ``<``, ``>`` only)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo :func:`escape`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- parsing ----------------------------------------------------------------------------------


def _span(name: str, mark: str) -> str:
    m = re.escape(mark)
    # Opens at a word boundary, not after a protecting zero-width space, and closes at one;
    # inside, protected and intraword markers are literal.
    return (
        rf"(?P<{name}>(?<![\w{m}{ZWSP}]){m}(?=[^\s{m}])"
        rf"(?P<{name}_in>(?:{ZWSP}{m}|(?<=\w){m}(?=\w)|[^{m}\n])*?[^\s{m}{ZWSP}])"
        rf"{m}(?![\w{m}]))"
    )


_EMOJI_NAME = r"[a-z0-9_+\-']+(?:::skin-tone-[2-6])?"
_INLINE = re.compile(
    r"(?P<entity><[^<>\n]+>)"
    rf"|(?P<code>(?<!{ZWSP})`[^`\n]+`)"
    f"|{_span('bold', '*')}|{_span('italic', '_')}|{_span('strike', '~')}"
    rf"|(?P<emoji>:(?P<emoji_name>{_EMOJI_NAME}):)"
)
_PRE = re.compile(r"(?<!" + ZWSP + r")```(?P<body>.*?)```", re.DOTALL)
_QUOTE = re.compile(r"(?:&gt;|>) ?")
_BULLET = re.compile(r"[•◦▪]\s")
_NUMBER = re.compile(r"(\d{1,4})\.\s")
_UNPROTECT = re.compile(ZWSP + r"(?=[*_~`•◦▪\d]|&gt;|>)|(?<=:)" + ZWSP)


def _text(raw: str) -> Text:
    return Text(_UNPROTECT.sub("", unescape(raw)))


def _entity(raw: str) -> Node:
    inner = raw[1:-1]
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        return UserMention(target[1:], unescape(label))
    if target.startswith("#"):
        return ChannelMention(target[1:], unescape(label))
    if target.startswith("!"):
        name = target[1:].split("^", 1)[0]
        if name in BROADCASTS and not label:
            return Broadcast(name)
        if target.startswith("!subteam^"):
            return Text(unescape(label) or "@" + target[len("!subteam^") :])
        # Dates and other specials: keep Slack's own fallback text.
        return Text(unescape(label or target[1:]))
    url = unescape(target)
    return Link(url, tuple(_inline(label)) if label else ())


def _inline(text: str) -> list[Node]:
    out: list[Node] = []
    pos = 0
    for m in _INLINE.finditer(text):
        if m.start() > pos:
            out.append(_text(text[pos : m.start()]))
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
        pos = m.end()
    if pos < len(text):
        out.append(_text(text[pos:]))
    return out


def _list_item(line: str, ordered: bool, expected: int) -> str | None:
    """The item text when ``line`` continues a list of that kind, else ``None``."""
    if ordered:
        m = _NUMBER.match(line)
        return line[m.end() :] if m and int(m.group(1)) == expected else None
    m = _BULLET.match(line)
    return line[m.end() :] if m else None


def _lines(text: str) -> list[Node]:
    """Block structure of a stretch without code blocks: quotes, lists and inline lines."""
    out: list[Node] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if _QUOTE.match(line):
            quoted: list[Node] = []
            while i < len(lines) and (m := _QUOTE.match(lines[i])):
                if quoted:
                    quoted.append(LineBreak())
                quoted.extend(_inline(lines[i][m.end() :]))
                i += 1
            out.append(Quote(tuple(quoted)))
            continue
        ordered = _list_item(line, True, 1) is not None
        if ordered or _BULLET.match(line):
            items: list[tuple[Node, ...]] = []
            while i < len(lines):
                item = _list_item(lines[i], ordered, len(items) + 1)
                if item is None:
                    break
                items.append(tuple(_inline(item)))
                i += 1
            out.append(ListBlock(tuple(items), ordered))
            continue
        out.extend(_inline(line))
        out.append(LineBreak())
        i += 1
    return out


def parse(text: str) -> Doc:
    """Parse Slack message text (as Slack sends it, entities escaped) into a tree.

    Args:
        text: The ``text`` of a message; any string is accepted.

    Returns:
        The normalized document.
    """
    nodes: list[Node] = []
    pos = 0
    for m in _PRE.finditer(text):
        nodes.extend(_lines(text[pos : m.start()]))
        body = m.group("body").removeprefix("\n").removesuffix("\n")
        nodes.append(Pre(unescape(body)))
        pos = m.end()
    nodes.extend(_lines(text[pos:]))
    result = normalize(Doc(tuple(nodes)))
    assert isinstance(result, Doc)
    return result


# -- rendering --------------------------------------------------------------------------------


def _default_user(mention: UserMention) -> str:
    name = escape(mention.name.replace("|", "/").replace("\n", " "))
    return f"<@{mention.user_id}|{name}>" if name else f"<@{mention.user_id}>"


def _default_channel(mention: ChannelMention) -> str:
    name = escape(mention.name.replace("|", "/").replace("\n", " "))
    return f"<#{mention.channel_id}|{name}>" if name else f"<#{mention.channel_id}>"


@dataclass(frozen=True, slots=True)
class Renderers:
    """How entities become mrkdwn in one target workspace.

    Each callback returns finished mrkdwn (an entity such as ``<@U123>``, or text it escaped
    itself with :func:`escape`). The defaults keep the source ids verbatim, which is right only
    when source and target are the same workspace.

    Attributes:
        user: Renders a user mention.
        channel: Renders a channel mention.
        broadcast: Renders ``@here``/``@channel``/``@everyone``; return escaped text to keep a
            broadcast from pinging the target channel.
    """

    user: Callable[[UserMention], str] = _default_user
    channel: Callable[[ChannelMention], str] = _default_channel
    broadcast: Callable[[Broadcast], str] = lambda b: f"<!{b.kind}>"


DEFAULT = Renderers()

# Only a marker between two letters or digits is safe: "_" is itself a word character.
_MARKER = re.compile(r"`|(?<![^\W_])[*_~]|[*_~](?![^\W_])")
_EMOJI_LIKE = re.compile(rf":(?={_EMOJI_NAME}:)")
_LINE_START = re.compile(r"^(?=&gt;|[•◦▪]\s|\d{1,4}\.\s)", re.MULTILINE)


def _protect(text: str) -> str:
    """Escape ``text`` and neutralise every marker that could be read as formatting."""
    # Backticks open code even inside words; the other markers only at word boundaries.
    text = _MARKER.sub(lambda m: ZWSP + m.group(0), escape(text))
    text = _EMOJI_LIKE.sub(":" + ZWSP, text)
    return _LINE_START.sub(ZWSP, text)


def _url(url: str) -> str:
    # "|" ends the URL inside an entity and a raw newline ends the entity: encode both.
    return escape(url.replace("|", "%7C").replace("\n", "%0A"))


class _Renderer:
    def __init__(self, renderers: Renderers) -> None:
        self.r = renderers

    def node(self, node: Node) -> str:
        match node:
            case Text(text=t):
                return _protect(t)
            case Bold(children=c):
                return "*" + self.inline(c) + "*"
            case Italic(children=c):
                return "_" + self.inline(c) + "_"
            case Strike(children=c):
                return "~" + self.inline(c) + "~"
            case Code(text=t):
                return "`" + escape(t.replace("`", "'").replace("\n", " ")) + "`"
            case Pre(text=t):
                return "```\n" + escape(t.replace("```", "'''")) + "\n```"
            case Link(url=url, children=c):
                label = self.inline(c).replace("|", "/").replace("\n", " ")
                return f"<{_url(url)}|{label}>" if label else f"<{_url(url)}>"
            case UserMention():
                return self.r.user(node)
            case ChannelMention():
                return self.r.channel(node)
            case Broadcast():
                return self.r.broadcast(node)
            case Emoji(name=name):
                return f":{name}:"
            case LineBreak():
                return "\n"
            case Quote(children=c):
                return "\n".join("> " + line for line in self.lines(c).split("\n"))
            case ListBlock(items=items, ordered=ordered):
                return "\n".join(
                    (f"{i + 1}. " if ordered else "• ") + self.lines(item).replace("\n", " ")
                    for i, item in enumerate(items)
                )
            case Doc(children=c):
                return self.lines(c)
        raise TypeError(f"not a rich-text node: {node!r}")

    def inline(self, children: tuple[Node, ...]) -> str:
        return "".join(self.node(c) for c in children)

    def lines(self, children: tuple[Node, ...]) -> str:
        # Blocks own whole lines: separate them from their neighbours with one newline each.
        out: list[str] = []
        for i, child in enumerate(children):
            if i and (isinstance(child, BLOCKS) or isinstance(children[i - 1], BLOCKS)):
                out.append("\n")
            out.append(self.node(child))
        return "".join(out)


def render(node: Node, renderers: Renderers = DEFAULT) -> str:
    """Render a tree as mrkdwn for ``chat.postMessage``/``chat.update``.

    Args:
        node: The tree (normalized or not).
        renderers: How mentions and broadcasts are written for the target workspace.

    Returns:
        The mrkdwn text; all text from the tree is escaped.
    """
    tree = normalize(node)
    return _Renderer(renderers).node(tree)
