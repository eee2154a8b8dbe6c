"""Events API delivery: ``event_callback`` envelopes, v0 signing, Slack's HTTP retry policy.

Slack POSTs each event to the app's Request URL, signed with the app's signing secret. If the app
answers non-2xx (``http_error``) or not within 3 s (``http_timeout``), Slack retries up to three
times with ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason`` and the same ``event_id``
(https://docs.slack.dev/apis/events-api/#retries; signing:
https://docs.slack.dev/authentication/verifying-requests-from-slack). Slack's real delays are
immediate, ~1 min and ~5 min; ``EventSettings.retry_delays`` shrinks them for tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .model import APP_ID, Installation


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack v0 request-signing headers for exactly ``body``.

    Args:
        secret: The app's signing secret.
        body: The raw request body that will be sent.
        timestamp: Unix time to sign with (default: now).

    Returns:
        ``X-Slack-Request-Timestamp`` and ``X-Slack-Signature`` headers.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Delivery:
    """One delivery attempt of an envelope (HTTP POST or socket frame)."""

    event_id: str
    team_id: str
    envelope: dict[str, Any]
    attempt: int
    transport: str
    status: int | None = None
    retry_reason: str | None = None
    at: float = field(default_factory=time.monotonic)


@dataclass
class EventSettings:
    """Tunable delivery behaviour (defaults as Slack; shrink the timings in tests)."""

    app_url: str | None = None
    enabled: bool = True
    timeout: float = 3.0
    retry_delays: tuple[float, ...] = (0.05, 0.05, 0.05)
    verification_token: str = "fake-verification-token"
    disabled_teams: set[str] = field(default_factory=set)
    # Per-workspace Request URLs (several app processes, one per workspace); else ``app_url``.
    team_urls: dict[str, str] = field(default_factory=dict)
    ordered: bool = True
    # The app's ``bot_events`` subscriptions (its manifest); None delivers every event. Slack
    # sends an app only the events it subscribed to: https://api.slack.com/events-api
    # (``message.channels``/``.groups``/``.im``/``.mpim`` by the message's ``channel_type``).
    bot_events: tuple[str, ...] | None = None
    # Its ``user_events``: events in conversations of members who authorized the app (a user
    # token) reach it only through these, with that member in ``authorizations``
    # (https://docs.slack.dev/apis/events-api/#event-type-structure,
    # https://docs.slack.dev/reference/events/message.im: "user" and "bot" event). None
    # subscribed unless the manifest says so.
    user_events: tuple[str, ...] = ()


_MESSAGE_SUBSCRIPTION = {
    "channel": "message.channels",
    "group": "message.groups",
    "im": "message.im",
    "mpim": "message.mpim",
}


def subscribed(event: dict[str, Any], bot_events: tuple[str, ...] | None) -> bool:
    """Whether an app subscribed to ``bot_events`` receives ``event``."""
    if bot_events is None:
        return True
    if event.get("type") == "message":
        return _MESSAGE_SUBSCRIPTION.get(str(event.get("channel_type"))) in bot_events
    return event.get("type") in bot_events


class EventBus:
    """Builds envelopes and delivers them over HTTP or to a Socket Mode sender."""

    def __init__(
        self,
        signing_secret: str,
        settings: EventSettings,
        socket_sender: Callable[[str, dict[str, Any], str], Awaitable[bool]],
    ) -> None:
        self.signing_secret = signing_secret
        self.settings = settings
        self.deliveries: list[Delivery] = []
        self.emitted: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._socket_sender = socket_sender
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._team_locks: dict[str, asyncio.Lock] = {}

    def envelope(
        self,
        inst: Installation,
        event: dict[str, Any],
        *,
        ext_shared: bool = False,
        as_user: str | None = None,
    ) -> dict[str, Any]:
        """Wrap ``event`` in an ``event_callback`` envelope for the workspace of ``inst``
        (``ext_shared``: the event happened in a Slack Connect channel; ``as_user``: it
        reaches the app through that member's authorization, not its bot's)."""
        n = next(self._ids)
        return {
            "token": self.settings.verification_token,
            "team_id": inst.team_id,
            "context_team_id": inst.team_id,
            "context_enterprise_id": None,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{n:010d}",
            "event_time": int(float(event.get("event_ts", time.time()))),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": inst.team_id,
                    "user_id": as_user or inst.bot_user_id,
                    "is_bot": as_user is None,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": ext_shared,
            "event_context": f"4-fake-{inst.team_id}-{n}",
        }

    def emit(
        self,
        inst: Installation | None,
        event: dict[str, Any],
        *,
        ext_shared: bool = False,
        as_user: str | None = None,
    ) -> str | None:
        """Deliver ``event`` to the app installed by ``inst`` (must run on the fake's loop).

        Returns:
            The ``event_id`` if the event goes out, ``None`` if delivery is off or not installed.
        """
        event.setdefault("event_ts", event.get("ts") or f"{time.time():.6f}")
        if inst is None or (
            inst.revoked and event["type"] not in ("tokens_revoked", "app_uninstalled")
        ):
            return None
        if not self.settings.enabled or inst.team_id in self.settings.disabled_teams:
            return None
        events = self.settings.user_events if as_user else self.settings.bot_events
        if not subscribed(event, events):
            return None
        env = self.envelope(inst, event, ext_shared=ext_shared, as_user=as_user)
        self.emitted.append(env)
        task = asyncio.get_running_loop().create_task(self._deliver(inst, env))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return str(env["event_id"])

    @property
    def pending(self) -> int:
        """Number of envelopes still being delivered or retried."""
        return len(self._tasks)

    async def _deliver(self, inst: Installation, env: dict[str, Any]) -> None:
        if not self.settings.ordered:
            await self._deliver_now(inst, env)
            return
        # Slack promises no order; serialising per workspace keeps test expectations simple.
        lock = self._team_locks.setdefault(inst.team_id, asyncio.Lock())
        async with lock:
            await self._deliver_now(inst, env)

    async def _deliver_now(self, inst: Installation, env: dict[str, Any]) -> None:
        if inst.socket_mode:
            await self._socket_sender(inst.team_id, env, "events_api")
            return
        url = self.settings.team_urls.get(inst.team_id, self.settings.app_url)
        if not url:
            return
        body = json.dumps(env).encode()
        reason: str | None = None
        for attempt in range(len(self.settings.retry_delays) + 1):
            if attempt:
                await asyncio.sleep(self.settings.retry_delays[attempt - 1])
            headers = {"Content-Type": "application/json", **sign(self.signing_secret, body)}
            if attempt:
                headers["X-Slack-Retry-Num"] = str(attempt)
                headers["X-Slack-Retry-Reason"] = reason or "http_error"
            record = Delivery(
                env["event_id"],
                inst.team_id,
                env,
                attempt,
                "http",
                retry_reason=reason if attempt else None,
            )
            self.deliveries.append(record)
            try:
                session = await self._get_session()
                timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
                async with session.post(url, data=body, headers=headers, timeout=timeout) as r:
                    await r.read()
                    record.status = r.status
                    if 200 <= r.status < 300:
                        return
                    reason = "http_error"
            except TimeoutError:
                reason = "http_timeout"
            except aiohttp.ClientError:
                reason = "connection_failed"

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Cancel outstanding deliveries and close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
