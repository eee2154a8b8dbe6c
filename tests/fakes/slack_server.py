"""A fake Slack (Web API + Events API delivery) on loopback, faithful where syncbot depends on it.

Wire format as Slack's: form or JSON bodies, ``Authorization: Bearer``, ``{"ok": false, "error"}``
bodies, HTTP 429 with ``Retry-After``; signed ``event_callback`` envelopes POSTed to the app with
Slack's retry behaviour (``X-Slack-Retry-Num``/``X-Slack-Retry-Reason``, same ``event_id``); echo
events for everything the app posts, edits, deletes or reacts with.

Faults are injected per method (a queue) or at random (seeded): ``429``, ``500``, ``timeout``
(the call hangs past the client's timeout), ``drop`` (connection closed without a response),
and the same *after* the side effect (``500_after``, ``timeout_after``, ``drop_after``): the post
happened but the client cannot know — a lost response.

Usage::

    slack = FakeSlack(signing_secret="...").start()
    slack.add_team("T1", "Acme"); slack.add_user("T1", "U1", "ada", email="ada@x")
    slack.add_channel("T1", "C1", "general")
    slack.app_url = "http://127.0.0.1:PORT/slack/events"
    ts = slack.user_posts("T1", "C1", "U1", "hello")
    slack.messages("T2", "C2")  # what the app posted there
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from aiohttp import web

APP_ID = "A0SYNCBOT"
AFTER = {"500_after", "timeout_after", "drop_after"}
WRITE = {"chat.postMessage", "chat.update", "chat.delete", "reactions.add", "reactions.remove"}


@dataclass
class Message:
    ts: str
    text: str
    user: str | None = None
    bot_id: str | None = None
    app_id: str | None = None
    username: str | None = None
    icons: dict[str, str] | None = None
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    edited: bool = False
    deleted: bool = False
    subtype: str | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        for key in ("user", "bot_id", "app_id", "username", "icons", "thread_ts", "subtype"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.metadata:
            out["metadata"] = self.metadata
        if self.reactions:
            out["reactions"] = [
                {"name": k, "users": v, "count": len(v)} for k, v in self.reactions.items() if v
            ]
        if self.files:
            out["files"] = self.files
        if self.edited:
            out["edited"] = {"user": self.user or self.bot_id, "ts": self.ts}
        return out


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    archived: bool = False
    messages: list[Message] = field(default_factory=list)
    private: bool = False


@dataclass
class Team:
    id: str
    name: str
    domain: str
    bot_token: str
    bot_user: str
    bot_id: str
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    revoked: bool = False


class FakeSlack:
    def __init__(self, *, signing_secret: str = "fake-signing-secret-0123456789") -> None:
        self.signing_secret = signing_secret
        self.teams: dict[str, Team] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (team, method, params)
        self.events: list[dict[str, Any]] = []  # envelopes delivered (first attempts)
        self.deliveries: list[tuple[str, int, int]] = []  # (event_id, retry_num, status)
        self.app_url: str | None = None
        # Events of a team go here instead of app_url (several app processes, one per team).
        self.team_urls: dict[str, str] = {}
        # Client (host, port) of every Web API call: how many connections callers opened.
        self.peers: set[tuple[str, int]] = set()
        # (monotonic time, team, method, injected fault or None) of every Web API call.
        self.call_log: list[tuple[float, str, str, str | None]] = []
        self.echo = True
        self.latency = 0.0
        self.faults: dict[str, deque[str]] = defaultdict(deque)
        self.fault_rate = 0.0
        self.fault_kinds = ("429", "500", "timeout", "drop", "500_after", "timeout_after")
        self.hang_seconds = 5.0
        self.retry_after = 1
        self.event_retry_delays = (0.05, 0.1, 0.2)
        self.event_timeout = 3.0
        self.files: dict[str, bytes] = {}
        self.deleted_files: set[str] = set()
        self._pending_uploads: dict[str, dict[str, Any]] = {}
        self._rng = random.Random(1234)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._workers: list[asyncio.Future[None]] = []
        self._ts = itertools.count(1)
        self._lock = threading.RLock()
        self.port = 0

    # -- setup ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def add_team(self, team_id: str, name: str, domain: str | None = None) -> Team:
        team = Team(
            id=team_id,
            name=name,
            domain=domain or name.lower().replace(" ", ""),
            bot_token=f"xoxb-{team_id}-{uuid.uuid4().hex[:8]}",
            bot_user=f"UB{team_id}",
            bot_id=f"BB{team_id}",
        )
        self.teams[team_id] = team
        self.add_user(team_id, team.bot_user, f"syncbot-{team_id}", is_bot=True)
        return team

    def add_user(
        self,
        team_id: str,
        user_id: str,
        name: str,
        *,
        email: str | None = None,
        is_bot: bool = False,
        is_admin: bool = False,
    ) -> None:
        self.teams[team_id].users[user_id] = {
            "id": user_id,
            "team_id": team_id,
            "name": name.lower(),
            "real_name": name,
            "is_bot": is_bot,
            "is_admin": is_admin,
            "deleted": False,
            "profile": {
                "display_name": name,
                "real_name": name,
                "email": email,
                "image_72": f"https://avatars.example/{team_id}/{user_id}_72.png",
                "image_192": f"https://avatars.example/{team_id}/{user_id}_192.png",
            },
        }

    def add_channel(
        self,
        team_id: str,
        channel_id: str,
        name: str,
        *,
        bot_member: bool = True,
        private: bool = False,
    ) -> Channel:
        channel = Channel(channel_id, name, private=private)
        if bot_member:
            channel.members.add(self.teams[team_id].bot_user)
        self.teams[team_id].channels[channel_id] = channel
        return channel

    def remove_bot(self, team_id: str, channel_id: str, *, by: str = "U1") -> None:
        """A member removes the app's bot from a channel (``/kick``): ``member_left_channel``."""
        self._bot_membership(team_id, channel_id, by, joined=False)

    def invite_bot(self, team_id: str, channel_id: str, *, by: str = "U1") -> None:
        """A member invites the bot back: ``member_joined_channel`` with the inviter."""
        self._bot_membership(team_id, channel_id, by, joined=True)

    def _bot_membership(self, team_id: str, channel_id: str, by: str, *, joined: bool) -> None:
        with self._lock:
            team = self.teams[team_id]
            channel = team.channels[channel_id]
            (channel.members.add if joined else channel.members.discard)(team.bot_user)
            event: dict[str, Any] = {
                "type": "member_joined_channel" if joined else "member_left_channel",
                "user": team.bot_user,
                "channel": channel_id,
                "channel_type": "G" if channel.private else "C",
                "team": team_id,
                "event_ts": self._next_ts(),
            }
            if joined:
                event["inviter"] = by
        self.emit(team_id, event)

    def fail(self, method: str, *kinds: str) -> None:
        """Queue faults for the next calls of ``method`` (``*`` for any method)."""
        self.faults[method].extend(kinds)

    # -- inspection -----------------------------------------------------------------------

    def messages(
        self, team_id: str, channel_id: str, *, include_deleted: bool = False
    ) -> list[Message]:
        with self._lock:
            msgs = self.teams[team_id].channels[channel_id].messages
            return [m for m in msgs if include_deleted or not m.deleted]

    def called(self, method: str) -> list[dict[str, Any]]:
        return [p for _t, m, p in self.calls if m == method]

    # -- user actions (emit the events Slack would) --------------------------------------

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.{next(self._ts):06d}"

    def user_posts(
        self,
        team_id: str,
        channel_id: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
        files: list[dict] | None = None,
    ) -> str:
        with self._lock:
            msg = Message(
                ts=self._next_ts(), text=text, user=user, thread_ts=thread_ts, files=files or []
            )
            if broadcast:
                msg.subtype = "thread_broadcast"
            elif files:
                msg.subtype = "file_share"
            self.teams[team_id].channels[channel_id].messages.append(msg)
            event = msg.wire() | {
                "channel": channel_id,
                "team": team_id,
                "event_ts": msg.ts,
                "channel_type": "channel",
            }
        self.emit(team_id, event)
        return msg.ts

    def user_edits(self, team_id: str, channel_id: str, ts: str, text: str) -> None:
        with self._lock:
            msg = self._find(team_id, channel_id, ts)
            previous = msg.wire()
            msg.text, msg.edited = text, True
            event = {
                "type": "message",
                "subtype": "message_changed",
                "channel": channel_id,
                "hidden": True,
                "message": msg.wire(),
                "previous_message": previous,
                "event_ts": self._next_ts(),
                "ts": self._next_ts(),
            }
        self.emit(team_id, event)

    def user_deletes(self, team_id: str, channel_id: str, ts: str) -> None:
        with self._lock:
            msg = self._find(team_id, channel_id, ts)
            msg.deleted = True
            event = {
                "type": "message",
                "subtype": "message_deleted",
                "channel": channel_id,
                "hidden": True,
                "deleted_ts": ts,
                "previous_message": msg.wire(),
                "event_ts": self._next_ts(),
                "ts": self._next_ts(),
            }
        self.emit(team_id, event)

    def user_reacts(
        self, team_id: str, channel_id: str, ts: str, user: str, name: str, added: bool = True
    ) -> None:
        with self._lock:
            msg = self._find(team_id, channel_id, ts)
            users = msg.reactions.setdefault(name, [])
            if added and user not in users:
                users.append(user)
            elif not added and user in users:
                users.remove(user)
            event = {
                "type": "reaction_added" if added else "reaction_removed",
                "user": user,
                "reaction": name,
                "item": {"type": "message", "channel": channel_id, "ts": ts},
                "event_ts": self._next_ts(),
            }
        self.emit(team_id, event)

    def channel_event(
        self, team_id: str, kind: str, channel_id: str, name: str | None = None
    ) -> None:
        channel: Any = {"id": channel_id, "name": name} if kind.endswith("rename") else channel_id
        self.emit(team_id, {"type": kind, "channel": channel, "event_ts": self._next_ts()})

    def _find(self, team_id: str, channel_id: str, ts: str) -> Message:
        for msg in self.teams[team_id].channels[channel_id].messages:
            if msg.ts == ts:
                return msg
        raise KeyError(ts)

    # -- events API delivery -------------------------------------------------------------

    def envelope(self, team_id: str, event: dict[str, Any]) -> dict[str, Any]:
        team = self.teams[team_id]
        return {
            "token": "verification-token-unused",
            "team_id": team_id,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{uuid.uuid4().hex[:16].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team_id, "user_id": team.bot_user, "is_bot": True}],
            "is_ext_shared_channel": False,
        }

    def sign(self, body: bytes, ts: int | None = None) -> dict[str, str]:
        stamp = str(ts if ts is not None else int(time.time()))
        base = b"v0:" + stamp.encode() + b":" + body
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/json",
        }

    def emit(self, team_id: str, event: dict[str, Any]) -> None:
        envelope = self.envelope(team_id, event)
        with self._lock:
            self.events.append(envelope)
        if self.app_url or team_id in self.team_urls:
            # Events of one workspace are delivered one after another (a retry holds back the
            # ones behind it), which keeps per-channel order observable in tests.
            self._loop.call_soon_threadsafe(self._enqueue, team_id, envelope)

    def _enqueue(self, team_id: str, envelope: dict[str, Any]) -> None:
        queue = self._queues.get(team_id)
        if queue is None:
            queue = self._queues[team_id] = asyncio.Queue()
            self._workers.append(asyncio.ensure_future(self._drain_queue(queue)))
        queue.put_nowait(envelope)

    async def _drain_queue(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            envelope = await queue.get()
            try:
                await self._deliver(envelope)
            finally:
                queue.task_done()

    def pending_events(self) -> int:
        return sum(q.qsize() + q._unfinished_tasks for q in self._queues.values())  # type: ignore[attr-defined]

    async def _deliver(self, envelope: dict[str, Any]) -> None:
        body = json.dumps(envelope).encode()
        url = self.team_urls.get(envelope["team_id"], self.app_url)
        for attempt in range(len(self.event_retry_delays) + 1):
            headers = self.sign(body)
            if attempt:
                headers["X-Slack-Retry-Num"] = str(attempt)
                headers["X-Slack-Retry-Reason"] = "http_error"
            status = 0
            try:
                async with self._session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.event_timeout),
                ) as resp:
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError):
                status = -1
            self.deliveries.append((envelope["event_id"], attempt, status))
            if 200 <= status < 300:
                return
            if attempt < len(self.event_retry_delays):
                await asyncio.sleep(self.event_retry_delays[attempt])

    # -- web API --------------------------------------------------------------------------

    def _team_for(self, auth: str | None) -> Team | None:
        token = (auth or "").removeprefix("Bearer ").strip()
        for team in self.teams.values():
            if team.bot_token == token:
                return team
        return None

    def _next_fault(self, method: str) -> str | None:
        for key in (method, "*"):
            if self.faults[key]:
                return self.faults[key].popleft()
        if self.fault_rate and self._rng.random() < self.fault_rate:
            kinds = [k for k in self.fault_kinds if k not in AFTER or method in WRITE]
            return self._rng.choice(kinds)
        return None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        raw = await request.read()
        if "json" in request.headers.get("Content-Type", ""):
            params = json.loads(raw or b"{}")
        else:
            params = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        params.update(request.query)
        team = self._team_for(request.headers.get("Authorization"))
        with self._lock:
            self.calls.append((team.id if team else "", method, params))
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._next_fault(method)
        with self._lock:
            self.call_log.append((time.monotonic(), team.id if team else "", method, fault))
            if request.transport is not None:
                self.peers.add(tuple(request.transport.get_extra_info("peername")[:2]))
        if fault in ("429",):
            return web.json_response(
                {"ok": False, "error": "ratelimited"},
                status=429,
                headers={"Retry-After": str(self.retry_after)},
            )
        if fault == "500":
            return web.Response(status=500, text="internal error")
        if fault == "timeout":
            await asyncio.sleep(self.hang_seconds)
            return web.json_response({"ok": False, "error": "request_timeout"})
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if team is None and method not in ("oauth.v2.access",):
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if team is not None and team.revoked:
            return web.json_response({"ok": False, "error": "token_revoked"})
        with self._lock:
            result, echo = self._method(team, method, params)
        if echo is not None and self.echo and team is not None:
            self.emit(team.id, echo)
        if fault == "500_after":
            return web.Response(status=503, text="upstream failure")
        if fault == "timeout_after":
            await asyncio.sleep(self.hang_seconds)
        if fault == "drop_after":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        return web.json_response(result)

    def _channel(self, team: Team, params: dict[str, Any]) -> Channel | None:
        return team.channels.get(str(params.get("channel") or params.get("channel_id") or ""))

    def _method(
        self, team: Team | None, method: str, p: dict[str, Any]
    ) -> tuple[dict, dict | None]:
        assert team is not None
        err = lambda code: ({"ok": False, "error": code}, None)  # noqa: E731
        if method == "auth.test":
            return {
                "ok": True,
                "team_id": team.id,
                "team": team.name,
                "user_id": team.bot_user,
                "bot_id": team.bot_id,
                "app_id": APP_ID,
                "url": f"https://{team.domain}.slack.com/",
            }, None
        if method == "team.info":
            return {
                "ok": True,
                "team": {
                    "id": team.id,
                    "name": team.name,
                    "domain": team.domain,
                    "icon": {"image_132": f"https://icons/{team.id}.png"},
                },
            }, None
        if method == "users.info":
            user = team.users.get(str(p.get("user")))
            return ({"ok": True, "user": user}, None) if user else err("user_not_found")
        if method == "users.lookupByEmail":
            for user in team.users.values():
                if user["profile"].get("email") == p.get("email"):
                    return {"ok": True, "user": user}, None
            return err("users_not_found")
        if method == "users.list":
            return {"ok": True, "members": list(team.users.values())}, None
        if method == "conversations.open":
            # https://api.slack.com/methods/conversations.open: a DM with the bot, reused.
            user = str(p.get("users") or "")
            if user not in team.users:
                return err("user_not_found")
            dm = team.channels.setdefault(
                f"D{user}", Channel(f"D{user}", user, members={team.bot_user, user}, private=True)
            )
            return {"ok": True, "channel": {"id": dm.id}}, None
        if method.startswith(("conversations.", "chat.", "reactions.")):
            channel = self._channel(team, p)
            if channel is None:
                return err("channel_not_found")
            return self._channel_method(team, channel, method, p)
        if method == "files.getUploadURLExternal":
            file_id = f"F{uuid.uuid4().hex[:10].upper()}"
            self._pending_uploads[file_id] = {"name": p.get("filename"), "team": team.id}
            return {
                "ok": True,
                "file_id": file_id,
                "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
            }, None
        if method == "files.delete":
            # https://api.slack.com/methods/files.delete: the file and its shares disappear;
            # an unknown id answers file_not_found, a deleted one file_deleted.
            file_id = str(p.get("file") or "")
            if file_id in self.deleted_files:
                return err("file_deleted")
            if file_id not in self.files:
                return err("file_not_found")
            del self.files[file_id]
            self.deleted_files.add(file_id)
            for ch in team.channels.values():
                for m in ch.messages:
                    if m.files and all(f.get("id") == file_id for f in m.files):
                        m.deleted = True
            return {"ok": True}, None
        if method == "files.completeUploadExternal":
            files = json.loads(p["files"]) if isinstance(p.get("files"), str) else p["files"]
            channel = team.channels.get(str(p.get("channel_id")))
            if channel is None:
                return err("channel_not_found")
            shared = []
            for f in files:
                info = self._pending_uploads.pop(f["id"], None)
                if info is None or f["id"] not in self.files:
                    return err("file_not_found")
                shared.append(
                    {
                        "id": f["id"],
                        "name": info["name"],
                        "title": f.get("title"),
                        "size": len(self.files[f["id"]]),
                        "url_private": f"http://127.0.0.1:{self.port}/files/{f['id']}",
                    }
                )
            msg = Message(
                ts=self._next_ts(),
                text="",
                bot_id=team.bot_id,
                app_id=APP_ID,
                thread_ts=p.get("thread_ts"),
                files=shared,
                subtype="file_share",
            )
            channel.messages.append(msg)
            echo = msg.wire() | {"channel": channel.id}
            return {"ok": True, "files": shared}, echo
        return err("unknown_method")

    def _channel_method(self, team: Team, ch: Channel, method: str, p: dict[str, Any]):
        err = lambda code: ({"ok": False, "error": code}, None)  # noqa: E731
        if method == "conversations.join":
            # https://api.slack.com/methods/conversations.join: only public channels can be
            # joined; a private one answers method_not_supported_for_channel_type.
            if ch.private:
                return err("method_not_supported_for_channel_type")
            already = team.bot_user in ch.members
            ch.members.add(team.bot_user)
            return {
                "ok": True,
                "channel": {"id": ch.id, "name": ch.name},
                **({"warning": "already_in_channel"} if already else {}),
            }, None
        if method == "conversations.leave":
            ch.members.discard(team.bot_user)
            return {"ok": True}, None
        if method == "conversations.info":
            return {
                "ok": True,
                "channel": {
                    "id": ch.id,
                    "name": ch.name,
                    "is_archived": ch.archived,
                    "is_member": team.bot_user in ch.members,
                },
            }, None
        if method in ("conversations.history", "conversations.replies"):
            msgs = [m for m in ch.messages if not m.deleted]
            if method == "conversations.replies":
                msgs = [m for m in msgs if m.ts == p.get("ts") or m.thread_ts == p.get("ts")]
            oldest = float(p.get("oldest") or 0)
            msgs = [m for m in msgs if float(m.ts) >= oldest]
            include_meta = str(p.get("include_all_metadata", "")).lower() in ("true", "1")
            wires = []
            for m in sorted(msgs, key=lambda m: m.ts, reverse=method == "conversations.history"):
                w = m.wire()
                if not include_meta:
                    w.pop("metadata", None)
                wires.append(w)
            return {
                "ok": True,
                "messages": wires[: int(p.get("limit") or 100)],
                "has_more": False,
            }, None
        if team.bot_user not in ch.members:
            return err("not_in_channel")
        if ch.archived:
            return err("is_archived")
        if method == "chat.postMessage":
            text = str(p.get("text") or "")
            if not text.strip() and not p.get("blocks"):
                return err("no_text")
            meta = p.get("metadata")
            meta = json.loads(meta) if isinstance(meta, str) else meta
            icons = {"image_48": p["icon_url"]} if p.get("icon_url") else None
            msg = Message(
                ts=self._next_ts(),
                text=text,
                bot_id=team.bot_id,
                app_id=APP_ID,
                username=p.get("username"),
                icons=icons,
                thread_ts=p.get("thread_ts"),
                metadata=meta,
                subtype="bot_message",
            )
            ch.messages.append(msg)
            return (
                {"ok": True, "channel": ch.id, "ts": msg.ts, "message": msg.wire()},
                msg.wire() | {"channel": ch.id},
            )
        if method in ("chat.update", "chat.delete"):
            try:
                msg = self._find(team.id, ch.id, str(p.get("ts")))
            except KeyError:
                return err("message_not_found")
            if msg.deleted:
                return err("message_not_found")
            if msg.bot_id != team.bot_id:
                return err(
                    "cant_update_message" if method == "chat.update" else "cant_delete_message"
                )
            previous = msg.wire()
            if method == "chat.update":
                msg.text, msg.edited = str(p.get("text") or ""), True
                echo = {
                    "type": "message",
                    "subtype": "message_changed",
                    "channel": ch.id,
                    "message": msg.wire(),
                    "previous_message": previous,
                }
                return {"ok": True, "channel": ch.id, "ts": msg.ts, "text": msg.text}, echo
            msg.deleted = True
            echo = {
                "type": "message",
                "subtype": "message_deleted",
                "channel": ch.id,
                "deleted_ts": msg.ts,
                "previous_message": previous,
            }
            return {"ok": True, "channel": ch.id, "ts": msg.ts}, echo
        if method in ("reactions.add", "reactions.remove"):
            try:
                msg = self._find(team.id, ch.id, str(p.get("timestamp")))
            except KeyError:
                return err("message_not_found")
            name = str(p.get("name"))
            if name.startswith("custom_missing"):
                return err("invalid_name")
            users = msg.reactions.setdefault(name, [])
            if method == "reactions.add":
                if team.bot_user in users:
                    return err("already_reacted")
                users.append(team.bot_user)
            else:
                if team.bot_user not in users:
                    return err("no_reaction")
                users.remove(team.bot_user)
            echo = {
                "type": "reaction_added" if method == "reactions.add" else "reaction_removed",
                "user": team.bot_user,
                "reaction": name,
                "item": {"type": "message", "channel": ch.id, "ts": msg.ts},
            }
            return {"ok": True}, echo
        return err("unknown_method")

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if file_id not in self._pending_uploads:
            return web.Response(status=404)
        self.files[file_id] = await request.read()
        return web.Response(text=f"OK - {len(self.files[file_id])}")

    async def _download(self, request: web.Request) -> web.Response:
        if self._team_for(request.headers.get("Authorization")) is None:
            return web.Response(status=302, headers={"Location": "https://slack.com/signin"})
        data = self.files.get(request.match_info["file_id"])
        return web.Response(body=data) if data is not None else web.Response(status=404)

    def add_file(
        self, content: bytes, name: str = "file.bin", mimetype: str = "application/octet-stream"
    ) -> dict[str, Any]:
        file_id = f"F{uuid.uuid4().hex[:10].upper()}"
        self.files[file_id] = content
        url = f"http://127.0.0.1:{self.port}/files/{file_id}"
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "size": len(content),
            "url_private": url,
            "url_private_download": url,
        }

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application(client_max_size=200 * 1024 * 1024)
            app.router.add_route("*", "/api/{method}", self._api)
            app.router.add_post("/upload/{file_id}", self._upload)
            app.router.add_get("/files/{file_id}", self._download)
            self._runner = web.AppRunner(app)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self._session = self._loop.run_until_complete(self._new_session())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-slack")
        self._thread.start()
        ready.wait(10)
        return self

    async def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def stop(self) -> None:
        async def close() -> None:
            for worker in self._workers:
                worker.cancel()
            await self._session.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
