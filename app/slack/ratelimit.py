"""Client-side pacing that follows Slack's rate-limit tiers, so we rarely see a 429.

Limits are per (workspace, method), except ``chat.postMessage`` which Slack limits to about one
message per second per channel with short bursts. ``scale`` speeds every bucket up uniformly
(tests and benchmarks against the fake Slack use it; production leaves it at 1).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

# Requests per minute by tier (api.slack.com/apis/rate-limits).
TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}

METHOD_TIERS: dict[str, int] = {
    "apps.connections.open": 1,
    "oauth.v2.access": 4,
    "auth.test": 4,
    "team.info": 3,
    "users.info": 4,
    "users.list": 2,
    "users.lookupByEmail": 3,
    "users.profile.get": 4,
    "conversations.info": 3,
    "conversations.list": 2,
    "conversations.join": 3,
    "conversations.leave": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.members": 4,
    "conversations.open": 3,
    "chat.update": 3,
    "chat.delete": 3,
    "chat.getPermalink": 4,
    "reactions.add": 3,
    "reactions.remove": 2,
    "emoji.list": 2,
    "views.publish": 4,
    "views.open": 4,
    "files.info": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "files.delete": 3,
}
DEFAULT_TIER = 3
POST_PER_SECOND = 1.0
POST_BURST = 5


@dataclass
class _Bucket:
    rate: float  # tokens per second
    capacity: float
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets keyed by (workspace, method[, channel]); ``acquire`` waits for a token."""

    def __init__(self, *, scale: float = 1.0) -> None:
        self._scale = scale
        self._buckets: dict[tuple[str, ...], _Bucket] = {}
        self._lock = asyncio.Lock()
        # A 429 pauses the whole (workspace, method) until Slack's Retry-After has passed.
        self._paused_until: dict[tuple[str, str], float] = {}

    def _limits(self, method: str) -> tuple[float, float]:
        if method == "chat.postMessage":
            return POST_PER_SECOND * self._scale, POST_BURST
        per_minute = TIER_PER_MINUTE[METHOD_TIERS.get(method, DEFAULT_TIER)]
        # Slack tolerates short bursts above the per-minute figure; allow a few.
        return per_minute / 60.0 * self._scale, max(1.0, min(per_minute / 10.0, 10.0))

    def _key(self, team: str, method: str, channel: str | None) -> tuple[str, ...]:
        if method == "chat.postMessage" and channel:
            return (team, method, channel)
        return (team, method)

    async def acquire(self, team: str, method: str, channel: str | None = None) -> None:
        """Wait until a call of ``method`` in ``team`` (to ``channel``) fits the limits."""
        key = self._key(team, method, channel)
        while True:
            async with self._lock:
                now = time.monotonic()
                pause = self._paused_until.get((team, method), 0.0) - now
                bucket = self._buckets.get(key)
                if bucket is None:
                    rate, capacity = self._limits(method)
                    bucket = self._buckets[key] = _Bucket(rate, capacity, capacity, now)
                bucket.tokens = min(
                    bucket.capacity, bucket.tokens + (now - bucket.stamp) * bucket.rate
                )
                bucket.stamp = now
                if pause <= 0 and bucket.tokens >= 1:
                    bucket.tokens -= 1
                    return
                wait = max(pause, (1 - bucket.tokens) / bucket.rate)
            await asyncio.sleep(wait)

    def pause(self, team: str, method: str, seconds: float) -> None:
        """Honour a 429's ``Retry-After`` for every later call of this method."""
        until = time.monotonic() + seconds
        current = self._paused_until.get((team, method), 0.0)
        self._paused_until[(team, method)] = max(current, until)
