"""Applying deliveries to Slack channels: post as the author, edit, delete, react, files.

Slack has no idempotency key, so every post carries its delivery id in message ``metadata``;
when an earlier attempt's outcome is unknown (timeout, dropped connection, 5xx, a crashed
worker) we look for that id in the channel before posting again.

Double puppeting: a Matrix author who logged in with their own Slack user token
(:mod:`app.slack.puppets`) is posted with it, so the message is theirs in Slack, not the bot's
under their name; its copy is marked ``puppet:<slack user>`` so edits and deletes use the same
token. A token Slack no longer accepts is forgotten, the message goes out through the bot as
for anyone else, and the ``on_puppet_lost`` listeners tell the author.

In a person's own DMs, which the bot cannot see, their reactions and files are made with their
token too (:mod:`app.slack.as_person`); what Slack echoes back of them is recognised through
:class:`~app.store.echoes.ExpectedEchoes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from app.core.authors import AuthorDirectory, reactor
from app.core.endpoints import Endpoint, Network
from app.core.events import Author, FileRef, Kind
from app.core.payloads import EditPayload, PostPayload, ReactionPayload, expect
from app.core.ports import Delivered, DeliveryTask
from app.errors import RemoteError, SyncbotError
from app.slack.as_person import (
    UNSEEN_CODES,
    BotBlindSpots,
    file_echo,
    not_logged_in,
    reaction_echo,
    refused,
)
from app.slack.files import FileCopier, OnRefused
from app.slack.puppets import PuppetClient, SlackPuppets
from app.slack.render import SlackRenderer
from app.slack.webapi import SlackApi
from app.slack.workspaces import Workspaces
from app.store.echoes import ExpectedEchoes

log = logging.getLogger("syncbot.slack.deliver")

METADATA_EVENT = "syncbot_delivery"
# The ``event_payload`` key holding :func:`text_mark` of the text we last wrote to a message.
TEXT_MARK = "text"
USERNAME_MAX = 80
# A copy posted with its author's own user token: ``puppet:<slack user id>``.
PUPPET_PART = "puppet"
# Told when an author's user token stopped working (with Slack's error code); their message
# went out through the bot instead.
PuppetLost = Callable[[DeliveryTask, str], Awaitable[None]]


def _puppet_mark(message: dict[str, Any], puppet: PuppetClient | None) -> tuple[str, ...]:
    """The copy's puppet part when ``message`` was posted with the author's own token."""
    if puppet is None or message.get("bot_id"):
        return ()
    user = puppet.puppet.slack_user_id
    return (f"{PUPPET_PART}:{user}",) if message.get("user") == user else ()


def text_mark(text: str) -> str:
    """A short fingerprint of a message text we write, kept in its metadata. A person's own
    copy (posted with their token) carries our metadata for good, so only this tells our
    change of it (text matches the mark) from their later edit in Slack (it does not)."""
    return hashlib.sha256(text.strip().encode()).hexdigest()[:16]


def display_name(author: Author) -> str:
    name = author.name or "someone"
    label = f"{name} ({author.origin})" if author.origin else name
    return label[:USERNAME_MAX]


class SlackDeliverer:
    """The core's Deliverer for ``slack:`` endpoints."""

    network = Network.SLACK

    def __init__(
        self,
        workspaces: Workspaces,
        authors: AuthorDirectory,
        renderer: SlackRenderer,
        files: FileCopier,
        *,
        puppets: SlackPuppets | None = None,
        echoes: ExpectedEchoes | None = None,
    ) -> None:
        self._workspaces = workspaces
        self._authors = authors
        self._renderer = renderer
        self._files = files
        self._puppets = puppets
        self._echoes = echoes
        self._blind = BotBlindSpots()
        self.on_puppet_lost: list[PuppetLost] = []

    async def deliver(self, task: DeliveryTask) -> Delivered:
        team, channel = task.target.slack_team, task.target.slack_channel
        api = self._workspaces.api(team)
        try:
            return await self._apply(api, team, channel, task)
        except RemoteError as exc:
            if exc.code != "not_in_channel":
                raise
            # The bot was removed from the channel. A public channel it may join again by
            # itself; a private one needs a member to invite it back, so the channel's
            # deliveries are held (kept, in order) until the bot is back.
            if not await self._rejoin(api, channel):
                raise RemoteError(
                    f"the bot is not in channel {channel} of {team}; invite it back",
                    network="slack",
                    code="not_in_channel",
                    hold=True,
                    # A post may have gone out before a later part (a file) failed.
                    outcome_unknown=task.kind is Kind.POST,
                ) from exc
            log.info("rejoined a channel the bot was removed from", extra={"target": channel})
            return await self._apply(api, team, channel, replace(task, outcome_unknown=True))

    async def _rejoin(self, api: SlackApi, channel: str) -> bool:
        try:
            await api.call("conversations.join", channel=channel)
        except RemoteError as exc:
            if exc.retryable:
                raise
            log.warning(
                "cannot rejoin channel", extra={"target": channel, "error": exc.code or str(exc)}
            )
            return False
        return True

    async def _apply(
        self, api: SlackApi, team: str, channel: str, task: DeliveryTask
    ) -> Delivered:
        match task.kind:
            case Kind.POST:
                return await self._post(api, team, channel, task)
            case Kind.EDIT:
                copy = self._require_copy(task)
                edited = expect(task.payload, EditPayload)
                text = await self._renderer.render(
                    edited.body,
                    source=edited.source,
                    target_team=team,
                    target_channel=channel,
                    allow_broadcast=False,
                )
                owner = await self._copy_owner(team, task)
                params: dict[str, Any] = {"channel": channel, "ts": copy, "text": text or " "}
                if owner is not None:
                    # Their copy: mark what we write now (so its echo is known as ours), and
                    # drop the blocks their own edit in Slack left, which Slack would keep
                    # and show instead of the text (https://docs.slack.dev/reference/methods/chat.update).
                    params["blocks"] = []
                    params["metadata"] = {
                        "event_type": METADATA_EVENT,
                        "event_payload": {
                            "delivery": task.uid,
                            "post": task.post_id or "",
                            TEXT_MARK: text_mark(params["text"]),
                        },
                    }
                await self._as_owner(owner, api, task, "chat.update", params)
            case Kind.DELETE:
                await self._delete(api, channel, task, await self._copy_owner(team, task))
            case Kind.REACT | Kind.UNREACT:
                await self._reaction(api, team, channel, task)
        return Delivered()

    def _require_copy(self, task: DeliveryTask) -> str:
        if task.copy is None:
            # The post never reached this channel (its own delivery died): nothing to change.
            raise RemoteError(
                f"no copy of post {task.post_id} at {task.target}",
                network="slack",
                code="no_copy",
                retryable=False,
            )
        return task.copy.native_id

    async def _post(self, api: SlackApi, team: str, channel: str, task: DeliveryTask) -> Delivered:
        payload = expect(task.payload, PostPayload)
        thread_ts = task.parent_copy.native_id if task.parent_copy else None
        source = payload.source
        files = list(payload.files)
        puppet = await self._author_puppet(team, payload)
        if task.outcome_unknown:
            landed = await self._find_existing(api, channel, task, thread_ts, puppet)
            if landed:
                found = str(landed["ts"])
                log.info("earlier attempt had landed", extra={"delivery": task.uid})
                parts: list[str] = []
                if files:
                    # The files an earlier attempt copied are in the thread; copy the rest.
                    mine = bool(_puppet_mark(landed, puppet))
                    person = await self._uploader(api, channel, puppet, mine)
                    earlier = await self._file_shares(
                        person.api if person else api, channel, thread_ts or found, found, person
                    )
                    parts = list(earlier.values())
                    parts += await self._copy_files(
                        files, source, api, channel, thread_ts or found, frozenset(earlier), person
                    )
                return Delivered(
                    native_id=found,
                    thread_native_id=thread_ts,
                    parts=_puppet_mark(landed, puppet) + tuple(f"file:{p}" for p in parts),
                )
        author = await self._authors.resolve(source, payload.author)
        text = await self._renderer.render(
            payload.body,
            source=source,
            target_team=team,
            target_channel=channel,
            allow_broadcast=payload.allow_broadcast,
        )
        replying = payload.thread_post_id or payload.parent_link
        if replying and thread_ts is None:
            # The parent never reached this channel: post the reply on its own, linked to
            # the original thread, rather than dropping it.
            link = payload.parent_link
            prefix = (
                f"> _in reply to <{link}|a thread>_\n" if link else "> _in reply to a thread_\n"
            )
            text = prefix + text
        if not text.strip():
            text = f"shared {len(files)} file{'s' if len(files) != 1 else ''}" if files else " "
        params: dict[str, Any] = {
            "channel": channel,
            "text": text,
            "thread_ts": thread_ts,
            "reply_broadcast": "true" if thread_ts and payload.broadcast else None,
            "unfurl_links": "false",
            "metadata": {
                "event_type": METADATA_EVENT,
                "event_payload": {
                    "delivery": task.uid,
                    "post": task.post_id or "",
                    TEXT_MARK: text_mark(text),
                },
            },
        }
        marks: tuple[str, ...] = ()
        response = None
        if puppet is not None:
            response = await self._post_as_author(puppet, task, params)
            if response is not None:
                marks = (f"{PUPPET_PART}:{puppet.puppet.slack_user_id}",)
        if response is None:
            bot = {**params, "username": display_name(author), "icon_url": author.avatar_url}
            response = await api.call("chat.postMessage", **bot)
        ts = str(response["ts"])
        person = await self._uploader(api, channel, puppet, bool(marks)) if files else None
        copied = await self._copy_files(
            files, source, api, channel, thread_ts or ts, frozenset(), person
        )
        return Delivered(
            native_id=ts,
            thread_native_id=thread_ts,
            parts=marks + tuple(f"file:{f}" for f in copied),
        )

    # --- double puppeting ------------------------------------------------------------------

    async def _author_puppet(self, team: str, payload: PostPayload) -> PuppetClient | None:
        """The author's own Slack client in ``team``, when they are a Matrix user who logged
        in with a user token there."""
        mxid = payload.author.native_id
        if self._puppets is None or payload.source.network is not Network.MATRIX or not mxid:
            return None
        return await asyncio.to_thread(self._puppets.client, mxid, team)

    async def _post_as_author(
        self, puppet: PuppetClient, task: DeliveryTask, params: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Post as the author; None when their token cannot (the bot posts instead)."""
        try:
            return await puppet.api.call("chat.postMessage", **params)
        except RemoteError as exc:
            if exc.retryable or exc.outcome_unknown:
                raise  # the outbox retries (and looks for the post first)
            await self._puppet_refused(puppet, task, exc)
            return None

    async def _puppet_refused(
        self, puppet: PuppetClient, task: DeliveryTask, exc: RemoteError
    ) -> None:
        assert self._puppets is not None
        if await self._puppets.dead(puppet.puppet, exc):
            for listener in self.on_puppet_lost:
                try:
                    await listener(task, exc.code or "refused")
                except Exception:
                    log.warning("puppet-lost listener failed", exc_info=True)
        else:
            # Not theirs to post there (a channel they are not in, a scope they did not
            # grant): the bot relays it under their name, as for anyone.
            log.info(
                "posted through the bot instead of the author's token",
                extra={"delivery": task.uid, "error": exc.code},
            )

    async def _copy_owner(self, team: str, task: DeliveryTask) -> PuppetClient | None:
        """The author's client when the copy was posted with their token."""
        if self._puppets is None or task.copy is None:
            return None
        for part in task.copy.parts:
            kind, _, user = part.partition(":")
            if kind == PUPPET_PART:
                return await asyncio.to_thread(self._puppets.client_of, team, user)
        return None

    async def _as_owner(
        self,
        owner: PuppetClient | None,
        api: SlackApi,
        task: DeliveryTask,
        method: str,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        """Change a copy as whoever posted it: its author's token, else the bot (which can
        change only its own posts, so a copy whose author's token is gone stays as it is)."""
        if owner is None:
            return await api.call(method, **params)
        try:
            return await owner.api.call(method, **params)
        except RemoteError as exc:
            if not exc.retryable and not exc.outcome_unknown:
                await self._puppet_refused(owner, task, exc)
            raise

    async def _copy_files(
        self,
        files: list[FileRef],
        source: Endpoint,
        api: SlackApi,
        channel: str,
        thread_ts: str,
        done: frozenset[str] = frozenset(),
        person: PuppetClient | None = None,
    ) -> list[str]:
        """Copy ``files`` as the bot, or as ``person`` where the bot cannot (their own DM):
        then a file their token may not upload fails the delivery with the reason, for the
        outbox to tell them, since nobody else can post a note there."""
        if not files:
            return []
        try:
            return await self._files.copy_all(
                files,
                source=source,
                target=api if person is None else person.api,
                channel=channel,
                thread_ts=thread_ts,
                done=done,
                before_share=self._expect_share(person) if person else None,
                on_refused=self._refused_upload(person) if person else None,
            )
        except RemoteError as exc:
            # The message is posted: the next attempt must find it, not post it again.
            exc.outcome_unknown = True
            raise

    async def _uploader(
        self,
        api: SlackApi,
        channel: str,
        puppet: PuppetClient | None,
        posted_as_them: bool,
    ) -> PuppetClient | None:
        """The author, when their post went out as them in a conversation the bot cannot see
        (their own DM): its files are uploaded as them too. None: the bot uploads."""
        if puppet is None or not posted_as_them:
            return None
        return puppet if await self._blind.cannot_see(api, channel) else None

    def _expect_share(self, person: PuppetClient) -> Callable[[str], Awaitable[None]]:
        async def expect_echo(file_id: str) -> None:
            if self._echoes is not None:
                key = file_echo(person.puppet.team_id, file_id)
                await asyncio.to_thread(self._echoes.expect, key)

        return expect_echo

    def _refused_upload(self, person: PuppetClient) -> OnRefused:
        async def on_refused(ref: FileRef, exc: RemoteError) -> None:
            assert self._puppets is not None
            forgotten = await self._puppets.dead(person.puppet, exc)
            prefix = f"the file {ref.name} was not uploaded as you: "
            raise refused(exc, "files:write", forgotten=forgotten, prefix=prefix) from exc

        return on_refused

    async def _file_shares(
        self,
        api: SlackApi,
        channel: str,
        thread_ts: str,
        after: str,
        person: PuppetClient | None = None,
    ) -> dict[str, str]:
        """Files our bot (or ``person``, with ``api`` theirs) shared into ``thread_ts`` after
        ``after``: name -> file id."""
        data = await api.call(
            "conversations.replies", channel=channel, ts=thread_ts, oldest=after, limit=200
        )
        bot_id = self._workspaces.info(api.team_id).bot_id if person is None else None
        shares: dict[str, str] = {}
        for message in data.get("messages") or []:
            if person is not None and message.get("user") != person.puppet.slack_user_id:
                continue
            if bot_id and message.get("bot_id") != bot_id:
                continue
            for f in message.get("files") or []:
                if f.get("name") and f.get("id"):
                    shares.setdefault(str(f["name"]), str(f["id"]))
        return shares

    async def _delete(
        self, api: SlackApi, channel: str, task: DeliveryTask, owner: PuppetClient | None
    ) -> None:
        ts = self._require_copy(task)
        # Every part of the copy: its file shares (thread replies of their own) first, so a
        # retry after a partial delete still finds the message to delete.
        assert task.copy is not None
        for part in task.copy.parts:
            kind, _, native = part.partition(":")
            if kind != "file":
                continue
            try:
                await api.call("files.delete", file=native)
            except RemoteError as exc:
                # A file of the author's own (uploaded as them in their DM): theirs to delete.
                if owner is None or exc.code not in ("cant_delete_file", "file_not_found"):
                    raise
                await self._as_owner(owner, api, task, "files.delete", {"file": native})
        await self._as_owner(owner, api, task, "chat.delete", {"channel": channel, "ts": ts})

    async def _find_existing(
        self,
        api: SlackApi,
        channel: str,
        task: DeliveryTask,
        thread_ts: str | None,
        puppet: PuppetClient | None,
    ) -> dict[str, Any] | None:
        """The message an earlier attempt of ``task`` posted, if it landed."""
        try:
            return await self._find_with(api, channel, task, thread_ts)
        except RemoteError as exc:
            if puppet is None or exc.retryable:
                raise
            # A conversation the bot is not in (the author's own DM): only they can look.
            return await self._find_with(puppet.api, channel, task, thread_ts)

    async def _find_with(
        self, api: SlackApi, channel: str, task: DeliveryTask, thread_ts: str | None
    ) -> dict[str, Any] | None:
        oldest = None
        if task.source_time is not None:
            oldest = f"{(task.source_time - timedelta(seconds=5)).timestamp():.6f}"
        params: dict[str, Any] = {
            "channel": channel,
            "include_all_metadata": "true",
            "limit": 200,
            "oldest": oldest,
        }
        if thread_ts:
            data = await api.call("conversations.replies", ts=thread_ts, **params)
        else:
            data = await api.call("conversations.history", **params)
        for message in data.get("messages") or []:
            meta = message.get("metadata") or {}
            if (
                meta.get("event_type") == METADATA_EVENT
                and (meta.get("event_payload") or {}).get("delivery") == task.uid
            ):
                return dict(message)
        return None

    async def _reaction(self, api: SlackApi, team: str, channel: str, task: DeliveryTask) -> None:
        ts = self._require_copy(task)
        reaction = expect(task.payload, ReactionPayload)
        added = task.kind is Kind.REACT
        person = await self._reactor(team, reaction)
        if person is not None and await self._blind.cannot_see(api, channel):
            await self._react_as(person, channel, ts, reaction.emoji, added)
            return
        try:
            await api.call(
                _reaction_method(added), channel=channel, timestamp=ts, name=reaction.emoji
            )
        except RemoteError as exc:
            if exc.code in UNSEEN_CODES and reaction.source.network is Network.MATRIX:
                # Someone's own DM, and the reactor has no token of theirs with us.
                raise not_logged_in() from exc
            if exc.code != "invalid_name":
                raise
            if added:
                await self._name_reactor(api, channel, ts, reaction)

    async def _reactor(self, team: str, reaction: ReactionPayload) -> PuppetClient | None:
        """The Matrix reactor's own Slack client in ``team``, if they logged in with a token."""
        if self._puppets is None or reaction.source.network is not Network.MATRIX:
            return None
        if not reaction.actor:
            return None
        return await asyncio.to_thread(self._puppets.client, reaction.actor, team)

    async def _react_as(
        self, person: PuppetClient, channel: str, ts: str, emoji: str, added: bool
    ) -> None:
        """React (or take the reaction back) as ``person``; its echo is expected first, as it
        may arrive before Slack's answer."""
        assert self._puppets is not None
        team, user = person.puppet.team_id, person.puppet.slack_user_id
        key = reaction_echo(team, channel, ts, user, emoji, added)
        if self._echoes is not None:
            await asyncio.to_thread(self._echoes.expect, key)
        try:
            await person.api.call(
                _reaction_method(added), channel=channel, timestamp=ts, name=emoji
            )
        except RemoteError as exc:
            if self._echoes is not None and not exc.outcome_unknown:
                await asyncio.to_thread(self._echoes.drop, key)
            if exc.code in ("already_reacted", "no_reaction"):
                return  # it already stands as wanted (they changed it in Slack themselves)
            if exc.retryable:
                raise
            forgotten = await self._puppets.dead(person.puppet, exc)
            raise refused(exc, "reactions:write", forgotten=forgotten) from exc

    async def _name_reactor(
        self, api: SlackApi, channel: str, ts: str, reaction: ReactionPayload
    ) -> None:
        """The emoji does not exist in this workspace (a custom one): say it in the thread."""
        source = reaction.source
        origin = ""
        if source.network is Network.SLACK:
            with contextlib.suppress(SyncbotError):
                origin = self._workspaces.info(source.slack_team).name
        who = await self._authors.resolve(
            source, reactor(source, reaction.actor, reaction.actor_name, origin)
        )
        await api.call(
            "chat.postMessage",
            channel=channel,
            thread_ts=ts,
            text=f"reacted with :{reaction.emoji}:",
            username=display_name(who),
            icon_url=who.avatar_url,
        )


def _reaction_method(added: bool) -> str:
    return "reactions.add" if added else "reactions.remove"
