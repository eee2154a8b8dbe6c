"""The Slack Web API as syncbot uses it: paced, and every failure mapped to a RemoteError.

slack_sdk's ``AsyncWebClient`` does the HTTP; we switch off its own retry handlers because the
outbox owns retries (a retry inside one attempt would hide a 429's Retry-After from it and could
repeat a post whose first attempt actually landed).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from app.errors import RemoteError
from app.slack.http_pool import HttpPool
from app.slack.ratelimit import RateLimiter

log = logging.getLogger("syncbot.slack.api")

# Methods whose effect may have happened although we saw no answer.
WRITE_METHODS = frozenset(
    {
        "chat.postMessage",
        "chat.update",
        "chat.delete",
        "reactions.add",
        "reactions.remove",
        "files.completeUploadExternal",
        "conversations.join",
        "conversations.leave",
    }
)
# Slack error codes worth another attempt later.
RETRYABLE_CODES = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# Errors that mean an operation is already in the state we wanted.
IDEMPOTENT_OK = {
    "chat.delete": {"message_not_found"},
    "files.delete": {"file_not_found", "file_deleted"},
    "reactions.add": {"already_reacted"},
    "reactions.remove": {"no_reaction"},
    "conversations.join": {"already_in_channel"},
    "conversations.leave": {"not_in_channel"},
}


class SlackApi:
    """One workspace's bot token, paced by a shared :class:`RateLimiter`."""

    def __init__(
        self,
        *,
        token: str,
        team_id: str,
        base_url: str,
        limiter: RateLimiter,
        timeout: float = 10.0,
        pool: HttpPool | None = None,
    ) -> None:
        self.team_id = team_id
        self._limiter = limiter
        self._timeout = timeout
        self._pool = pool
        self._client = self._new_client(token, base_url, session=None)
        # The client bound to the pooled session (a session belongs to its event loop).
        self._pooled: AsyncWebClient | None = None

    def _new_client(
        self, token: str, base_url: str, *, session: aiohttp.ClientSession | None
    ) -> AsyncWebClient:
        return AsyncWebClient(
            token=token,
            base_url=base_url,
            timeout=int(max(1, self._timeout)),
            retry_handlers=[],
            session=session,
        )

    def _client_now(self) -> AsyncWebClient:
        session = self._pool.session() if self._pool is not None else None
        if session is None:
            return self._client
        if self._pooled is None or self._pooled.session is not session:
            self._pooled = self._new_client(self.token, self._client.base_url, session=session)
        return self._pooled

    @property
    def token(self) -> str:
        return str(self._client.token)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Call ``method`` and return Slack's JSON body.

        Raises:
            RemoteError: for every failure, with ``retryable``/``retry_after``/
                ``outcome_unknown`` set from what Slack (or the network) said.
        """
        channel = params.get("channel")
        await self._limiter.acquire(
            self.team_id, method, channel if isinstance(channel, str) else None
        )
        data = {
            k: json.dumps(v) if isinstance(v, dict | list) else v
            for k, v in params.items()
            if v is not None
        }
        write = method in WRITE_METHODS
        try:
            # This bound is the call's timeout: slack-sdk applies its own ``timeout`` only to
            # sessions it makes, not to the pooled session serve's loop shares.
            response = await asyncio.wait_for(
                self._client_now().api_call(method, data=data), timeout=self._timeout
            )
            return dict(response.data) if isinstance(response.data, dict) else {}
        except SlackApiError as exc:
            return self._api_error(method, exc, write)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise RemoteError(
                f"{method} timed out", network="slack", retryable=True, outcome_unknown=write
            ) from exc
        except aiohttp.ClientError as exc:
            # A dropped connection after the request was sent may still have taken effect.
            raise RemoteError(
                f"{method} connection failed: {type(exc).__name__}",
                network="slack",
                retryable=True,
                outcome_unknown=write,
            ) from exc

    def _api_error(self, method: str, exc: SlackApiError, write: bool) -> dict[str, Any]:
        response = exc.response
        status = getattr(response, "status_code", None)
        body = response.data if isinstance(getattr(response, "data", None), dict) else {}
        code = str(body.get("error") or "")
        if code and code in IDEMPOTENT_OK.get(method, ()):
            return {"ok": True, "already": code}
        if status == 429 or code == "ratelimited":
            headers = getattr(response, "headers", {}) or {}
            retry_after = _retry_after(headers)
            self._limiter.pause(self.team_id, method, retry_after)
            raise RemoteError(
                f"{method} rate limited",
                network="slack",
                status=429,
                code="ratelimited",
                retryable=True,
                retry_after=retry_after,
            ) from exc
        if status is not None and status >= 500:
            raise RemoteError(
                f"{method} failed with HTTP {status}",
                network="slack",
                status=status,
                code=code or None,
                retryable=True,
                outcome_unknown=write,
            ) from exc
        raise RemoteError(
            f"{method}: {code or f'HTTP {status}'}",
            network="slack",
            status=status,
            code=code or None,
            retryable=code in RETRYABLE_CODES,
        ) from exc


def _retry_after(headers: Any) -> float:
    value = None
    for key in ("Retry-After", "retry-after"):
        raw = headers.get(key)
        if raw:
            value = raw[0] if isinstance(raw, list) else raw
            break
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0
