"""Our client side of the homeserver: mautrix intents, one HTTP session, errors mapped once.

mautrix-python raises its own exception per Matrix errcode; the outbox only understands
:class:`~app.errors.RemoteError`, so every call into mautrix goes through :func:`matrix_errors`.
Sends carry the outbox delivery id as the transaction id, so a retried send is idempotent on
the homeserver and retrying 429s, 5xx and connection failures never duplicates.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp
from mautrix.appservice import AppServiceAPI, IntentAPI
from mautrix.appservice.state_store import ASStateStore
from mautrix.client.state_store import MemoryStateStore
from mautrix.errors import (
    MatrixConnectionError,
    MatrixRequestError,
    MForbidden,
    MLimitExceeded,
    MNotFound,
)
from mautrix.types import UserID

from app.errors import RemoteError
from app.matrix.ids import BridgeIds

log = logging.getLogger("syncbot.matrix.homeserver")

# mautrix raises MLimitExceeded without the response body, so the delay the homeserver asked
# for is captured by an aiohttp trace hook. Trace hooks run inside the request's own task, so a
# context variable set there is visible to the caller's error handling and to nobody else.
_RETRY_AFTER: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "matrix_retry_after", default=None
)


async def _capture_retry_after(
    session: aiohttp.ClientSession,
    context: SimpleNamespace,
    params: aiohttp.TraceRequestEndParams,
) -> None:
    response = params.response
    if response.status != 429:
        return
    delay: float | None = None
    try:
        body = await response.json(content_type=None)
        if isinstance(body, dict) and isinstance(body.get("retry_after_ms"), int | float):
            delay = body["retry_after_ms"] / 1000
    except (ValueError, aiohttp.ClientError):
        pass
    header = response.headers.get("Retry-After")
    if delay is None and header and header.isdigit():
        delay = float(header)
    _RETRY_AFTER.set(delay)


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_request_end.append(_capture_retry_after)
    return config


class _StateStore(ASStateStore, MemoryStateStore):
    """mautrix's membership/power-level cache; a cache only, the database holds our facts."""

    def __init__(self) -> None:
        # ASStateStore.__init__ does not chain to the memory store's.
        ASStateStore.__init__(self)
        MemoryStateStore.__init__(self)


@asynccontextmanager
async def matrix_errors(action: str) -> AsyncIterator[None]:
    """Map mautrix and aiohttp failures inside the block to :class:`RemoteError`.

    Args:
        action: what was attempted, for the error message (never a message body).
    """
    _RETRY_AFTER.set(None)
    try:
        yield
    except MLimitExceeded as exc:
        raise RemoteError(
            f"{action}: rate limited",
            network="matrix",
            status=429,
            code=exc.errcode,
            retryable=True,
            retry_after=_RETRY_AFTER.get(),
        ) from exc
    except MatrixRequestError as exc:
        status = exc.http_status
        retryable = status >= 500 or status in (408, 429)
        raise RemoteError(
            f"{action}: {exc.errcode or status} {exc.message}".strip(),
            network="matrix",
            status=status,
            code=exc.errcode,
            retryable=retryable,
            # A 5xx after a send may have stored the event; the txn id makes the retry safe.
            outcome_unknown=status >= 500,
        ) from exc
    except (TimeoutError, MatrixConnectionError, aiohttp.ClientError, OSError) as exc:
        raise RemoteError(
            f"{action}: homeserver unreachable ({type(exc).__name__})",
            network="matrix",
            retryable=True,
            outcome_unknown=True,
        ) from exc


def is_missing(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) is the homeserver saying *not found*."""
    cause = exc.__cause__ if isinstance(exc, RemoteError) else exc
    return isinstance(cause, MNotFound)


def is_forbidden(exc: BaseException) -> bool:
    cause = exc.__cause__ if isinstance(exc, RemoteError) else exc
    return isinstance(cause, MForbidden)


@dataclass(frozen=True)
class _Client:
    session: aiohttp.ClientSession
    api: AppServiceAPI
    bot: IntentAPI


class Homeserver:
    """The bridge's connection to its homeserver: the bot intent and ghost intents.

    The aiohttp session is created lazily inside the running loop (the app may be built in one
    thread and served in another), and closed by :meth:`close`.
    """

    def __init__(self, *, url: str, as_token: str, ids: BridgeIds, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.ids = ids
        self._as_token = as_token
        self._timeout = timeout
        self._state = _StateStore()
        # One client per event loop: `serve` runs on one, but Lambda's tick (and `serve`'s
        # maintenance thread) run rounds in loops of their own, and an aiohttp session only
        # works in the loop it was made in. A loop that is gone takes its client with it.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Client] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def as_token(self) -> str:
        return self._as_token

    def _client(self) -> _Client:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None or client.session.closed:
            session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                trace_configs=[_trace_config()],
            )
            api = AppServiceAPI(
                base_url=self.url,
                bot_mxid=UserID(self.ids.bot),
                token=self._as_token,
                state_store=self._state,
                client_session=session,
                default_retry_count=0,
                # mautrix installs its TraceLogger class on import; its requests log here.
                log=logging.getLogger("syncbot.matrix.client"),  # type: ignore[arg-type]
            )
            bot = IntentAPI(UserID(self.ids.bot), api, state_store=self._state)
            client = self._clients[loop] = _Client(session, api, bot)
        return client

    @property
    def session(self) -> aiohttp.ClientSession:
        return self._client().session

    @property
    def bot(self) -> IntentAPI:
        return self._client().bot

    def intent(self, user_id: str) -> IntentAPI:
        """The intent acting as ``user_id`` (the bot, or a ghost in our namespace)."""
        if user_id == self.ids.bot:
            return self.bot
        return self.bot.user(UserID(user_id))

    async def download(self, server: str, media_id: str) -> tuple[bytes, str]:
        """Fetch media through the authenticated media API (``/_matrix/client/v1/media``).

        Returns:
            The bytes and the content type the homeserver reported.
        """
        url = f"{self.url}/_matrix/client/v1/media/download/{server}/{media_id}"
        headers = {"Authorization": f"Bearer {self._as_token}"}
        async with matrix_errors("media download"):
            async with self.session.get(url, headers=headers) as resp:
                if resp.status != 200:
                    raise RemoteError(
                        f"media download failed with HTTP {resp.status}",
                        network="matrix",
                        status=resp.status,
                        retryable=resp.status >= 500 or resp.status == 429,
                    )
                return await resp.read(), resp.content_type

    async def close(self) -> None:
        """Close the running loop's client (each loop closes its own)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None and not client.session.closed:
            await client.session.close()
