"""The Slack Web API as syncbot uses it: paced, and every failure mapped to a RemoteError.

slack_sdk's ``AsyncWebClient`` does the HTTP; we switch off its own retry handlers because the
outbox owns retries (a retry inside one attempt would hide a 429's Retry-After from it and could
repeat a post whose first attempt actually landed).

The one exception is the delivery hot path: ``chat.postMessage`` on a loop with a pooled session
(serve's worker) is sent as one pre-encoded JSON request on that session, as slack_sdk's own
``chat_postMessage`` sends it (Slack takes JSON bodies for write methods with a bearer token:
https://api.slack.com/web#posting_json). slack_sdk's per-call request assembly (argument
dictionaries, header merging, form encoding, debug-log formatting, its response object) cost
about a fifth of a delivery's CPU. Its answers are judged by the same rules as slack_sdk's.
Sent straight to Slack, the request goes through :mod:`app.slack.http1`, a lean keep-alive
client (aiohttp's client machinery was most of what was left of that call's cost); through a
proxy (``HTTPS_PROXY``/``HTTP_PROXY``, which slack_sdk reads) it stays on the aiohttp session,
which speaks to proxies.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urljoin

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.internal_utils import get_user_agent

from app.errors import RemoteError
from app.slack import http1
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
# Methods sent as our own JSON request on a pooled session (the per-delivery hot path).
DIRECT_METHODS = frozenset({"chat.postMessage"})
# Arguments our callers pass as Slack's form booleans ("true"/"false"), real booleans in JSON.
JSON_BOOLEANS = frozenset({"reply_broadcast", "unfurl_links", "unfurl_media", "mrkdwn"})
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
        # What every direct request carries, built once.
        self._urls: dict[str, str] = {}
        self._endpoints: dict[str, http1.Endpoint] = {}
        self._json_headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": get_user_agent(),
        }

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
        write = method in WRITE_METHODS
        if method in DIRECT_METHODS and self._pool is not None:
            # The lean client connects only straight to Slack; through a proxy, aiohttp.
            lean = None if self._client.proxy else self._pool.lean()
            if lean is not None:
                return await self._lean(lean, method, params, write)
            session = self._pool.session()
            if session is not None:
                return await self._direct(session, method, params, write)
        data = {
            k: json.dumps(v) if isinstance(v, dict | list) else v
            for k, v in params.items()
            if v is not None
        }
        try:
            # This bound is the call's timeout: slack-sdk applies its own ``timeout`` only to
            # sessions it makes, not to the pooled session serve's loop shares.
            response = await asyncio.wait_for(
                self._client_now().api_call(method, data=data), timeout=self._timeout
            )
            return dict(response.data) if isinstance(response.data, dict) else {}
        except SlackApiError as exc:
            return self._api_error(method, exc, write)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(method, exc, write) from exc

    async def _lean(
        self, client: http1.Http1Client, method: str, params: dict[str, Any], write: bool
    ) -> dict[str, Any]:
        """``method`` as one JSON request on the lean client; failures as in ``call``."""
        endpoint = self._endpoints.get(method)
        if endpoint is None:
            endpoint = self._endpoints[method] = http1.Endpoint(
                self._url(method), self._json_headers
            )
        try:
            # One bound for connect, send and answer, as the slack_sdk path has.
            res = await client.post(endpoint, _json_body(params), self._timeout)
        except (TimeoutError, http1.HttpError) as exc:
            raise _transport_error(method, exc, write) from exc
        return self._answer(method, res.status, res.headers, res.body, write)

    async def _direct(
        self, session: aiohttp.ClientSession, method: str, params: dict[str, Any], write: bool
    ) -> dict[str, Any]:
        """``method`` as one JSON request on the pooled ``session``; failures as in ``call``."""
        body = _json_body(params)
        try:
            # One bound for connect, send and answer, as the slack_sdk path has.
            async with asyncio.timeout(self._timeout):
                async with session.post(
                    self._url(method),
                    data=body,
                    headers=self._json_headers,
                    # The proxy slack_sdk found in HTTPS_PROXY/HTTP_PROXY, as its calls use.
                    proxy=self._client.proxy or None,
                ) as res:
                    status, headers, raw = res.status, res.headers, await res.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _transport_error(method, exc, write) from exc
        return self._answer(method, status, headers, raw, write)

    def _answer(
        self, method: str, status: int, headers: Any, raw: bytes, write: bool
    ) -> dict[str, Any]:
        """A direct request's answer: Slack's JSON body, or its failure as in ``call``."""
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None  # a proxy's error page: judged by its status below
        answer = data if isinstance(data, dict) else {}
        if status == 200 and answer.get("ok"):
            return answer
        return self._failure(method, status, answer, headers, write, None)

    def _url(self, method: str) -> str:
        url = self._urls.get(method)
        if url is None:
            # Joined as slack_sdk joins it, so both paths reach the same address.
            url = self._urls[method] = urljoin(str(self._client.base_url), method)
        return url

    def _api_error(self, method: str, exc: SlackApiError, write: bool) -> dict[str, Any]:
        response = exc.response
        status = getattr(response, "status_code", None)
        body = response.data if isinstance(getattr(response, "data", None), dict) else {}
        headers = getattr(response, "headers", {}) or {}
        return self._failure(method, status, body, headers, write, exc)

    def _failure(
        self,
        method: str,
        status: int | None,
        body: dict[str, Any],
        headers: Any,
        write: bool,
        cause: Exception | None,
    ) -> dict[str, Any]:
        """What a failed answer means: already done (an answer), or the RemoteError to raise."""
        code = str(body.get("error") or "")
        if code and code in IDEMPOTENT_OK.get(method, ()):
            return {"ok": True, "already": code}
        if status == 429 or code == "ratelimited":
            retry_after = _retry_after(headers)
            self._limiter.pause(self.team_id, method, retry_after)
            raise RemoteError(
                f"{method} rate limited",
                network="slack",
                status=429,
                code="ratelimited",
                retryable=True,
                retry_after=retry_after,
            ) from cause
        if status is not None and status >= 500:
            raise RemoteError(
                f"{method} failed with HTTP {status}",
                network="slack",
                status=status,
                code=code or None,
                retryable=True,
                outcome_unknown=write,
            ) from cause
        raise RemoteError(
            f"{method}: {code or f'HTTP {status}'}",
            network="slack",
            status=status,
            code=code or None,
            retryable=code in RETRYABLE_CODES,
        ) from cause


def _json_body(params: dict[str, Any]) -> bytes:
    """``params`` as a JSON body: ``None`` left out, our form booleans as JSON's."""
    return json.dumps(
        {
            k: (v == "true" if k in JSON_BOOLEANS and v in ("true", "false") else v)
            for k, v in params.items()
            if v is not None
        },
        separators=(",", ":"),
    ).encode()


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


def _transport_error(method: str, exc: BaseException, write: bool) -> RemoteError:
    """A timeout or a failed connection: worth a retry, and for a write the outcome is unknown
    (a request that was sent may have taken effect before the connection dropped)."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return RemoteError(
            f"{method} timed out", network="slack", retryable=True, outcome_unknown=write
        )
    return RemoteError(
        f"{method} connection failed: {type(exc).__name__}",
        network="slack",
        retryable=True,
        outcome_unknown=write,
    )
