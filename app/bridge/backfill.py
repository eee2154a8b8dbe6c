"""History backfill: a new portal starts with the channel's last messages, as they stand now.

When a portal is created, the last ``MATRIX_BACKFILL_MESSAGES`` messages of its channel are read
with ``conversations.history`` (``SLACK_HISTORY_LIMIT`` per request, ``SLACK_HISTORY_INTERVAL``
seconds apart: Slack allows commercially distributed apps outside the Marketplace 1 request a
minute and 15 messages per request, https://docs.slack.dev/reference/methods/conversations.history),
thread replies with ``conversations.replies`` under the same pacing, and sent oldest first, each
by its author's ghost with its Slack time as the event's timestamp (the appservice ``ts``
parameter). Edits are in place already (history holds the current text); reactions as they
stand are sent by the reactors' ghosts. Every backfilled event carries ``syncbot.backfill`` and
is sent by a ghost, whose events the bridge never relays: nothing echoes back to Slack.

Progress (phase, cursor, messages read, last message sent) is kept in ``instance_settings``
under ``backfill:<endpoint>``, so a restart resumes a backfill where it stopped instead of
starting over or sending a message twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any

from mautrix.types import EventType, RoomID
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.authors import AuthorDirectory
from app.core.endpoints import Endpoint
from app.core.events import Author
from app.errors import RemoteError, SyncbotError
from app.matrix.emoji import to_matrix_key
from app.matrix.event_content import as_content
from app.matrix.ghosts import Ghosts
from app.matrix.homeserver import Homeserver, matrix_errors
from app.matrix.render import MatrixRenderer
from app.slack.inbound import POST_SUBTYPES, body_of
from app.slack.workspaces import Workspaces
from app.store.models import InstanceSetting, MessageCopy

log = logging.getLogger("syncbot.bridge.backfill")

PREFIX = "backfill:"
MARK = "syncbot.backfill"


class PortalBackfill:
    """Backfills new portals in the background, paced, resumable."""

    def __init__(
        self,
        homeserver: Homeserver,
        sessions: sessionmaker[Session],
        *,
        ghosts: Ghosts,
        authors: AuthorDirectory,
        workspaces: Workspaces,
        count: int,
        page_limit: int,
        interval: float,
    ) -> None:
        self._hs = homeserver
        self._sessions = sessions
        self._ghosts = ghosts
        self._authors = authors
        self._workspaces = workspaces
        self._renderer = MatrixRenderer(homeserver.ids)
        self._count = count
        self._limit = page_limit
        self._interval = interval
        self._tasks: set[asyncio.Task[Any]] = set()
        # Per workspace: one history request at a time, SLACK_HISTORY_INTERVAL apart.
        self._pace: dict[str, asyncio.Lock] = {}
        self._last_call: dict[str, float] = {}
        # Completed backfills (tests read it).
        self.completed = 0

    # --- hooks --------------------------------------------------------------------------------

    async def portal_created(self, endpoint: Endpoint, room: str) -> None:
        """Portals hook: start the backfill of a new portal (in the background)."""
        if self._count <= 0:
            return
        await asyncio.to_thread(self._save, endpoint, {"room": room, "phase": "reading"})
        self._spawn(self.run(endpoint), name=f"matrix-backfill-{endpoint}")

    def start(self) -> None:
        """An ``on_connected`` hook: continue every backfill a stop interrupted."""
        self._spawn(self._resume(), name="matrix-backfill-resume")

    async def _resume(self) -> None:
        for endpoint in await asyncio.to_thread(self._unfinished):
            await self.run(endpoint)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- the run ------------------------------------------------------------------------------

    async def run(self, endpoint: Endpoint) -> None:
        state = await asyncio.to_thread(self._load, endpoint)
        if state is None or state.get("phase") == "done":
            return
        try:
            if state.get("phase") == "reading":
                await self._read(endpoint, state)
            await self._send_all(endpoint, state)
        except (RemoteError, SyncbotError) as exc:
            # Kept as it stands: the next start resumes it.
            log.warning("backfill stopped", extra={"endpoint": str(endpoint), "error": str(exc)})
            return
        state["phase"] = "done"
        state.pop("messages", None)
        await asyncio.to_thread(self._save, endpoint, state)
        self.completed += 1
        log.info("portal backfilled", extra={"endpoint": str(endpoint)})

    async def _call(self, endpoint: Endpoint, method: str, **params: Any) -> dict[str, Any]:
        # Slack's history methods allow non-Marketplace apps one call a minute per workspace
        # installation: every backfill of the workspace waits its turn.
        team = endpoint.slack_team
        async with self._pace.setdefault(team, asyncio.Lock()):
            last = self._last_call.get(team)
            if last is not None:
                wait = last + self._interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # pacing, not waiting for a condition
            try:
                api = self._workspaces.api(team)
                return dict(await api.call(method, channel=endpoint.slack_channel, **params))
            finally:
                self._last_call[team] = time.monotonic()

    async def _read(self, endpoint: Endpoint, state: dict[str, Any]) -> None:
        messages: list[dict[str, Any]] = state.setdefault("messages", [])
        while len(messages) < self._count:
            want = min(self._limit, self._count - len(messages))
            page = await self._call(
                endpoint, "conversations.history", limit=want, cursor=state.get("cursor")
            )
            known = await asyncio.to_thread(self._known, endpoint)
            # Messages the relay already carries (the one that made the portal, our copies)
            # are left to it.
            found = [
                m
                for m in page.get("messages") or []
                if _bridgeable(m) and str(m["ts"]) not in known
            ]
            messages += found[:want]
            state["cursor"] = (page.get("response_metadata") or {}).get("next_cursor") or None
            await asyncio.to_thread(self._save, endpoint, state)
            if not state["cursor"] or not page.get("has_more"):
                break
        # Thread replies, under the same pacing (the first reply page holds the root too).
        for message in messages:
            if message.get("reply_count") and not message.get("replies_read"):
                replies: list[dict[str, Any]] = message.setdefault("replies", [])
                cursor = message.get("replies_cursor")
                while len(replies) < self._count:
                    page = await self._call(
                        endpoint,
                        "conversations.replies",
                        ts=message["ts"],
                        limit=self._limit,
                        cursor=cursor,
                    )
                    replies += [
                        r
                        for r in page.get("messages") or []
                        if r.get("ts") != message["ts"] and _bridgeable(r)
                    ]
                    cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                    message["replies_cursor"] = cursor
                    await asyncio.to_thread(self._save, endpoint, state)
                    if not cursor or not page.get("has_more"):
                        break
                message["replies_read"] = True
                await asyncio.to_thread(self._save, endpoint, state)
        state["phase"] = "sending"
        await asyncio.to_thread(self._save, endpoint, state)

    async def _send_all(self, endpoint: Endpoint, state: dict[str, Any]) -> None:
        roots = sorted(state.get("messages") or [], key=lambda m: float(m["ts"]))
        sent: dict[str, str] = state.setdefault("sent", {})
        room = str(state["room"])
        for root in roots:
            root_event = sent.get(root["ts"]) or await self._send(endpoint, room, root, None)
            sent[root["ts"]] = root_event
            await asyncio.to_thread(self._save, endpoint, state)
            for reply in sorted(root.get("replies") or [], key=lambda m: float(m["ts"])):
                if reply["ts"] not in sent:
                    sent[reply["ts"]] = await self._send(endpoint, room, reply, root_event)
                    await asyncio.to_thread(self._save, endpoint, state)

    async def _send(
        self, endpoint: Endpoint, room: str, message: dict[str, Any], thread_root: str | None
    ) -> str:
        author = await self._authors.resolve(endpoint, self._author(endpoint, message))
        sender = await self._ghosts.ensure(endpoint, author)
        intent = self._hs.intent(sender)
        ts = int(float(message["ts"]) * 1000)
        content = self._renderer.message(body_of(message), source=endpoint)
        content[MARK] = True
        if thread_root is not None:
            content["m.relates_to"] = {
                "rel_type": "m.thread",
                "event_id": thread_root,
                "is_falling_back": True,
                "m.in_reply_to": {"event_id": thread_root},
            }
        async with matrix_errors("backfill message"):
            await intent.ensure_joined(RoomID(room), bot=self._hs.bot)
            event_id = await intent.send_message_event(
                RoomID(room), EventType.ROOM_MESSAGE, as_content(content), timestamp=ts
            )
        for reaction in message.get("reactions") or []:
            key = to_matrix_key(str(reaction.get("name") or ""))
            for user in reaction.get("users") or []:
                who = Author(
                    name="", native_id=f"{endpoint.slack_team}/{user}", origin=author.origin
                )
                reactor = await self._ghosts.ensure(
                    endpoint, await self._authors.resolve(endpoint, who)
                )
                async with matrix_errors("backfill reaction"):
                    await self._hs.intent(reactor).ensure_joined(RoomID(room), bot=self._hs.bot)
                    await self._hs.intent(reactor).send_message_event(
                        RoomID(room),
                        EventType.REACTION,
                        as_content(
                            {
                                "m.relates_to": {
                                    "rel_type": "m.annotation",
                                    "event_id": str(event_id),
                                    "key": key,
                                },
                                MARK: True,
                            }
                        ),
                        timestamp=ts,
                    )
        return str(event_id)

    def _author(self, endpoint: Endpoint, message: dict[str, Any]) -> Author:
        team = endpoint.slack_team
        try:
            origin = self._workspaces.info(team).name
        except SyncbotError:
            origin = team
        if message.get("user"):
            return Author(name="", native_id=f"{team}/{message['user']}", origin=origin)
        profile = message.get("bot_profile") or {}
        return Author(
            name=str(message.get("username") or profile.get("name") or "bot"),
            native_id=f"{team}/{message.get('bot_id') or 'bot'}",
            origin=origin,
        )

    # --- progress -----------------------------------------------------------------------------

    def _load(self, endpoint: Endpoint) -> dict[str, Any] | None:
        with self._sessions() as s:
            row = s.get(InstanceSetting, PREFIX + str(endpoint))
            return dict(json.loads(row.value)) if row is not None else None

    def _save(self, endpoint: Endpoint, state: dict[str, Any]) -> None:
        with self._sessions() as s, s.begin():
            key = PREFIX + str(endpoint)
            row = s.get(InstanceSetting, key)
            if row is None:
                s.add(InstanceSetting(key=key, value=json.dumps(state)))
            else:
                row.value = json.dumps(state)

    def _known(self, endpoint: Endpoint) -> set[str]:
        with self._sessions() as s:
            return set(
                s.execute(
                    select(MessageCopy.native_id).where(MessageCopy.endpoint == str(endpoint))
                ).scalars()
            )

    def _unfinished(self) -> list[Endpoint]:
        with self._sessions() as s:
            rows = s.execute(
                select(InstanceSetting.key, InstanceSetting.value).where(
                    InstanceSetting.key.like(PREFIX + "%")
                )
            ).all()
        out = []
        for key, value in rows:
            try:
                if json.loads(value).get("phase") != "done":
                    out.append(Endpoint.parse(key.removeprefix(PREFIX)))
            except ValueError:  # EndpointError and bad JSON alike
                continue
        return out

    def _spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _bridgeable(message: dict[str, Any]) -> bool:
    """A post the relay would carry (not a join, topic change or other notice)."""
    return message.get("subtype") in POST_SUBTYPES and bool(message.get("ts"))
