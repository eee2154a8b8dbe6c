"""Slack Socket Mode: one WebSocket per workspace with an app token, on aiohttp directly.

slack_sdk's clients reconnect on their own terms (close first, then open; no Failed state, no
control over ``apps.connections.open`` pacing), so the seed's state machine is written out here:

* disconnected -> requesting_url (``apps.connections.open``, paced by the shared rate limiter
  at Slack's tier 1; a 429 waits its ``Retry-After``) -> connecting -> connected on ``hello``;
* ``disconnect`` with ``warning`` or ``refresh_requested``: refreshing, and the next connection
  is opened *before* the old one is closed, which keeps reading until then;
* a dropped socket or a network error: reconnect with capped, jittered backoff;
* an authentication error (or ``link_disabled``): failed, visible in health, never retried in a
  loop; a new token (``login app``) starts a fresh client.

Every envelope goes through :meth:`SlackEvents.process`, the same path as HTTP events, so the
relay's claim on ``event_id`` deduplicates across both transports. The ack is sent once the
relay has recorded the event (before any delivery), well inside Slack's 3 seconds; an envelope
we could not record is left unacknowledged so that Slack sends it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from starlette.responses import Response

from app.errors import RemoteError
from app.slack.ratelimit import RateLimiter
from app.slack.socket_state import Backoff, ConnectionBoard, ConnectionState
from app.slack.webapi import SlackApi

log = logging.getLogger("syncbot.slack.socket")

DONE_MEMORY = 10_000  # envelope ids remembered as recorded (minutes of traffic)
ACK_DEADLINE = 3.0  # Slack redelivers an envelope not acknowledged within 3 seconds.
ENVELOPE_TYPES = frozenset({"events_api", "interactive", "slash_commands"})
# Disconnect reasons that announce a routine refresh: reconnect now, old socket still works.
REFRESH_REASONS = frozenset({"warning", "refresh_requested"})
# Socket Mode was switched off for the app: retrying cannot help until an operator acts.
FATAL_REASONS = frozenset({"link_disabled"})

# Envelope payload in, HTTP-style response out (``SlackEvents.process``).
EnvelopeHandler = Callable[[dict[str, Any]], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class SocketTimings:
    """Tunables of one client; production uses the defaults, tests shrink them.

    Attributes:
        backoff: delays between failed attempts.
        hello_timeout: how long a new socket may take to say ``hello``.
        heartbeat: WebSocket ping interval; a silent peer is dropped after twice this.
        ack_deadline: Slack's acknowledgement deadline (a late ack is logged and counted).
    """

    backoff: Backoff = field(default_factory=Backoff)
    hello_timeout: float = 10.0
    heartbeat: float = 30.0
    ack_deadline: float = ACK_DEADLINE


class _ConnectFailed(Exception):
    """One attempt failed; ``retry_after`` overrides the backoff, ``fatal`` stops the client."""

    def __init__(self, code: str, *, retry_after: float | None = None, fatal: bool = False):
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after
        self.fatal = fatal


class _Connection:
    """One WebSocket: reads frames until it ends and reports why it ended."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, serial: int) -> None:
        self.ws = ws
        self.serial = serial
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.reader: asyncio.Task[None] | None = None

    def end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader


class SocketModeClient:
    """The Socket Mode connection of one workspace.

    Args:
        team_id: the workspace.
        app_token: its app-level token (``xapp-``); never logged.
        handler: where envelope payloads go (``SlackEvents.process``).
        board: where state transitions are recorded.
        api_url: the Web API base URL (``apps.connections.open``).
        limiter: the shared Web API pacer (tier 1 for ``apps.connections.open``).
        timings: backoff and timeouts.
        rng: jitter source (seeded in tests).
    """

    def __init__(
        self,
        *,
        team_id: str,
        app_token: str,
        handler: EnvelopeHandler,
        board: ConnectionBoard,
        api_url: str,
        limiter: RateLimiter,
        timings: SocketTimings | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.team_id = team_id
        self._api = SlackApi(token=app_token, team_id=team_id, base_url=api_url, limiter=limiter)
        self._handler = handler
        self._board = board
        self._timings = timings or SocketTimings()
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[tuple[float, dict[str, Any]]] = asyncio.Queue()
        # Envelopes queued or being handled -> the newest socket they arrived on (the one to
        # ack on); a redelivery of a queued envelope only updates this, so a slow database
        # does not turn Slack's redeliveries into an ever longer queue.
        self._inflight: dict[str, _Connection] = {}
        # Envelopes recorded recently: a redelivery (our ack was lost with its socket) is
        # acknowledged at once.
        self._done: OrderedDict[str, None] = OrderedDict()
        self._worker: asyncio.Task[None] | None = None
        self._connections: set[_Connection] = set()
        self._serial = 0
        self._attempts = 0
        self.acked = 0
        self.late_acks = 0

    @property
    def state(self) -> ConnectionState:
        snap = self._board.get(self.team_id)
        return snap.state if snap else ConnectionState.DISCONNECTED

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start connecting in the background; returns at once."""
        if self.running:
            return
        self._session = aiohttp.ClientSession()
        self._set(ConnectionState.DISCONNECTED)
        self._worker = asyncio.create_task(self._dispatch(), name=f"socket-{self.team_id}-events")
        self._task = asyncio.create_task(self._run(), name=f"socket-{self.team_id}")

    async def stop(self) -> None:
        """Close every socket.

        Envelopes received but not yet acknowledged are left to Slack, which redelivers them
        (to this or another instance); the relay's claim dedupes.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for conn in list(self._connections):
            await conn.close()
        self._connections.clear()
        if self._worker is not None:
            # Envelopes in the queue were received but not acked: Slack redelivers them, so
            # stopping need not wait for them.
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.state is not ConnectionState.FAILED:
            self._set(ConnectionState.STOPPED)

    # -- the state machine ----------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._machine()
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug must not leave the workspace looking connected while nothing is read.
            log.exception("socket mode client crashed", extra={"team_id": self.team_id})
            self._set(ConnectionState.FAILED, detail="internal error", error=True)

    async def _machine(self) -> None:
        current = await self._connect()
        while current is not None:
            reason = await current.ended
            if reason in REFRESH_REASONS:
                self._set(ConnectionState.REFRESHING, detail=reason)
                log.info(
                    "socket mode refresh requested",
                    extra={"team_id": self.team_id, "reason": reason},
                )
                # The old socket keeps reading until the new one has said hello.
                replacement = await self._connect()
                await self._retire(current)
                current = replacement
            elif reason in FATAL_REASONS:
                await self._retire(current)
                self._fail(reason)
                return
            else:
                await self._retire(current)
                self._set(ConnectionState.DISCONNECTED, detail=reason, error=True)
                log.warning(
                    "socket mode disconnected, reconnecting",
                    extra={"team_id": self.team_id, "reason": reason},
                )
                current = await self._connect()

    async def _connect(self) -> _Connection | None:
        """Open connections until one says hello; ``None`` when failed for good."""
        while True:
            try:
                return await self._attempt()
            except _ConnectFailed as exc:
                if exc.fatal:
                    self._fail(exc.code)
                    return None
                self._attempts += 1
                if exc.retry_after is not None:
                    delay = exc.retry_after
                else:
                    delay = self._timings.backoff.delay(self._attempts, self._rng)
                self._set(
                    ConnectionState.DISCONNECTED,
                    detail=exc.code,
                    attempts=self._attempts,
                    error=True,
                )
                log.warning(
                    "socket mode connection failed, reconnecting",
                    extra={
                        "team_id": self.team_id,
                        "error": exc.code,
                        "attempt": self._attempts,
                        "delay_s": round(delay, 2),
                    },
                )
                await asyncio.sleep(delay)

    async def _attempt(self) -> _Connection:
        self._set(ConnectionState.REQUESTING_URL)
        url = await self._open_url()
        self._set(ConnectionState.CONNECTING)
        assert self._session is not None
        try:
            ws = await asyncio.wait_for(
                self._session.ws_connect(url, heartbeat=self._timings.heartbeat, autoping=True),
                self._timings.hello_timeout,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _ConnectFailed(f"connect: {type(exc).__name__}") from exc
        self._serial += 1
        conn = _Connection(ws, self._serial)
        try:
            hello = await asyncio.wait_for(self._first_frame(ws), self._timings.hello_timeout)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            await conn.close()
            raise _ConnectFailed(f"hello: {type(exc).__name__}") from exc
        if hello.get("type") != "hello":
            await conn.close()
            raise _ConnectFailed(f"hello: unexpected {hello.get('type')!r}")
        self._connections.add(conn)
        conn.reader = asyncio.create_task(
            self._read(conn), name=f"socket-{self.team_id}-{conn.serial}"
        )
        self._attempts = 0
        self._set(ConnectionState.CONNECTED, attempts=0)
        log.info(
            "connected to Slack via socket mode",
            extra={
                "team_id": self.team_id,
                "connection": conn.serial,
                "num_connections": hello.get("num_connections"),
            },
        )
        return conn

    async def _open_url(self) -> str:
        try:
            body = await self._api.call("apps.connections.open")
        except RemoteError as exc:
            code = exc.code or "error"
            if exc.status == 429 or code == "ratelimited":
                wait = exc.retry_after or self._timings.backoff.rate_limited
                raise _ConnectFailed("ratelimited", retry_after=wait) from exc
            # invalid_auth, token_revoked, not_allowed_token_type...: only a new token helps.
            raise _ConnectFailed(code, fatal=not exc.retryable) from exc
        url = body.get("url")
        if not isinstance(url, str) or not url:
            raise _ConnectFailed("apps.connections.open: no url")
        return url

    @staticmethod
    async def _first_frame(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        msg = await ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise aiohttp.ClientError(f"socket closed before hello ({msg.type.name})")
        frame = json.loads(msg.data)
        if not isinstance(frame, dict):
            raise ValueError("hello is not an object")
        return frame

    async def _retire(self, conn: _Connection) -> None:
        self._connections.discard(conn)
        await conn.close()

    def _fail(self, code: str) -> None:
        self._set(ConnectionState.FAILED, detail=code, attempts=self._attempts, error=True)
        log.error(
            "socket mode authentication failed; not retrying until the token is replaced",
            extra={"team_id": self.team_id, "error": code},
        )

    def _set(
        self,
        state: ConnectionState,
        *,
        detail: str | None = None,
        attempts: int | None = None,
        error: bool = False,
    ) -> None:
        self._board.set_state(self.team_id, state, detail=detail, attempts=attempts, error=error)

    # -- frames and envelopes -------------------------------------------------------------

    async def _read(self, conn: _Connection) -> None:
        reason = "closed"
        try:
            async for msg in conn.ws:
                if msg.type is not aiohttp.WSMsgType.TEXT:
                    if msg.type is aiohttp.WSMsgType.ERROR:
                        reason = "socket error"
                        break
                    continue
                try:
                    frame = json.loads(msg.data)
                except ValueError:
                    log.warning("socket mode: unparsable frame", extra={"team_id": self.team_id})
                    continue
                if not isinstance(frame, dict):
                    continue
                kind = frame.get("type")
                if kind == "disconnect":
                    reason = str(frame.get("reason") or "disconnect")
                    # Keep reading on a refresh: envelopes may still arrive on this socket
                    # until the replacement is up.
                    conn.end(reason)
                    if reason not in REFRESH_REASONS:
                        break
                elif kind in ENVELOPE_TYPES and frame.get("envelope_id"):
                    self._board.event_seen(self.team_id)
                    await self._receive(conn, frame)
        except (aiohttp.ClientError, OSError) as exc:
            reason = f"network: {type(exc).__name__}"
        finally:
            conn.end(reason)

    async def _receive(self, conn: _Connection, frame: dict[str, Any]) -> None:
        envelope_id = str(frame["envelope_id"])
        if envelope_id in self._done:
            await self._ack(conn, frame, time.monotonic())
        elif envelope_id in self._inflight:
            self._inflight[envelope_id] = conn
        else:
            self._inflight[envelope_id] = conn
            self._queue.put_nowait((time.monotonic(), frame))

    async def _dispatch(self) -> None:
        # One consumer per workspace: envelopes are handled in arrival order, across
        # connections, which keeps per-channel order through a refresh.
        while True:
            received, frame = await self._queue.get()
            envelope_id = str(frame["envelope_id"])
            try:
                await self._handle(envelope_id, frame, received)
            except Exception:
                log.exception("socket mode envelope failed", extra={"team_id": self.team_id})
            finally:
                self._inflight.pop(envelope_id, None)

    async def _handle(self, envelope_id: str, frame: dict[str, Any], received: float) -> None:
        payload = frame.get("payload")
        reply: dict[str, Any] | None = None
        if isinstance(payload, dict):
            response = await self._handler(payload)
            if response.status_code >= 500:
                # Not recorded: no ack, so Slack delivers it again (the claim dedupes).
                log.warning(
                    "socket mode envelope not recorded; leaving it for redelivery",
                    extra={"team_id": self.team_id, "envelope_type": frame.get("type")},
                )
                return
            if frame.get("accepts_response_payload") and response.body:
                with contextlib.suppress(ValueError):
                    parsed = json.loads(bytes(response.body))
                    reply = parsed if isinstance(parsed, dict) else None
        self._done[envelope_id] = None
        while len(self._done) > DONE_MEMORY:
            self._done.popitem(last=False)
        conn = self._inflight.get(envelope_id)
        if conn is not None:
            await self._ack(conn, frame, received, reply)

    async def _ack(
        self,
        conn: _Connection,
        frame: dict[str, Any],
        received: float,
        reply: dict[str, Any] | None = None,
    ) -> None:
        ack: dict[str, Any] = {"envelope_id": frame["envelope_id"]}
        if reply is not None:
            ack["payload"] = reply
        try:
            await conn.ws.send_str(json.dumps(ack))
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            # The socket went away first: Slack will redeliver, and the claim dedupes.
            return
        self.acked += 1
        elapsed = time.monotonic() - received
        if elapsed > self._timings.ack_deadline:
            self.late_acks += 1
            log.warning(
                "socket mode ack missed the deadline",
                extra={"team_id": self.team_id, "elapsed_s": round(elapsed, 2)},
            )
