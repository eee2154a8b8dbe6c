"""What one delivery carries from the relay to a deliverer, typed, with one JSON form each.

The relay writes a payload into the outbox row (:meth:`to_json`) in the transaction that claims
the inbound event; the store reads it back when the row is claimed (:func:`payload_from_json`)
and hands it to the target network's deliverer. The JSON form is the one stored in the
``outbox.payload`` column since the first schema: rows written by earlier versions still read.

- :class:`PostPayload` — a new post (``Kind.POST``), files included (:class:`FileRef`, whose
  own JSON form is part of the post's);
- :class:`EditPayload` — the new body of an edited post (``Kind.EDIT``);
- :class:`DeletePayload` — a deleted post (``Kind.DELETE``);
- :class:`ReactionPayload` — the first reaction of an emoji added, or its last one removed
  (``Kind.REACT`` / ``Kind.UNREACT``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from app.core import richtext
from app.core.endpoints import Endpoint
from app.core.events import Author, FileRef, Kind


class PayloadError(ValueError):
    """A stored payload that does not match its delivery's kind."""


@dataclass(frozen=True, slots=True)
class PostPayload:
    source: Endpoint
    source_native_id: str
    author: Author
    body: richtext.Node
    files: tuple[FileRef, ...] = ()
    # The canonical post this one replies to, when it is a thread reply the map knows.
    thread_post_id: str | None = None
    broadcast: bool = False
    # A link to the parent when the reply's thread began outside the sync.
    parent_link: str | None = None
    # Whether the sync lets @here/@channel ping other workspaces.
    allow_broadcast: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "source_native_id": self.source_native_id,
            "author": self.author.to_json(),
            "body": richtext.to_json(self.body),
            "files": [f.to_json() for f in self.files],
            "thread_post_id": self.thread_post_id,
            "broadcast": self.broadcast,
            "parent_link": self.parent_link,
            "allow_broadcast": self.allow_broadcast,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PostPayload:
        return cls(
            source=_source(data),
            source_native_id=str(data.get("source_native_id") or ""),
            author=Author.from_json(data.get("author") or {}),
            body=richtext.from_json(data.get("body")),
            files=tuple(FileRef.from_json(f) for f in data.get("files") or ()),
            thread_post_id=data.get("thread_post_id") or None,
            broadcast=bool(data.get("broadcast")),
            parent_link=data.get("parent_link") or None,
            allow_broadcast=bool(data.get("allow_broadcast")),
        )


@dataclass(frozen=True, slots=True)
class EditPayload:
    source: Endpoint
    body: richtext.Node

    def to_json(self) -> dict[str, Any]:
        return {"source": str(self.source), "body": richtext.to_json(self.body)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EditPayload:
        return cls(source=_source(data), body=richtext.from_json(data.get("body")))


@dataclass(frozen=True, slots=True)
class DeletePayload:
    source: Endpoint

    def to_json(self) -> dict[str, Any]:
        return {"source": str(self.source)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeletePayload:
        return cls(source=_source(data))


@dataclass(frozen=True, slots=True)
class ReactionPayload:
    source: Endpoint
    emoji: str
    # Who reacted (their native id and name): the target reacts as their ghost, or names them
    # in a short reply when it lacks the emoji.
    actor: str = ""
    actor_name: str = ""
    # The message reacted to, at the source: a notice about a reaction that could not be
    # delivered answers it. Empty in rows written before it was kept.
    source_native_id: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {
            "source": str(self.source),
            "emoji": self.emoji,
            "actor": self.actor,
            "actor_name": self.actor_name,
        }
        if self.source_native_id:  # rows without it read back to the same JSON
            out["source_native_id"] = self.source_native_id
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReactionPayload:
        emoji = data.get("emoji")
        if not isinstance(emoji, str) or not emoji:
            raise PayloadError("a reaction payload names no emoji")
        return cls(
            source=_source(data),
            emoji=emoji,
            actor=str(data.get("actor") or ""),
            actor_name=str(data.get("actor_name") or ""),
            source_native_id=str(data.get("source_native_id") or ""),
        )


Payload = PostPayload | EditPayload | DeletePayload | ReactionPayload

_BY_KIND: dict[Kind, type[Payload]] = {
    Kind.POST: PostPayload,
    Kind.EDIT: EditPayload,
    Kind.DELETE: DeletePayload,
    Kind.REACT: ReactionPayload,
    Kind.UNREACT: ReactionPayload,
}

P = TypeVar("P", PostPayload, EditPayload, DeletePayload, ReactionPayload)


def payload_from_json(kind: Kind, data: Any) -> Payload:
    """The payload of a ``kind`` delivery from its stored JSON form.

    Raises:
        PayloadError: ``data`` is not a payload of that kind (not an object, no source, a
            malformed body).
    """
    if not isinstance(data, dict):
        raise PayloadError(f"a {kind} payload must be a JSON object")
    try:
        return _BY_KIND[kind].from_json(data)
    except PayloadError:
        raise
    except (KeyError, TypeError, ValueError) as exc:  # EndpointError, RichTextError included
        raise PayloadError(f"unreadable {kind} payload: {exc}") from exc


def expect(payload: Payload, kind: type[P]) -> P:
    """``payload`` as a ``kind``, for a deliverer that has matched on the delivery's kind.

    Raises:
        PayloadError: the delivery carries another kind of payload.
    """
    if not isinstance(payload, kind):
        raise PayloadError(f"expected a {kind.__name__}, got a {type(payload).__name__}")
    return payload


def thread_post_id(payload: Payload) -> str | None:
    """The canonical post ``payload`` replies to (posts only; their parent's copies are looked
    up with them)."""
    return payload.thread_post_id if isinstance(payload, PostPayload) else None


def _source(data: dict[str, Any]) -> Endpoint:
    source = data.get("source")
    if not isinstance(source, str):
        raise PayloadError("a payload names no source endpoint")
    return Endpoint.parse(source)
