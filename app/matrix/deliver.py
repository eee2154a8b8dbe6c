"""Applying deliveries to Matrix rooms: posts as ghosts, edits, redactions, reactions, files.

Every event is sent with the outbox delivery id as its client transaction id (files add a
suffix per file), so a retry after a timeout, a 5xx or a crash is idempotent on the homeserver.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from mautrix.api import Method, Path
from mautrix.appservice import IntentAPI
from mautrix.types import Event, EventID, EventType, RoomID
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.core import richtext
from app.core.authors import AuthorDirectory, reactor
from app.core.endpoints import Endpoint, Network
from app.core.events import Author, FileRef, Kind
from app.core.files import MAX_FILE_BYTES, FileSources
from app.core.payloads import EditPayload, PostPayload, ReactionPayload, expect
from app.core.ports import Delivered, DeliveryTask
from app.emoji import to_matrix_key
from app.errors import RemoteError
from app.matrix.event_content import as_content
from app.matrix.ghosts import Ghosts, ghost_display_name
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.portals import PortalError, Portals
from app.matrix.render import (
    MatrixRenderer,
    edit_content,
    media_msgtype,
    thread_relation,
)
from app.store.models_matrix import MatrixReaction

# (team, custom emoji name) -> its image on the media repository (app.bridge.custom_emoji).
CustomEmoji = Callable[[str, str], Awaitable[str | None]]

log = logging.getLogger("syncbot.matrix.deliver")


async def redact(intent: IntentAPI, room: RoomID, event_id: str, *, txn_id: str) -> None:
    """Redact with our own transaction id (mautrix's ``redact`` always makes a new one)."""
    path = Path.v3.rooms[room].redact[EventID(event_id)][txn_id]
    await intent.api.request(Method.PUT, path, {})


@dataclass(frozen=True, slots=True)
class History:
    """How a backfilled event differs from a live one: the appservice ``ts`` massaging (its
    Slack time, in ms) and a marker field in its content."""

    timestamp_ms: int
    mark: str


async def _send_event(
    intent: IntentAPI,
    room: RoomID,
    kind: EventType,
    content: dict[str, Any],
    txn_id: str,
    history: History | None,
) -> str:
    """Send one event; a backfilled one at its own time (``ts``) and marked."""
    if history is None:
        return str(await intent.send_message_event(room, kind, as_content(content), txn_id=txn_id))
    marked = as_content({**content, history.mark: True})
    return str(
        await intent.send_message_event(
            room, kind, marked, txn_id=txn_id, timestamp=history.timestamp_ms
        )
    )


# The bot's note showing a Matrix user's event as they edited its copy in Slack: its prefix, and
# the content field naming the event it shows (what a delete of that event looks for).
EDIT_NOTE_PREFIX = "Edited in Slack: "
EDIT_NOTE = "syncbot.edit_of"

# A part that is the timeline echo of a thread broadcast (edited along with the copy).
TIMELINE = "timeline:"


def _parts(task: DeliveryTask) -> tuple[str, ...]:
    return task.copy.parts if task.copy is not None else ()


class MatrixDeliverer:
    """The core's Deliverer for ``matrix:`` endpoints."""

    network = Network.MATRIX

    def __init__(
        self,
        homeserver: Homeserver,
        ghosts: Ghosts,
        authors: AuthorDirectory,
        renderer: MatrixRenderer,
        sessions: sessionmaker[Session],
        files: FileSources,
        *,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self._hs = homeserver
        self._ghosts = ghosts
        self._authors = authors
        self._renderer = renderer
        self._sessions = sessions
        self._files = files
        self._max_file_bytes = max_file_bytes
        # Set once the portals exist (they are built after the deliverer).
        self.portals: Portals | None = None
        # (team, name) -> mxc:// image of a Slack custom emoji; set by the Slack bridge.
        self.custom_emoji: CustomEmoji | None = None

    async def deliver(self, task: DeliveryTask) -> Delivered:
        channel = Portals.channel_waiting_at(task.target)
        if channel is not None:
            return await self._deliver_waiting(task, channel)
        return await self._deliver(task)

    async def _deliver_waiting(self, task: DeliveryTask, channel: Endpoint) -> Delivered:
        """A message that waited for its channel's portal: make the portal, then deliver there
        (a homeserver still down raises a retryable error: the message keeps waiting)."""
        if self.portals is None:
            raise RemoteError("no portals on this bridge", network="matrix", retryable=True)
        try:
            room = await self.portals.ensure(channel)
        except PortalError as exc:
            raise RemoteError(str(exc), network="matrix", code="no_portal") from exc
        target = Endpoint.matrix(room)
        copy = task.copy and replace(task.copy, endpoint=target)
        parent = task.parent_copy and replace(task.parent_copy, endpoint=target)
        result = await self._deliver(replace(task, target=target, copy=copy, parent_copy=parent))
        return replace(result, endpoint=target)

    async def _deliver(self, task: DeliveryTask) -> Delivered:
        match task.kind:
            case Kind.POST:
                return await self._post(task)
            case Kind.EDIT:
                await self._edit(task, self._require_copy(task))
            case Kind.DELETE:
                await self._delete(task, self._require_copy(task))
            case Kind.REACT:
                await self._react(task, self._require_copy(task))
            case Kind.UNREACT:
                await self._unreact(task, self._require_copy(task))
        return Delivered()

    def _require_copy(self, task: DeliveryTask) -> str:
        if task.copy is None:
            raise RemoteError(
                f"no copy of post {task.post_id} at {task.target}",
                network="matrix",
                code="no_copy",
                retryable=False,
            )
        return task.copy.native_id

    async def _post(self, task: DeliveryTask) -> Delivered:
        parent = task.parent_copy.native_id if task.parent_copy else None
        payload = expect(task.payload, PostPayload)
        return await self._post_to(RoomID(task.target.matrix_room), payload, parent, task.uid)

    async def post_history(
        self, room: str, payload: PostPayload, parent: str | None, *, uid: str, history: History
    ) -> Delivered:
        """A past post copied into ``room`` (backfill): the live post's events, rendering
        and parts, sent at the post's own time and marked. ``uid`` plays the delivery id
        (the transaction ids), so sending it again after a crash makes no second event."""
        return await self._post_to(RoomID(room), payload, parent, uid, history=history)

    async def _post_to(
        self,
        room: RoomID,
        payload: PostPayload,
        parent: str | None,
        uid: str,
        *,
        history: History | None = None,
    ) -> Delivered:
        source = payload.source
        author = await self._authors.resolve(source, payload.author)
        body = await self._named_mentions(payload.body, source)
        try:
            sender = await self._ghosts.ensure(source, author)
        except RemoteError as exc:
            if exc.retryable:
                raise
            # A ghost the homeserver refuses for good (a rejected localpart, a namespace
            # clash) must not hold the message back: the bot posts it under the author's name.
            log.warning("ghost unavailable; posting as the bot", extra={"error": str(exc)})
            sender = self._hs.ids.bot
            name = richtext.Bold((richtext.Text(ghost_display_name(author)),))
            body = richtext.doc(name, richtext.Text(": "), body)
        intent = self._hs.intent(sender)
        async with matrix_errors("join room"):
            await intent.ensure_joined(room, bot=self._hs.bot)
        if payload.thread_post_id and parent is None and payload.parent_link:
            # The parent never reached this room: say where the reply belongs.
            link = richtext.Link(payload.parent_link, (richtext.Text("a thread"),))
            note = richtext.Italic((richtext.Text("in reply to "), link))
            body = richtext.doc(note, richtext.LineBreak(), body)
        content = await self.render(body, source, allow_broadcast=payload.allow_broadcast)
        files = list(payload.files)
        events: list[str] = []
        if content["body"].strip() or not files:
            events.append(await self._send(intent, room, content, parent, uid, history))
        for index, ref in enumerate(files):
            events.append(
                await self._send_file(
                    intent, room, source, ref, parent, f"{uid}.f{index}", history
                )
            )
        parts = events[1:]
        if parent and payload.broadcast and content["body"].strip():
            # A reply also sent to the channel: Matrix clients show thread events in the thread
            # only, so the room's timeline gets it too, as a reply to the thread's root.
            timeline = {**content, "m.relates_to": {"m.in_reply_to": {"event_id": parent}}}
            async with matrix_errors("send message"):
                echo = await _send_event(
                    intent, room, EventType.ROOM_MESSAGE, timeline, f"{uid}.b", history
                )
            parts.append(f"{TIMELINE}{echo}")
        # The first event is the copy; the others are its parts, which edits and deletes follow.
        return Delivered(native_id=events[0], thread_native_id=parent, parts=tuple(parts))

    async def _named_mentions(self, body: richtext.Node, source: Endpoint) -> richtext.Node:
        """Give mentions of remote people their display names, which label the pills."""
        if source.network is not Network.SLACK:
            return body
        names: dict[str, str] = {}
        for mention in richtext.mentions(body):
            if mention.name or mention.user_id in names or mention.user_id.startswith("@"):
                continue
            ref = Author(name="", native_id=f"{source.slack_team}/{mention.user_id}")
            names[mention.user_id] = (await self._authors.resolve(source, ref)).name

        def named(node: richtext.Node) -> richtext.Node:
            if isinstance(node, richtext.UserMention) and not node.name and node.user_id in names:
                return richtext.UserMention(node.user_id, names[node.user_id])
            return node

        return richtext.transform(body, named) if names else body

    async def render(
        self, body: richtext.Node, source: Endpoint, *, allow_broadcast: bool = False
    ) -> dict[str, Any]:
        """A body as Matrix message content: the one rendering of posts, edits and backfilled
        history alike (a Slack workspace's custom emoji as their images included)."""
        return self._renderer.message(
            body,
            source=source,
            allow_broadcast=allow_broadcast,
            emoticons=await self._emoticons(source, body),
        )

    async def _send(
        self,
        intent: IntentAPI,
        room: RoomID,
        content: dict[str, Any],
        parent: str | None,
        txn_id: str,
        history: History | None = None,
    ) -> str:
        if parent:
            content = {**content, "m.relates_to": thread_relation(parent)}
        async with matrix_errors("send message"):
            return await _send_event(
                intent, room, EventType.ROOM_MESSAGE, content, txn_id, history
            )

    async def _send_file(
        self,
        intent: IntentAPI,
        room: RoomID,
        source: Endpoint,
        ref: FileRef,
        parent: str | None,
        txn_id: str,
        history: History | None = None,
    ) -> str:
        fetch = self._files.get(source.network)
        if fetch is None or (ref.size and ref.size > self._max_file_bytes):
            notice = {"msgtype": "m.notice", "body": f"(file {ref.name} could not be copied)"}
            return await self._send(intent, room, notice, parent, txn_id, history)
        chunks: list[bytes] = []
        size = 0
        async for chunk in fetch(source, ref):
            size += len(chunk)
            if size > self._max_file_bytes:
                raise RemoteError(f"{ref.name} is larger than the cap", network="matrix")
            chunks.append(chunk)
        data = b"".join(chunks)
        async with matrix_errors("upload file"):
            mxc = await intent.upload_media(data, mime_type=ref.mimetype, filename=ref.name)
        content: dict[str, Any] = {
            "msgtype": media_msgtype(ref.mimetype),
            "body": ref.title or ref.name,
            "filename": ref.name,
            "url": str(mxc),
            "info": {"mimetype": ref.mimetype, "size": len(data)},
        }
        return await self._send(intent, room, content, parent, txn_id, history)

    async def _edit(self, task: DeliveryTask, copy: str) -> None:
        room = RoomID(task.target.matrix_room)
        async with matrix_errors("fetch event"):
            original = await self._hs.bot.get_event(room, EventID(copy))
        sender = str(original.sender)
        edited = expect(task.payload, EditPayload)
        source = edited.source
        body = await self._named_mentions(edited.body, source)
        new = await self.render(body, source)
        if not self._hs.ids.is_ours(sender):
            await self._show_edit(room, original, new, task.uid)
            return
        timeline = [p.removeprefix(TIMELINE) for p in _parts(task) if p.startswith(TIMELINE)]
        async with matrix_errors("send edit"):
            intent = self._hs.intent(sender)
            await intent.send_message_event(
                room, EventType.ROOM_MESSAGE, as_content(edit_content(new, copy)), txn_id=task.uid
            )
            for index, event_id in enumerate(timeline):
                await intent.send_message_event(
                    room,
                    EventType.ROOM_MESSAGE,
                    as_content(edit_content(new, event_id)),
                    txn_id=f"{task.uid}.e{index}",
                )

    async def _show_edit(
        self, room: RoomID, original: Event, new: dict[str, Any], txn_id: str
    ) -> None:
        """A Matrix user's own event changed on the other side (they edited their copy posted
        with their Slack token): only they can edit it, so the bot answers it with the new
        text, in its thread if it has one."""
        prefix = EDIT_NOTE_PREFIX
        content: dict[str, Any] = {
            **new,
            "msgtype": "m.notice",
            "body": prefix + new["body"],
            EDIT_NOTE: str(original.event_id),
        }
        if "formatted_body" in new:
            content["formatted_body"] = f"<em>{prefix}</em>" + new["formatted_body"]
        raw = original.serialize()
        relates = (raw.get("content") or {}).get("m.relates_to") or {}
        if relates.get("rel_type") == "m.thread":
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": relates["event_id"],
                "is_falling_back": False,
                "m.in_reply_to": {"event_id": raw["event_id"]},
            }
        else:
            content["m.relates_to"] = {"m.in_reply_to": {"event_id": raw["event_id"]}}
        content["m.mentions"] = {}
        async with matrix_errors("send edit"):
            await self._hs.bot.send_message_event(
                room, EventType.ROOM_MESSAGE, as_content(content), txn_id=txn_id
            )

    async def _delete(self, task: DeliveryTask, copy: str) -> None:
        room = RoomID(task.target.matrix_room)
        # Redact as the ghost that sent it: a user may always redact their own events, while
        # the bot needs power in rooms it did not create.
        async with matrix_errors("fetch event"):
            original = await self._hs.bot.get_event(room, EventID(copy))
        sender = str(original.sender)
        ours = self._hs.ids.is_ours(sender)
        # A Matrix user's own event (they deleted their copy posted with their Slack token):
        # the bot cannot act as them, but as the portal's creator it may redact.
        intent = self._hs.intent(sender if ours else self._hs.ids.bot)
        notes = [] if ours else await self._edit_notes(room, original)
        async with matrix_errors("redact"):
            # Every event of the copy (a text, its files, its timeline echo), each under its
            # own txn id.
            for index, part in enumerate(_parts(task)):
                event_id = part.removeprefix(TIMELINE)
                await redact(intent, room, event_id, txn_id=f"{task.uid}.p{index}")
            # The bot's notes carrying the text of their Slack edits go with it: a delete
            # removes every part of every copy.
            for index, note in enumerate(notes):
                await redact(intent, room, note, txn_id=f"{task.uid}.n{index}")
            await redact(intent, room, copy, txn_id=task.uid)

    async def _edit_notes(self, room: RoomID, original: Event) -> list[str]:
        """The bot's ``Edited in Slack`` notes answering ``original`` (see :meth:`_show_edit`).

        They are not relations of it (a reply is not one), so the bot's own messages are read
        back from the newest to the original's time, which bounds the search exactly.
        """
        target = str(original.event_id)
        since = original.timestamp
        query: dict[str, Any] = {
            "dir": "b",
            "limit": "100",
            "filter": json.dumps({"senders": [self._hs.ids.bot], "types": ["m.room.message"]}),
        }
        found: list[str] = []
        async with matrix_errors("read edit notes"):
            while True:
                page = await self._hs.bot.api.request(
                    Method.GET, Path.v3.rooms[room].messages, query_params=query
                )
                chunk = page.get("chunk") or []
                for event in chunk:
                    content = event.get("content") or {}
                    reply = (content.get("m.relates_to") or {}).get("m.in_reply_to") or {}
                    if content.get(EDIT_NOTE) == target or (
                        reply.get("event_id") == target
                        and str(content.get("body", "")).startswith(EDIT_NOTE_PREFIX)
                    ):
                        found.append(str(event["event_id"]))
                end = page.get("end")
                if not chunk or not end or chunk[-1].get("origin_server_ts", 0) < since:
                    return found
                query["from"] = end

    async def _reactor(self, reaction: ReactionPayload) -> str:
        """The ghost of the person who reacted (the bot when the homeserver refuses it)."""
        source = reaction.source
        if source.network is Network.MATRIX:
            return self._hs.ids.bot
        who = reactor(source, reaction.actor, reaction.actor_name)
        try:
            return await self._ghosts.ensure(source, await self._authors.resolve(source, who))
        except RemoteError as exc:
            if exc.retryable:
                raise
            log.warning("ghost unavailable; reacting as the bot", extra={"error": str(exc)})
            return self._hs.ids.bot

    async def _emoticons(self, source: Endpoint, body: richtext.Node) -> dict[str, str]:
        """The images of the Slack custom emoji ``body`` names (none from other networks)."""
        if self.custom_emoji is None or source.network is not Network.SLACK:
            return {}
        names: set[str] = set()

        def collect(node: richtext.Node) -> richtext.Node:
            if isinstance(node, richtext.Emoji) and not node.unicode:
                if to_matrix_key(node.name).startswith(":"):
                    names.add(node.name)
            return node

        richtext.transform(body, collect)
        found = {}
        for name in sorted(names):
            mxc = await self.custom_emoji(source.slack_team, name)
            if mxc:
                found[name] = mxc
        return found

    async def _reaction_key(self, reaction: ReactionPayload) -> tuple[str, str | None]:
        """The Matrix key of a reaction, and the shortcode when it is a custom emoji's image."""
        key = to_matrix_key(reaction.emoji)
        source = reaction.source
        if key.startswith(":") and self.custom_emoji and source.network is Network.SLACK:
            mxc = await self.custom_emoji(source.slack_team, reaction.emoji)
            if mxc:
                return mxc, f":{reaction.emoji}:"
        return key, None

    async def _react(self, task: DeliveryTask, copy: str) -> None:
        reaction = expect(task.payload, ReactionPayload)
        await self._annotate(RoomID(task.target.matrix_room), copy, reaction, task.uid)

    async def react_history(
        self, room: str, event_id: str, reaction: ReactionPayload, *, uid: str, history: History
    ) -> None:
        """A past reaction on a backfilled post: the live reaction's key and reactor, at its
        post's time and marked (``uid`` is its transaction id)."""
        await self._annotate(RoomID(room), event_id, reaction, uid, history)

    async def _annotate(
        self,
        room: RoomID,
        copy: str,
        reaction: ReactionPayload,
        txn_id: str,
        history: History | None = None,
    ) -> None:
        key, shortcode = await self._reaction_key(reaction)
        content: dict[str, Any] = {
            "m.relates_to": {"rel_type": "m.annotation", "event_id": copy, "key": key}
        }
        if shortcode:
            # What clients show for an image reaction (mautrix bridges' field).
            content["com.beeper.reaction.shortcode"] = shortcode
        sender = await self._reactor(reaction)
        intent = self._hs.intent(sender)
        async with matrix_errors("send reaction"):
            if sender != self._hs.ids.bot:
                await intent.ensure_joined(room, bot=self._hs.bot)
            event_id = await _send_event(
                intent, room, EventType.REACTION, content, txn_id, history
            )
        await asyncio.to_thread(self._remember, str(event_id), room, copy, key, sender)

    async def _unreact(self, task: DeliveryTask, copy: str) -> None:
        room = RoomID(task.target.matrix_room)
        key, _shortcode = await self._reaction_key(expect(task.payload, ReactionPayload))
        # The last reactor elsewhere is gone: every reaction of ours with that key goes (one
        # from a live reaction; one per past reactor on a backfilled post).
        for index, (event_id, sender) in enumerate(
            await asyncio.to_thread(self._ours, room, copy, key)
        ):
            txn_id = task.uid if index == 0 else f"{task.uid}.{index}"
            async with matrix_errors("redact reaction"):
                await redact(self._hs.intent(sender), room, event_id, txn_id=txn_id)
            await asyncio.to_thread(self._forget, event_id)

    def _remember(self, event_id: str, room: str, target: str, key: str, sender: str) -> None:
        try:
            with self._sessions() as s, s.begin():
                if s.get(MatrixReaction, event_id) is None:
                    s.add(
                        MatrixReaction(
                            event_id=event_id,
                            room_id=room,
                            target_event_id=target,
                            key=key,
                            sender=sender,
                            ours=True,
                        )
                    )
        except IntegrityError:
            # The same reaction recorded by an earlier attempt under the txn id's event.
            pass

    def _ours(self, room: str, target: str, key: str) -> list[tuple[str, str]]:
        with self._sessions() as s:
            rows = s.execute(
                select(MatrixReaction.event_id, MatrixReaction.sender)
                .where(
                    MatrixReaction.room_id == room,
                    MatrixReaction.target_event_id == target,
                    MatrixReaction.key == key,
                    MatrixReaction.ours.is_(True),
                )
                .order_by(MatrixReaction.event_id)
            ).all()
        return [(str(r.event_id), str(r.sender)) for r in rows]

    def _forget(self, event_id: str) -> None:
        with self._sessions() as s, s.begin():
            s.execute(delete(MatrixReaction).where(MatrixReaction.event_id == event_id))
