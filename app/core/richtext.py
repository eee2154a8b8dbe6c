"""The neutral rich-text tree every message body travels as.

Each adapter converts its own markup to and from this tree (Slack mrkdwn and rich_text blocks,
Matrix HTML); the core only stores and forwards it. Nodes are immutable and hashable so trees
compare by value, which is what the round-trip tests rely on. The JSON form is versioned and
strict: it is stored in the outbox and sent between peer instances.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any


class RichTextError(ValueError):
    """A serialized tree that does not follow the schema."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Bold:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Italic:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Strike:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Code:
    text: str


@dataclass(frozen=True, slots=True)
class Pre:
    text: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    children: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class UserMention:
    """A person, by their id on the network the message came from."""

    user_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class ChannelMention:
    channel_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Broadcast:
    """@here, @channel or @everyone."""

    kind: str


@dataclass(frozen=True, slots=True)
class Emoji:
    name: str
    unicode: str | None = None


@dataclass(frozen=True, slots=True)
class LineBreak:
    pass


@dataclass(frozen=True, slots=True)
class Quote:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ListBlock:
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
Container = Bold | Italic | Strike | Link | Quote | Doc
BROADCASTS = ("here", "channel", "everyone")


def doc(*children: Node) -> Doc:
    return normalize(Doc(tuple(children)))


def text(value: str) -> Doc:
    return doc(Text(value))


# -- traversal --------------------------------------------------------------------------------


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, depth first, parents before children."""
    yield node
    if isinstance(node, Bold | Italic | Strike | Link | Quote | Doc):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, ListBlock):
        for item in node.items:
            for child in item:
                yield from walk(child)


def transform(node: Node, fn: Callable[[Node], Node]) -> Node:
    """Rebuild the tree bottom-up, replacing each node by ``fn(node)``.

    Used e.g. to rewrite every user mention for a target workspace.
    """
    if isinstance(node, Bold | Italic | Strike | Link | Quote | Doc):
        node = replace(node, children=tuple(transform(c, fn) for c in node.children))
    elif isinstance(node, ListBlock):
        node = replace(
            node, items=tuple(tuple(transform(c, fn) for c in item) for item in node.items)
        )
    return fn(node)


def mentions(node: Node) -> list[UserMention]:
    return [n for n in walk(node) if isinstance(n, UserMention)]


# -- normalization ----------------------------------------------------------------------------


def _merge(children: Iterable[Node]) -> tuple[Node, ...]:
    out: list[Node] = []
    for child in children:
        child = normalize(child)
        if isinstance(child, Text) and not child.text:
            continue
        if isinstance(child, Bold | Italic | Strike) and not child.children:
            continue
        if isinstance(child, Doc):
            out.extend(child.children)  # a document inside a document adds nothing
            continue
        if out and isinstance(child, Text) and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + child.text)
        elif out and type(child) in (Bold, Italic, Strike) and type(out[-1]) is type(child):
            prev = out[-1]
            out[-1] = type(child)(_merge(prev.children + child.children))  # type: ignore[union-attr]
        else:
            out.append(child)
    return tuple(out)


def normalize(node: Node) -> Node:
    """The canonical form: adjacent text merged, empty formatting dropped, nested docs flat."""
    if isinstance(node, Bold | Italic | Strike | Quote | Doc):
        return replace(node, children=_merge(node.children))
    if isinstance(node, Link):
        return replace(node, children=_merge(node.children))
    if isinstance(node, ListBlock):
        return replace(node, items=tuple(_merge(item) for item in node.items))
    return node


# -- plain text -------------------------------------------------------------------------------


def plain_text(node: Node) -> str:
    """A readable rendering without markup (notifications, fallbacks, search)."""
    match node:
        case Text(text=t) | Code(text=t):
            return t
        case Pre(text=t):
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
            inner = "".join(plain_text(c) for c in children)
            return "\n".join(f"> {line}" for line in inner.split("\n"))
        case ListBlock(items=items, ordered=ordered):
            return "\n".join(
                f"{i + 1 if ordered else '•'}{'.' if ordered else ''} "
                + "".join(plain_text(c) for c in item)
                for i, item in enumerate(items)
            )
        case Bold(children=c) | Italic(children=c) | Strike(children=c) | Doc(children=c):
            return "".join(plain_text(x) for x in c)
    raise TypeError(f"not a rich-text node: {node!r}")


# -- JSON -------------------------------------------------------------------------------------

VERSION = 1
_CONTAINERS: dict[str, type] = {"b": Bold, "i": Italic, "s": Strike, "q": Quote}


def _enc(node: Node) -> Any:
    match node:
        case Text(text=t):
            return t
        case Bold() | Italic() | Strike() | Quote():
            tag = {Bold: "b", Italic: "i", Strike: "s", Quote: "q"}[type(node)]
            return {"t": tag, "c": [_enc(c) for c in node.children]}
        case Code(text=t):
            return {"t": "code", "v": t}
        case Pre(text=t, language=lang):
            return {"t": "pre", "v": t, "lang": lang}
        case Link(url=url, children=c):
            return {"t": "a", "url": url, "c": [_enc(x) for x in c]}
        case UserMention(user_id=uid, name=name):
            return {"t": "user", "id": uid, "name": name}
        case ChannelMention(channel_id=cid, name=name):
            return {"t": "chan", "id": cid, "name": name}
        case Broadcast(kind=kind):
            return {"t": "bcast", "v": kind}
        case Emoji(name=name, unicode=uni):
            return {"t": "emoji", "v": name, "u": uni}
        case LineBreak():
            return {"t": "br"}
        case ListBlock(items=items, ordered=ordered):
            return {"t": "list", "o": ordered, "items": [[_enc(c) for c in it] for it in items]}
        case Doc(children=c):
            return {"t": "doc", "c": [_enc(x) for x in c]}
    raise TypeError(f"not a rich-text node: {node!r}")


def to_json(node: Node) -> dict[str, Any]:
    """The stable JSON form: ``{"v": 1, "doc": [...]}``."""
    root = node if isinstance(node, Doc) else Doc((node,))
    return {"v": VERSION, "doc": [_enc(c) for c in root.children]}


def _str(data: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise RichTextError(f"field {key!r} must be a string in {data!r:.80}")
    return value


def _children(data: dict[str, Any], key: str = "c") -> tuple[Node, ...]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise RichTextError(f"field {key!r} must be a list")
    return tuple(_dec(v) for v in value)


def _dec(data: Any, depth: int = 0) -> Node:
    if isinstance(data, str):
        return Text(data)
    if not isinstance(data, dict) or not isinstance(data.get("t"), str):
        raise RichTextError(f"not a rich-text node: {data!r:.80}")
    tag = data["t"]
    if tag in _CONTAINERS:
        return _CONTAINERS[tag](_children(data))
    if tag == "code":
        return Code(_str(data, "v"))
    if tag == "pre":
        return Pre(_str(data, "v"), _str(data, "lang", optional=True))
    if tag == "a":
        return Link(_str(data, "url"), _children(data))
    if tag == "user":
        return UserMention(_str(data, "id"), data.get("name") or "")
    if tag == "chan":
        return ChannelMention(_str(data, "id"), data.get("name") or "")
    if tag == "bcast":
        kind = _str(data, "v")
        if kind not in BROADCASTS:
            raise RichTextError(f"unknown broadcast {kind!r}")
        return Broadcast(kind)
    if tag == "emoji":
        return Emoji(_str(data, "v"), _str(data, "u", optional=True))
    if tag == "br":
        return LineBreak()
    if tag == "list":
        items = data.get("items")
        if not isinstance(items, list) or not all(isinstance(i, list) for i in items):
            raise RichTextError("list items must be lists")
        return ListBlock(tuple(tuple(_dec(c) for c in it) for it in items), bool(data.get("o")))
    if tag == "doc":
        return Doc(_children(data))
    raise RichTextError(f"unknown node type {tag!r}")


def from_json(data: Any) -> Doc:
    """Parse :func:`to_json` output; raises :class:`RichTextError` on anything else."""
    if data is None:
        return Doc()
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise RichTextError(f"unsupported rich-text version in {data!r:.80}")
    nodes = data.get("doc")
    if not isinstance(nodes, list):
        raise RichTextError("rich-text 'doc' must be a list")
    return Doc(tuple(_dec(n) for n in nodes))
