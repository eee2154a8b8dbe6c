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

Each message takes the live path's Matrix side (:class:`~app.matrix.deliver.MatrixDeliverer`:
the same rendering, custom emoji, files and parts) and lands in the message map like a relayed
post (:mod:`app.store.history_map`), so a later edit, delete or reaction of it on Slack follows
on Matrix, and a Matrix reply, edit or reaction on its event reaches the Slack original.

A person's own DM or group DM (a portal made for someone logged in with ``login token``) does
not include the bot, so its history is read with that person's token, under the same pacing;
who reads is decided once per portal and kept with the progress. When no logged-in member is
left to read it, the backfill ends there, with nothing read.

Progress (phase, cursor, messages read, messages sent) is kept in ``instance_settings``
under ``backfill:<endpoint>``, so a restart resumes a backfill where it stopped instead of
starting over; a message sent but not yet saved as sent is found in the map (or, when the stop
fell between the send and the record, sent again under the same transaction ids, which the
homeserver answers with the first event), so none is sent or mapped twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Coroutine
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.bridge.channels import private_owners
from app.core.endpoints import Endpoint
from app.core.payloads import PostPayload, ReactionPayload
from app.errors import RemoteError, SyncbotError
from app.matrix.deliver import History, MatrixDeliverer
from app.slack.inbound import POST_SUBTYPES, EventTranslator
from app.slack.puppets import SlackPuppets
from app.slack.webapi import SlackApi
from app.slack.workspaces import Workspaces
from app.store.history_map import HistoryCopy, HistoryMap
from app.store.instance_settings import read_setting, write_setting
from app.store.models import InstanceSetting

log = logging.getLogger("syncbot.bridge.backfill")

PREFIX = "backfill:"
MARK = "syncbot.backfill"
# Who reads a portal's history (``reader`` in its progress): the workspace's bot, else the
# Matrix id of the person whose own conversation it is.
BOT_READER = "bot"


class NoReader(SyncbotError):
    """Nobody can read the conversation's history any more (its people logged out)."""


class PortalBackfill:
    """Backfills new portals in the background, paced, resumable."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        deliverer: MatrixDeliverer,
        translator: EventTranslator,
        workspaces: Workspaces,
        count: int,
        page_limit: int,
        interval: float,
        puppets: SlackPuppets | None = None,
    ) -> None:
        self._sessions = sessions
        self._puppets = puppets
        self._deliverer = deliverer
        self._translator = translator
        self._map = HistoryMap(sessions)
        self._workspaces = workspaces
        self._count = count
        self._limit = page_limit
        self._interval = interval
        self._tasks: set[asyncio.Task[Any]] = set()
        # Per workspace: one history request at a time, SLACK_HISTORY_INTERVAL apart.
        self._pace: dict[str, asyncio.Lock] = {}
        self._last_call: dict[str, float] = {}
        # Channel id -> the ts of the first message that asked for its portal: that message
        # and every later one reach the portal live, so the history read stops before it.
        self._live_from: dict[str, str] = {}
        # Completed backfills (tests read it).
        self.completed = 0

    # --- hooks --------------------------------------------------------------------------------

    def live_from(self, endpoint: Endpoint, ts: str) -> None:
        """The message ``ts`` of ``endpoint`` is making its portal: the relay carries it (and
        what follows it) into the portal, so the backfill must not read it as history.

        Without this line the backfill, started as the portal is made, read the channel before
        the relay had recorded that message, and the room got it twice.
        """
        self._live_from.setdefault(endpoint.slack_channel, ts)

    async def portal_created(self, endpoint: Endpoint, room: str) -> None:
        """Portals hook: start the backfill of a new portal (in the background).

        History ends where the live relay begins: before the message that made the portal, or,
        for a portal made without one (a login), now.
        """
        latest = self._live_from.pop(endpoint.slack_channel, None) or f"{time.time():.6f}"
        if self._count <= 0:
            return
        state = {"room": room, "phase": "reading", "latest": latest}
        await asyncio.to_thread(self._save, endpoint, state)
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
        except NoReader:
            log.info("backfill skipped: nobody left to read it", extra={"endpoint": str(endpoint)})
            state["phase"] = "done"
            state.pop("messages", None)
            await asyncio.to_thread(self._save, endpoint, state)
            return
        except (RemoteError, SyncbotError) as exc:
            # Kept as it stands: the next start resumes it.
            log.warning("backfill stopped", extra={"endpoint": str(endpoint), "error": str(exc)})
            return
        state["phase"] = "done"
        state.pop("messages", None)
        await asyncio.to_thread(self._save, endpoint, state)
        self.completed += 1
        log.info("portal backfilled", extra={"endpoint": str(endpoint)})

    async def _call(
        self, endpoint: Endpoint, state: dict[str, Any], method: str, **params: Any
    ) -> dict[str, Any]:
        # Slack's history methods allow non-Marketplace apps one call a minute per workspace
        # installation: every backfill of the workspace, by the bot or by a person's token,
        # waits its turn.
        team = endpoint.slack_team
        api = await self._reader(endpoint, state)
        async with self._pace.setdefault(team, asyncio.Lock()):
            last = self._last_call.get(team)
            if last is not None:
                wait = last + self._interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # pacing, not waiting for a condition
            try:
                return dict(await api.call(method, channel=endpoint.slack_channel, **params))
            except RemoteError as exc:
                await self._reader_failed(endpoint, state, exc)
                raise
            finally:
                self._last_call[team] = time.monotonic()

    async def _reader_failed(
        self, endpoint: Endpoint, state: dict[str, Any], exc: RemoteError
    ) -> None:
        """A person's token Slack no longer accepts is forgotten (as the deliverer does), and
        the backfill ends rather than failing again at every start."""
        reader = state.get("reader")
        if reader in (None, BOT_READER) or self._puppets is None:
            return
        team = endpoint.slack_team
        puppet = next(
            (p for p in await asyncio.to_thread(self._puppets.of_team, team) if p.mxid == reader),
            None,
        )
        if puppet is not None and await self._puppets.dead(puppet, exc):
            raise NoReader(f"{reader}'s token for {team} no longer works") from exc

    async def _reader(self, endpoint: Endpoint, state: dict[str, Any]) -> SlackApi:
        """The client reading ``endpoint``'s history: the bot's, or for a person's own DM
        (which the bot cannot read) their own, decided at the first read and kept."""
        team = endpoint.slack_team
        reader = state.get("reader")
        if reader is None:
            reader = await self._reader_of(endpoint)
            state["reader"] = reader
            await asyncio.to_thread(self._save, endpoint, state)
        if reader == BOT_READER:
            return self._workspaces.api(team)
        client = (
            await asyncio.to_thread(self._puppets.client, str(reader), team)
            if self._puppets is not None
            else None
        )
        if client is None:
            raise NoReader(f"{reader} logged out of {team}")
        return client.api

    async def _reader_of(self, endpoint: Endpoint) -> str:
        team = endpoint.slack_team
        if self._puppets is None or not await asyncio.to_thread(self._puppets.of_team, team):
            return BOT_READER
        owners = await private_owners(self._workspaces, self._puppets, endpoint)
        if owners is None:
            return BOT_READER
        if not owners:
            raise NoReader(f"no logged-in member of {endpoint}")
        return owners[0]

    async def _read(self, endpoint: Endpoint, state: dict[str, Any]) -> None:
        messages: list[dict[str, Any]] = state.setdefault("messages", [])
        while len(messages) < self._count:
            want = min(self._limit, self._count - len(messages))
            page = await self._call(
                endpoint,
                state,
                "conversations.history",
                limit=want,
                cursor=state.get("cursor"),
                **_before(state),
            )
            posts = [m for m in page.get("messages") or [] if _bridgeable(m)]
            known = await asyncio.to_thread(
                self._map.mapped, endpoint, [str(m["ts"]) for m in posts]
            )
            # Messages the relay already carries (the one that made the portal, our copies)
            # are left to it.
            found = [m for m in posts if str(m["ts"]) not in known]
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
                        state,
                        "conversations.replies",
                        ts=message["ts"],
                        limit=self._limit,
                        cursor=cursor,
                        **_before(state),
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
            root_event = sent.get(root["ts"]) or await self._copy(endpoint, room, root, None)
            sent[root["ts"]] = root_event
            await asyncio.to_thread(self._save, endpoint, state)
            for reply in sorted(root.get("replies") or [], key=lambda m: float(m["ts"])):
                if reply["ts"] not in sent:
                    sent[reply["ts"]] = await self._copy(endpoint, room, reply, root)
                    await asyncio.to_thread(self._save, endpoint, state)

    async def _copy(
        self,
        endpoint: Endpoint,
        room: str,
        message: dict[str, Any],
        root: dict[str, Any] | None,
    ) -> str:
        """Copy one past message (and its reactions) into the room and map it; its event id.

        The message goes through the Matrix deliverer like a live one (the same rendering,
        ghosts, files and parts), and into the message map like a relayed one, so a later
        edit, delete or reaction on either side follows it. A message the map holds already
        (the relay carried it, or a resumed backfill sent it before its progress was saved)
        is not sent again.
        """
        target = Endpoint.matrix(room)
        ts = str(message["ts"])
        found = await asyncio.to_thread(self._map.copy_at, endpoint, ts, target)
        if found is not None:
            return found
        post = self._translator.history_post(endpoint, message)
        if post is None:
            return ""
        thread_root = (
            await asyncio.to_thread(self._map.copy_at, endpoint, str(root["ts"]), target)
            if root is not None
            else None
        )
        payload = PostPayload(
            source=endpoint,
            source_native_id=ts,
            author=post.author,
            body=post.body,
            files=post.files,
            broadcast=post.broadcast,
        )
        # The transaction ids are fixed by the message: sending again after a crash between
        # the send and the record makes no second event on the homeserver.
        uid = "backfill." + hashlib.sha256(f"{target}|{endpoint}|{ts}".encode()).hexdigest()[:32]
        history = History(timestamp_ms=int(float(ts) * 1000), mark=MARK)
        delivered = await self._deliverer.post_history(
            room, payload, thread_root, uid=uid, history=history
        )
        event_id = str(delivered.native_id)
        reactions = [
            (str(reaction.get("name") or ""), str(user))
            for reaction in message.get("reactions") or []
            for user in reaction.get("users") or []
            if reaction.get("name")
        ]
        for index, (emoji, user) in enumerate(reactions):
            await self._deliverer.react_history(
                room,
                event_id,
                ReactionPayload(
                    source=endpoint, emoji=emoji, actor=f"{endpoint}|{user}", actor_name=user
                ),
                uid=f"{uid}.r{index}",
                history=history,
            )
        await asyncio.to_thread(
            self._map.record,
            HistoryCopy(
                source=endpoint,
                native_id=ts,
                thread_native_id=str(root["ts"]) if root is not None else None,
                author_name=post.author.name,
                target=target,
                event_id=event_id,
                thread_event_id=delivered.thread_native_id,
                parts=delivered.parts,
                reactions=tuple(reactions),
            ),
        )
        return event_id

    # --- progress -----------------------------------------------------------------------------

    def _load(self, endpoint: Endpoint) -> dict[str, Any] | None:
        value = read_setting(self._sessions, PREFIX + str(endpoint))
        return dict(json.loads(value)) if value is not None else None

    def _save(self, endpoint: Endpoint, state: dict[str, Any]) -> None:
        write_setting(self._sessions, PREFIX + str(endpoint), json.dumps(state))

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


def _before(state: dict[str, Any]) -> dict[str, str]:
    """The history request's end (exclusive): where the live relay took over. A backfill
    stopped by an older version has none and reads up to now."""
    latest = state.get("latest")
    return {"latest": str(latest)} if latest else {}


def _bridgeable(message: dict[str, Any]) -> bool:
    """A post the relay would carry (not a join, topic change or other notice)."""
    return message.get("subtype") in POST_SUBTYPES and bool(message.get("ts"))
