"""Applying deliveries to Slack channels: post as the author, edit, delete, react, files.

Slack has no idempotency key, so every post carries its delivery id in message ``metadata``;
when an earlier attempt's outcome is unknown (timeout, dropped connection, 5xx, a crashed
worker) we look for that id in the channel before posting again.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

from app.core.authors import AuthorDirectory, reactor
from app.core.endpoints import Endpoint, Network
from app.core.events import Author, FileRef, Kind
from app.core.payloads import EditPayload, PostPayload, ReactionPayload, expect
from app.core.ports import Delivered, DeliveryTask
from app.errors import RemoteError, SyncbotError
from app.slack.files import FileCopier
from app.slack.render import SlackRenderer
from app.slack.webapi import SlackApi
from app.slack.workspaces import Workspaces

log = logging.getLogger("syncbot.slack.deliver")

METADATA_EVENT = "syncbot_delivery"
USERNAME_MAX = 80


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
    ) -> None:
        self._workspaces = workspaces
        self._authors = authors
        self._renderer = renderer
        self._files = files

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
                await api.call("chat.update", channel=channel, ts=copy, text=text or " ")
            case Kind.DELETE:
                await self._delete(api, channel, task)
            case Kind.REACT:
                await self._react(api, channel, task)
            case Kind.UNREACT:
                try:
                    await api.call(
                        "reactions.remove",
                        channel=channel,
                        timestamp=self._require_copy(task),
                        name=expect(task.payload, ReactionPayload).emoji,
                    )
                except RemoteError as exc:
                    if exc.code != "invalid_name":
                        raise
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
        if task.outcome_unknown:
            found = await self._find_existing(api, channel, task, thread_ts)
            if found:
                log.info("earlier attempt had landed", extra={"delivery": task.uid})
                parts: list[str] = []
                if files:
                    # The files an earlier attempt copied are in the thread; copy the rest.
                    earlier = await self._file_shares(api, channel, thread_ts or found, found)
                    parts = list(earlier.values())
                    parts += await self._copy_files(
                        files, source, api, channel, thread_ts or found, frozenset(earlier)
                    )
                return Delivered(
                    native_id=found,
                    thread_native_id=thread_ts,
                    parts=tuple(f"file:{p}" for p in parts),
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
            "username": display_name(author),
            "icon_url": author.avatar_url,
            "thread_ts": thread_ts,
            "reply_broadcast": "true" if thread_ts and payload.broadcast else None,
            "unfurl_links": "false",
            "metadata": {
                "event_type": METADATA_EVENT,
                "event_payload": {"delivery": task.uid, "post": task.post_id or ""},
            },
        }
        response = await api.call("chat.postMessage", **params)
        ts = str(response["ts"])
        copied = await self._copy_files(files, source, api, channel, thread_ts or ts)
        return Delivered(
            native_id=ts, thread_native_id=thread_ts, parts=tuple(f"file:{f}" for f in copied)
        )

    async def _copy_files(
        self,
        files: list[FileRef],
        source: Endpoint,
        api: SlackApi,
        channel: str,
        thread_ts: str,
        done: frozenset[str] = frozenset(),
    ) -> list[str]:
        if not files:
            return []
        try:
            return await self._files.copy_all(
                files, source=source, target=api, channel=channel, thread_ts=thread_ts, done=done
            )
        except RemoteError as exc:
            # The message is posted: the next attempt must find it, not post it again.
            exc.outcome_unknown = True
            raise

    async def _file_shares(
        self, api: SlackApi, channel: str, thread_ts: str, after: str
    ) -> dict[str, str]:
        """Files our bot shared into ``thread_ts`` after ``after``: name -> file id."""
        data = await api.call(
            "conversations.replies", channel=channel, ts=thread_ts, oldest=after, limit=200
        )
        bot_id = self._workspaces.info(api.team_id).bot_id
        shares: dict[str, str] = {}
        for message in data.get("messages") or []:
            if bot_id and message.get("bot_id") != bot_id:
                continue
            for f in message.get("files") or []:
                if f.get("name") and f.get("id"):
                    shares.setdefault(str(f["name"]), str(f["id"]))
        return shares

    async def _delete(self, api: SlackApi, channel: str, task: DeliveryTask) -> None:
        ts = self._require_copy(task)
        # Every part of the copy: its file shares (thread replies of their own) first, so a
        # retry after a partial delete still finds the message to delete.
        assert task.copy is not None
        for part in task.copy.parts:
            kind, _, native = part.partition(":")
            if kind != "file":
                continue
            await api.call("files.delete", file=native)
        await api.call("chat.delete", channel=channel, ts=ts)

    async def _find_existing(
        self, api: SlackApi, channel: str, task: DeliveryTask, thread_ts: str | None
    ) -> str | None:
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
                return str(message["ts"])
        return None

    async def _react(self, api: SlackApi, channel: str, task: DeliveryTask) -> None:
        ts = self._require_copy(task)
        reaction = expect(task.payload, ReactionPayload)
        emoji = reaction.emoji
        try:
            await api.call("reactions.add", channel=channel, timestamp=ts, name=emoji)
        except RemoteError as exc:
            if exc.code != "invalid_name":
                raise
            # The emoji does not exist in this workspace (a custom one): say it in the thread.
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
                text=f"reacted with :{emoji}:",
                username=display_name(who),
                icon_url=who.avatar_url,
            )
