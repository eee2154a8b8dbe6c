"""The neutral rich-text tree every message body travels as.

Each adapter converts its own markup to and from this tree (Slack mrkdwn and rich_text blocks,
Matrix HTML); the core only stores, rewrites and forwards it. Nodes are immutable and hashable
so trees compare by value, which is what the round-trip tests rely on. :func:`normalize` gives
the canonical form converters are compared in. The JSON form is versioned and strict: it is
stored in the outbox and sent between peer instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from app.errors import SyncbotError

__all__ = [
    "BLOCKS",
    "BROADCASTS",
    "MAX_DEPTH",
    "VERSION",
    "Bold",
    "Broadcast",
    "ChannelMention",
    "Code",
    "Doc",
    "Emoji",
    "Italic",
    "LineBreak",
    "Link",
    "ListBlock",
    "Node",
    "Pre",
    "Quote",
    "RichTextError",
    "Strike",
    "Text",
    "UserMention",
    "doc",
    "from_json",
    "mentions",
    "normalize",
    "plain_text",
    "text",
    "to_json",
    "transform",
    "walk",
]

BROADCASTS = ("here", "channel", "everyone")
VERSION = 1
# Deeper trees are refused when decoding and flattened by parsers: recursion stays bounded.
MAX_DEPTH = 48


class RichTextError(SyncbotError, ValueError):
    """A serialized tree that does not follow the schema."""


@dataclass(frozen=True, slots=True)
class Text:
    """Plain text; ``\\n`` inside it becomes :class:`LineBreak` nodes on normalization."""

    text: str


@dataclass(frozen=True, slots=True)
class Bold:
    """Strong emphasis around inline children."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Italic:
    """Emphasis around inline children."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Strike:
    """Struck-through inline children."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Code:
    """Inline code: verbatim text, no formatting inside."""

    text: str


@dataclass(frozen=True, slots=True)
class Pre:
    """A code block, optionally tagged with its language."""

    text: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A hyperlink; without children its label is the URL itself."""

    url: str
    children: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class UserMention:
    """A person, by their opaque id on the network the message came from.

    ``user_id`` is native to the source endpoint (Slack ``U123`` in that workspace, Matrix
    ``@alice:hs``); the relay rewrites it per target. ``name`` is a display name, possibly empty.
    """

    user_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class ChannelMention:
    """A channel or room, by its native id on the source network, plus its name if known."""

    channel_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """``@here``, ``@channel`` or ``@everyone`` (one of :data:`BROADCASTS`)."""

    kind: str

    def __post_init__(self) -> None:
        if self.kind not in BROADCASTS:
            raise RichTextError(f"unknown broadcast {self.kind!r}")


@dataclass(frozen=True, slots=True)
class Emoji:
    """An emoji by shortcode name (``thumbsup``), with its unicode form when known."""

    name: str
    unicode: str | None = None


@dataclass(frozen=True, slots=True)
class LineBreak:
    """A hard line break inside running text."""


@dataclass(frozen=True, slots=True)
class Quote:
    """A block quote."""

    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ListBlock:
    """A bulleted or numbered list; each item is a sequence of nodes (may nest lists)."""

    items: tuple[tuple[Node, ...], ...]
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class Doc:
    """The root of a message body."""

    children: tuple[Node, ...] = ()


Node = (
    Text
    | Bold
    | Italic
    | Strike
    | Code
    | Pre
    | Link
    | UserMention
    | ChannelMention
    | Broadcast
    | Emoji
    | LineBreak
    | Quote
    | ListBlock
    | Doc
)
# Nodes that occupy whole lines: line breaks next to them carry no meaning.
BLOCKS = (Quote, ListBlock, Pre)
_INLINE_CONTAINERS = (Bold, Italic, Strike)
_PARENTS = (Bold, Italic, Strike, Link, Quote, Doc)


def doc(*children: Node) -> Doc:
    """Build a normalized document from nodes.

    Args:
        *children: The top-level nodes.

    Returns:
        The document in canonical form.
    """
    result = normalize(Doc(tuple(children)))
    assert isinstance(result, Doc)
    return result


def text(value: str) -> Doc:
    """A document of plain text (line breaks included)."""
    return doc(Text(value))


# -- traversal --------------------------------------------------------------------------------


def walk(node: Node) -> Iterator[Node]:
    """Yield every node of the tree, depth first, parents before children."""
    yield node
    if isinstance(node, _PARENTS):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, ListBlock):
        for item in node.items:
            for child in item:
                yield from walk(child)


def transform(node: Node, fn: Callable[[Node], Node]) -> Node:
    """Rebuild the tree bottom-up, replacing each node by ``fn(node)``.

    Used e.g. to rewrite every user mention for a target workspace.

    Args:
        node: The root.
        fn: Called once per node after its children were rebuilt; returns the replacement
            (the node itself to keep it).

    Returns:
        The rebuilt tree (not normalized: ``fn`` may introduce empty or adjacent text).
    """
    if isinstance(node, _PARENTS):
        node = replace(node, children=tuple(transform(c, fn) for c in node.children))
    elif isinstance(node, ListBlock):
        node = replace(
            node, items=tuple(tuple(transform(c, fn) for c in item) for item in node.items)
        )
    return fn(node)


def mentions(node: Node) -> list[UserMention]:
    """Every user mention in document order (duplicates kept)."""
    return [n for n in walk(node) if isinstance(n, UserMention)]


# -- normalization ----------------------------------------------------------------------------


def _split_lines(value: str) -> Iterator[Node]:
    for i, part in enumerate(value.split("\n")):
        if i:
            yield LineBreak()
        if part:
            yield Text(part)


def _is_empty(node: Node) -> bool:
    if isinstance(node, Text):
        return not node.text
    if isinstance(node, (*_INLINE_CONTAINERS, Quote)):
        return not node.children
    if isinstance(node, ListBlock):
        return not node.items
    return False


def _hoist_breaks(node: Bold | Italic | Strike) -> list[Node]:
    # A line break carries no style: breaks at the edges of a format move outside it.
    inner = list(node.children)
    lead: list[Node] = []
    trail: list[Node] = []
    while inner and isinstance(inner[0], LineBreak):
        lead.append(inner.pop(0))
    while inner and isinstance(inner[-1], LineBreak):
        trail.append(inner.pop())
    return [*lead, *([type(node)(tuple(inner))] if inner else []), *trail]


def _merge(children: Iterable[Node], *, block: bool) -> tuple[Node, ...]:
    flat: list[Node] = []
    for child in children:
        if isinstance(child, Text):
            flat.extend(_split_lines(child.text))
            continue
        if isinstance(child, Doc):
            # A document inside a document adds nothing; its edge breaks belong to the parent.
            flat.extend(_merge(child.children, block=False))
            continue
        child = normalize(child)
        if isinstance(child, _INLINE_CONTAINERS):
            flat.extend(_hoist_breaks(child))
        elif not _is_empty(child):
            flat.append(child)
    out: list[Node] = []
    for child in flat:
        prev = out[-1] if out else None
        if isinstance(child, LineBreak) and isinstance(prev, BLOCKS):
            continue
        if isinstance(child, BLOCKS):
            while out and isinstance(out[-1], LineBreak):
                out.pop()
        if isinstance(child, Text) and isinstance(prev, Text):
            out[-1] = Text(prev.text + child.text)
        elif isinstance(child, _INLINE_CONTAINERS) and type(prev) is type(child):
            assert isinstance(prev, _INLINE_CONTAINERS)
            out[-1] = type(child)(_merge(prev.children + child.children, block=False))
        else:
            out.append(child)
    if block:  # blocks start and end lines: breaks at their edges are redundant
        while out and isinstance(out[-1], LineBreak):
            out.pop()
        while out and isinstance(out[0], LineBreak):
            out.pop(0)
    return tuple(out)


def normalize(node: Node) -> Node:
    """Return the canonical form of a tree.

    Text is split at newlines into :class:`LineBreak` nodes and adjacent text merged; empty
    text, formatting, quotes and lists are dropped; adjacent runs of the same formatting are
    merged; nested documents are flattened; line breaks at the edges of bold, italic or strike
    move outside it; line breaks at the edges of a document, quote or list item and next to a
    block (quote, list, code block) are dropped; a link labelled with its own URL loses the
    label. Idempotent.
    """
    if isinstance(node, Text):
        parts = tuple(_split_lines(node.text))
        return node if len(parts) == 1 and isinstance(parts[0], Text) else Doc(parts)
    if isinstance(node, _INLINE_CONTAINERS):
        return replace(node, children=_merge(node.children, block=False))
    if isinstance(node, Quote | Doc):
        return replace(node, children=_merge(node.children, block=True))
    if isinstance(node, Link):
        children = _merge(node.children, block=False)
        if children == (Text(node.url),):
            children = ()
        return replace(node, children=children)
    if isinstance(node, ListBlock):
        return replace(node, items=tuple(_merge(item, block=True) for item in node.items))
    return node


# -- plain text -------------------------------------------------------------------------------


def _plain_list(items: tuple[tuple[Node, ...], ...], ordered: bool) -> str:
    lines = []
    for i, item in enumerate(items):
        marker = f"{i + 1}. " if ordered else "• "
        inner = "".join(plain_text(c) for c in item).split("\n")
        lines.append(marker + inner[0])
        lines.extend("   " + line for line in inner[1:])
    return "\n".join(lines)


def _join_plain(children: tuple[Node, ...]) -> str:
    # Blocks occupy whole lines, so they get line breaks from their neighbours.
    out = ""
    for i, child in enumerate(children):
        part = plain_text(child)
        if isinstance(child, BLOCKS):
            if out and not out.endswith("\n"):
                out += "\n"
            part += "\n" if i < len(children) - 1 else ""
        out += part
    return out


def plain_text(node: Node) -> str:
    """Render a readable text without markup (notifications, fallbacks, search).

    Mentions render as ``@name`` / ``#name`` (falling back to the id), links as
    ``label (url)``, quotes with ``> `` prefixes and lists with bullets or numbers.
    """
    match node:
        case Text(text=t) | Code(text=t) | Pre(text=t):
            return t
        case Link(url=url, children=children):
            label = "".join(plain_text(c) for c in children)
            return f"{label} ({url})" if label and label != url else url
        case UserMention(user_id=uid, name=name):
            return f"@{name or uid}"
        case ChannelMention(channel_id=cid, name=name):
            return f"#{name or cid}"
        case Broadcast(kind=kind):
            return f"@{kind}"
        case Emoji(name=name, unicode=uni):
            return uni or f":{name}:"
        case LineBreak():
            return "\n"
        case Quote(children=children):
            return "\n".join(f"> {line}" for line in _join_plain(children).split("\n"))
        case ListBlock(items=items, ordered=ordered):
            return _plain_list(items, ordered)
        case Doc(children=children):
            return _join_plain(children)
        case Bold(children=c) | Italic(children=c) | Strike(children=c):
            return "".join(plain_text(x) for x in c)
    raise TypeError(f"not a rich-text node: {node!r}")


# -- JSON -------------------------------------------------------------------------------------

_TAGS: dict[type, str] = {Bold: "b", Italic: "i", Strike: "s", Quote: "q"}
_CONTAINERS: dict[str, type[Bold | Italic | Strike | Quote]] = {
    "b": Bold,
    "i": Italic,
    "s": Strike,
    "q": Quote,
}


def _enc(node: Node) -> Any:
    match node:
        case Text(text=t):
            return t
        case Bold() | Italic() | Strike() | Quote():
            return {"t": _TAGS[type(node)], "c": [_enc(c) for c in node.children]}
        case Code(text=t):
            return {"t": "code", "v": t}
        case Pre(text=t, language=lang):
            return {"t": "pre", "v": t} | ({"lang": lang} if lang is not None else {})
        case Link(url=url, children=c):
            return {"t": "a", "url": url, "c": [_enc(x) for x in c]}
        case UserMention(user_id=uid, name=name):
            return {"t": "user", "id": uid, "name": name}
        case ChannelMention(channel_id=cid, name=name):
            return {"t": "chan", "id": cid, "name": name}
        case Broadcast(kind=kind):
            return {"t": "bcast", "v": kind}
        case Emoji(name=name, unicode=uni):
            return {"t": "emoji", "v": name} | ({"u": uni} if uni is not None else {})
        case LineBreak():
            return {"t": "br"}
        case ListBlock(items=items, ordered=ordered):
            return {"t": "list", "o": ordered, "items": [[_enc(c) for c in it] for it in items]}
        case Doc(children=c):
            return {"t": "doc", "c": [_enc(x) for x in c]}
    raise TypeError(f"not a rich-text node: {node!r}")


def to_json(node: Node) -> dict[str, Any]:
    """Serialize a tree to its stable JSON form.

    Args:
        node: A document or any node (wrapped in a document).

    Returns:
        ``{"v": 1, "doc": [...]}``: plain text is a JSON string, every other node an object
        with a short type tag ``t``. Only lists, dicts, strings and booleans appear.
    """
    root = node if isinstance(node, Doc) else Doc((node,))
    return {"v": VERSION, "doc": [_enc(c) for c in root.children]}


_FIELDS: dict[str, frozenset[str]] = {
    "b": frozenset({"t", "c"}),
    "i": frozenset({"t", "c"}),
    "s": frozenset({"t", "c"}),
    "q": frozenset({"t", "c"}),
    "code": frozenset({"t", "v"}),
    "pre": frozenset({"t", "v", "lang"}),
    "a": frozenset({"t", "url", "c"}),
    "user": frozenset({"t", "id", "name"}),
    "chan": frozenset({"t", "id", "name"}),
    "bcast": frozenset({"t", "v"}),
    "emoji": frozenset({"t", "v", "u"}),
    "br": frozenset({"t"}),
    "list": frozenset({"t", "o", "items"}),
    "doc": frozenset({"t", "c"}),
}


def _str(data: dict[str, Any], key: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise RichTextError(f"{data['t']!r} node: field {key!r} must be a string")
    return value


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise RichTextError(f"{data['t']!r} node: field {key!r} must be a string or null")
    return value


def _nodes(value: Any, depth: int, what: str) -> tuple[Node, ...]:
    if not isinstance(value, list):
        raise RichTextError(f"{what} must be a list")
    return tuple(_dec(v, depth + 1) for v in value)


def _dec(data: Any, depth: int) -> Node:
    if isinstance(data, str):
        return Text(data)
    if depth > MAX_DEPTH:
        raise RichTextError(f"rich text nested deeper than {MAX_DEPTH} levels")
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise RichTextError(f"not a rich-text node: {data!r:.80}")
    tag = data["t"]
    fields = _FIELDS.get(tag)
    if fields is None:
        raise RichTextError(f"unknown node type {tag!r}")
    if unknown := set(data) - fields:
        raise RichTextError(f"{tag!r} node: unknown fields {sorted(unknown)}")
    if tag in _CONTAINERS:
        return _CONTAINERS[tag](_nodes(data.get("c", []), depth, f"{tag!r} children"))
    if tag == "doc":
        return Doc(_nodes(data.get("c", []), depth, "'doc' children"))
    if tag == "a":
        return Link(_str(data, "url"), _nodes(data.get("c", []), depth, "'a' children"))
    if tag == "code":
        return Code(_str(data, "v"))
    if tag == "pre":
        return Pre(_str(data, "v"), _opt_str(data, "lang"))
    if tag == "user":
        return UserMention(_str(data, "id"), _str(data, "name", default=""))
    if tag == "chan":
        return ChannelMention(_str(data, "id"), _str(data, "name", default=""))
    if tag == "bcast":
        return Broadcast(_str(data, "v"))
    if tag == "emoji":
        return Emoji(_str(data, "v"), _opt_str(data, "u"))
    if tag == "br":
        return LineBreak()
    ordered = data.get("o", False)
    if not isinstance(ordered, bool):
        raise RichTextError("'list' node: field 'o' must be a boolean")
    items = data.get("items")
    if not isinstance(items, list):
        raise RichTextError("'list' node: field 'items' must be a list")
    return ListBlock(tuple(_nodes(it, depth, "a list item") for it in items), ordered)


def from_json(data: Any) -> Doc:
    """Parse the output of :func:`to_json`.

    Args:
        data: The decoded JSON value; ``None`` (no body) gives an empty document.

    Returns:
        The document, exactly as serialized (normalize it if it came from elsewhere).

    Raises:
        RichTextError: On an unknown version, node type or field, a field of the wrong type,
            or nesting deeper than :data:`MAX_DEPTH`.
    """
    if data is None:
        return Doc()
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise RichTextError(f"unsupported rich-text version in {data!r:.80}")
    if unknown := set(data) - {"v", "doc"}:
        raise RichTextError(f"rich text: unknown fields {sorted(unknown)}")
    return Doc(_nodes(data.get("doc"), 0, "rich-text 'doc'"))
