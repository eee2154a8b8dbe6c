"""Matrix ``org.matrix.custom.html`` <-> the neutral rich-text tree.

Parsing uses the stdlib :mod:`html.parser` and understands the subset the Matrix spec allows in
``formatted_body``; any other tag keeps its text and loses its markup, so hostile input can
never pass markup through. Rendering escapes every piece of text and attribute, produces pills
through callbacks (the bridge decides which ghost or portal a mention points at) and returns
the readable plain ``body`` alongside the HTML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from html.parser import HTMLParser
from urllib.parse import quote, unquote, urlsplit

from app.core.richtext import (
    BLOCKS,
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
    transform,
)

__all__ = ["DEFAULT", "Pill", "Pills", "Rendered", "parse", "parse_body", "render"]

MATRIX_TO = "https://matrix.to/#/"
# Schemes the spec allows in <a href>; anything else (javascript:, data:) is not a link.
LINK_SCHEMES = frozenset({"http", "https", "ftp", "mailto", "magnet"})

_INLINE: dict[str, type[Bold | Italic | Strike]] = {
    "b": Bold,
    "strong": Bold,
    "i": Italic,
    "em": Italic,
    "del": Strike,
    "s": Strike,
}
_LINE_TAGS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "caption", "details"}
)
_SKIPPED = frozenset({"mx-reply", "script", "style", "head", "title", "template", "noscript"})
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area", "source"})
_LANGUAGE = re.compile(r"\blanguage-([A-Za-z0-9_+#.-]{1,40})")
_SAFE_LANGUAGE = re.compile(r"[^A-Za-z0-9_+#.-]")


# -- parsing ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Frame:
    tag: str
    nodes: list[Node] = field(default_factory=list)
    href: str = ""
    language: str | None = None
    items: list[tuple[Node, ...]] = field(default_factory=list)


def _pill(href: str) -> tuple[str, str] | None:
    """``("user" | "room", id)`` for a matrix.to or ``matrix:`` link to a user or room."""
    if href.startswith(MATRIX_TO):
        target = unquote(href[len(MATRIX_TO) :].split("?", 1)[0])
        if "/" in target:  # a link to an event in a room, not a pill
            return None
    elif href.startswith("matrix:"):
        path = href[len("matrix:") :].split("?", 1)[0]
        kind, _, rest = path.partition("/")
        sigil = {"u": "@", "r": "#", "roomid": "!"}.get(kind)
        if sigil is None or not rest or "/" in rest:
            return None
        target = sigil + unquote(rest)
    else:
        return None
    if len(target) > 1 and ":" in target:
        if target[0] == "@":
            return ("user", target)
        if target[0] in "!#":
            return ("room", target)
    return None


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_Frame] = [_Frame("#root")]
        self.skip = 0  # depth inside mx-reply/script/...: everything there is dropped
        self.ignored = 0  # tags not pushed because the tree is already too deep

    # The parser is driven by HTMLParser callbacks; state lives in the frame stack.

    @property
    def top(self) -> _Frame:
        return self.stack[-1]

    def _verbatim(self) -> bool:
        return any(f.tag in ("pre", "code") for f in self.stack)

    def _line_start(self) -> None:
        nodes = self.top.nodes
        if nodes and not isinstance(nodes[-1], (LineBreak, *BLOCKS)):
            nodes.append(LineBreak())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip += 1
            return
        if self.skip:
            return
        attr = {k: v or "" for k, v in attrs}
        if tag in _VOID:
            self._void(tag, attr)
            return
        if len(self.stack) > MAX_DEPTH:
            self.ignored += 1
            return
        frame = _Frame(tag)
        if tag == "a":
            frame.href = attr.get("href", "").strip()
        elif tag == "code" and self.top.tag == "pre":
            match = _LANGUAGE.search(attr.get("class", ""))
            self.top.language = match.group(1) if match else self.top.language
        elif tag in _LINE_TAGS or tag == "li":
            self._line_start()
        self.stack.append(frame)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID or tag in _SKIPPED:
            self.handle_starttag(tag, attrs)
            if tag in _SKIPPED:
                self.skip -= 1
        # Other self-closed tags (<b/>) are empty elements: nothing to keep.

    def _void(self, tag: str, attr: dict[str, str]) -> None:
        if tag in ("br", "hr"):
            self.top.nodes.append(LineBreak())
        elif tag == "img":
            alt = attr.get("alt") or attr.get("title") or ""
            name = alt.strip(":")
            if "data-mx-emoticon" in attr and alt.startswith(":") and alt.endswith(":") and name:
                self.top.nodes.append(Emoji(name))
            elif alt:
                self.top.nodes.append(Text(alt))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip = max(0, self.skip - 1)
            return
        if self.skip:
            return
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                while len(self.stack) > depth:
                    self._close()
                return
        if self.ignored:
            self.ignored -= 1
        # An end tag that closes nothing open is dropped, like browsers do.

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self._verbatim():
            if "\n" in data and not data.strip():
                return  # whitespace between tags (pretty-printed lists, paragraphs)
            data = data.replace("\r\n", " ").replace("\n", " ")
        if self.top.tag in ("ul", "ol"):
            if not data.strip():
                return
            self.top.items.append((Text(data),))  # stray text in a list is its own item
            return
        self.top.nodes.append(Text(data))

    def _close(self) -> None:
        frame = self.stack.pop()
        parent = self.top
        for node in self._build(frame):
            if parent.tag in ("ul", "ol"):
                parent.items.append((node,))
            else:
                parent.nodes.append(node)

    def _build(self, frame: _Frame) -> list[Node]:
        tag, children = frame.tag, tuple(frame.nodes)
        if tag in _INLINE:
            return [_INLINE[tag](children)]
        if tag == "code":
            return [Code(plain_text(Doc(children)))]
        if tag == "pre":
            body = plain_text(Doc(children))
            return [Pre(body[:-1] if body.endswith("\n") else body, frame.language)]
        if tag == "blockquote":
            return [Quote(children)]
        if tag in ("ul", "ol"):
            items = list(frame.items)
            if children:
                items.append(children)
            return [ListBlock(tuple(items), ordered=tag == "ol")]
        if tag == "li":
            if self.top.tag in ("ul", "ol"):
                self.top.items.append(children)
                return []
            return list(children)
        if tag == "a":
            return self._link(frame.href, children)
        if tag in _LINE_TAGS:
            return [*children, LineBreak()]
        return list(children)  # unknown or presentational tag: its text survives

    def _link(self, href: str, children: tuple[Node, ...]) -> list[Node]:
        label = plain_text(Doc(children))
        pill = _pill(href)
        if pill is not None:
            kind, target = pill
            name = "" if label == target else label
            if kind == "user":
                return [UserMention(target, name)]
            return [ChannelMention(target, name)]
        if urlsplit(href).scheme.lower() in LINK_SCHEMES:
            return [Link(href, children)]
        return list(children)

    def result(self) -> Doc:
        while len(self.stack) > 1:
            self._close()
        return Doc(tuple(self.top.nodes))


def _room_mentions(node: Node) -> Node:
    if not isinstance(node, Text) or "@room" not in node.text:
        return node
    parts: list[Node] = []
    for i, piece in enumerate(node.text.split("@room")):
        if i:
            parts.append(Broadcast("channel"))
        parts.append(Text(piece))
    return Doc(tuple(parts))


def parse(html: str, *, room_mention: bool = False) -> Doc:
    """Convert a ``formatted_body`` into a normalized tree.

    Args:
        html: The ``org.matrix.custom.html`` body; any string is accepted.
        room_mention: The event's ``m.mentions.room`` was set: literal ``@room`` in the text
            becomes a broadcast (``@channel``). Without it ``@room`` stays plain text.

    Returns:
        The document. Pills (matrix.to or ``matrix:`` links to a user or room) become user and
        channel mentions carrying the Matrix id; ``mx-reply`` fallbacks, scripts and styles are
        dropped; tags outside the spec keep only their text.
    """
    parser = _Parser()
    parser.feed(html)
    parser.close()
    tree: Node = parser.result()
    if room_mention:
        tree = transform(tree, _room_mentions)
    result = normalize(tree)
    assert isinstance(result, Doc)
    return result


def parse_body(body: str) -> Doc:
    """Convert a plain ``body`` (no ``formatted_body``) into a tree of text and line breaks."""
    result = normalize(Doc((Text(body),)))
    assert isinstance(result, Doc)
    return result


# -- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pill:
    """Where a mention points in Matrix: a user id, room id or alias, and the visible label."""

    target: str
    label: str


def _default_user(mention: UserMention) -> Pill | None:
    if mention.user_id.startswith("@") and ":" in mention.user_id:
        return Pill(mention.user_id, mention.name or mention.user_id)
    return None


def _default_channel(mention: ChannelMention) -> Pill | None:
    if mention.channel_id[:1] in ("!", "#") and ":" in mention.channel_id:
        return Pill(mention.channel_id, mention.name or mention.channel_id)
    return None


@dataclass(frozen=True, slots=True)
class Pills:
    """How mentions become Matrix pills in one room.

    Attributes:
        user: The pill for a user mention, or ``None`` to write ``@name`` as plain text. The
            default keeps Matrix ids and writes every other network's ids as text.
        channel: The pill for a channel mention, or ``None`` for ``#name`` as plain text.
        room: Whether a broadcast may notify the room (rendered ``@room``); when it may not it
            is written as ``@here`` etc., which notifies nobody.
    """

    user: Callable[[UserMention], Pill | None] = _default_user
    channel: Callable[[ChannelMention], Pill | None] = _default_channel
    room: Callable[[Broadcast], bool] = lambda _b: False
    # The mxc:// image of a custom emoji, rendered as <img data-mx-emoticon>; None: :name:.
    emoticon: Callable[[Emoji], str | None] = lambda _e: None


# A link to this pseudo-URL is an emoticon image inside the renderer only: the tree has no node
# for it, and no Slack or Matrix link can carry a NUL character.
_EMOTICON = "\x00emoticon:"


DEFAULT = Pills()


@dataclass(frozen=True, slots=True)
class Rendered:
    """A message body for ``m.room.message``.

    Attributes:
        body: The readable plain-text fallback.
        formatted_body: The ``org.matrix.custom.html`` form.
        user_ids: Users pilled in the body, in order, for ``m.mentions.user_ids``.
        room: A broadcast was rendered as ``@room``, for ``m.mentions.room``.
    """

    body: str
    formatted_body: str
    user_ids: tuple[str, ...] = ()
    room: bool = False


def _href(target: str) -> str:
    return MATRIX_TO + quote(target, safe="@:!#$+=/._-~")


class _Resolver:
    """Calls the pill callbacks once per distinct mention and records the mention metadata."""

    def __init__(self, pills: Pills) -> None:
        self.pills = pills
        self.user_ids: list[str] = []
        self.room = False
        self.cache: dict[Node, Pill | None] = {}

    def pill(self, node: UserMention | ChannelMention) -> Pill | None:
        if node not in self.cache:
            if isinstance(node, UserMention):
                pill = self.pills.user(node)
                if pill is not None and pill.target not in self.user_ids:
                    self.user_ids.append(pill.target)
            else:
                pill = self.pills.channel(node)
            self.cache[node] = pill
        return self.cache[node]

    def html_node(self, node: Node) -> Node:
        if isinstance(node, UserMention | ChannelMention):
            pill = self.pill(node)
            if pill is not None:
                return Link(_href(pill.target), (Text(pill.label),))
        if isinstance(node, Emoji) and not node.unicode:
            mxc = self.pills.emoticon(node)
            if mxc and mxc.startswith("mxc://"):
                return Link(_EMOTICON + mxc, (Text(f":{node.name}:"),))
        return self.text_node(node)

    def text_node(self, node: Node) -> Node:
        if isinstance(node, UserMention | ChannelMention):
            pill = self.pill(node)
            if pill is not None:
                return Text(pill.label)
            if isinstance(node, UserMention):
                return Text(f"@{node.name or node.user_id}")
            return Text(f"#{node.name or node.channel_id}")
        if isinstance(node, Broadcast):
            if self.pills.room(node):
                self.room = True
                return Text("@room")
            return Text(f"@{node.kind}")
        if isinstance(node, Emoji):
            return Text(node.unicode or f":{node.name}:")
        return node


def _html(node: Node) -> str:
    match node:
        case Text(text=t):
            return escape(t)
        case Bold(children=c):
            return f"<strong>{_join(c)}</strong>"
        case Italic(children=c):
            return f"<em>{_join(c)}</em>"
        case Strike(children=c):
            return f"<del>{_join(c)}</del>"
        case Code(text=t):
            return f"<code>{escape(t)}</code>"
        case Pre(text=t, language=lang):
            cls = f' class="language-{_SAFE_LANGUAGE.sub("", lang)}"' if lang else ""
            return f"<pre><code{cls}>{escape(t)}\n</code></pre>"
        case Link(url=url, children=c) if url.startswith(_EMOTICON):
            src, alt = escape(url.removeprefix(_EMOTICON)), _join(c)
            return f'<img data-mx-emoticon src="{src}" alt="{alt}" title="{alt}" height="32">'
        case Link(url=url, children=c):
            label = _join(c) if c else escape(url)
            if urlsplit(url).scheme.lower() not in LINK_SCHEMES:
                return label
            return f'<a href="{escape(url)}">{label}</a>'
        case LineBreak():
            return "<br>"
        case Quote(children=c):
            return f"<blockquote>{_join(c)}</blockquote>"
        case ListBlock(items=items, ordered=ordered):
            tag = "ol" if ordered else "ul"
            inner = "".join(f"<li>{_join(item)}</li>" for item in items)
            return f"<{tag}>{inner}</{tag}>"
        case Doc(children=c):
            return _join(c)
    # Mentions, broadcasts and emoji were resolved to text or links before rendering.
    raise TypeError(f"not a renderable node: {node!r}")


def _join(children: tuple[Node, ...]) -> str:
    return "".join(_html(c) for c in children)


def render(node: Node, pills: Pills = DEFAULT) -> Rendered:
    """Render a tree as a Matrix message body.

    Args:
        node: The tree (normalized or not).
        pills: Decides which mentions become pills and whether broadcasts notify the room.

    Returns:
        The plain ``body``, the HTML ``formatted_body`` (every text and attribute escaped,
        links only with the schemes the spec allows) and the mention metadata.
    """
    tree = normalize(node)
    resolver = _Resolver(pills)
    formatted = _html(transform(tree, resolver.html_node))
    body = plain_text(transform(tree, resolver.text_node))
    return Rendered(
        body=body,
        formatted_body=formatted,
        user_ids=tuple(resolver.user_ids),
        room=resolver.room,
    )
