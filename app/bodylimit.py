"""Request bodies capped while they stream in, on every route.

Reading a body and then checking its length lets one large POST take as much memory as it
likes (a 200 MB POST to ``/slack/events`` took the process from 108 MB to 515 MB). This
middleware refuses a declared ``Content-Length`` over the route's cap before reading anything,
and stops an undeclared (chunked) body as soon as it passes the cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB
BODY_IDLE_SECONDS = 30.0  # longest pause between two chunks of a body
DEFAULT_LIMIT = 1 * MIB  # Slack payloads, OAuth, tasks: all far smaller
# Peer events inline files up to 10 MB (base64: about 13.4 MB); homeserver transactions carry
# up to 100 events of at most 64 KiB each.
PREFIX_LIMITS: tuple[tuple[str, int], ...] = (
    ("/api/federation/", 17 * MIB),
    ("/_matrix/app/", 8 * MIB),
    ("/transactions/", 8 * MIB),
)


def limit_for(path: str) -> int:
    for prefix, limit in PREFIX_LIMITS:
        if path.startswith(prefix):
            return limit
    return DEFAULT_LIMIT


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimitMiddleware:
    """Caps every HTTP request body (the route's cap from ``limit_for``)."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int] = limit_for) -> None:
        self.app = app
        self._limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    status = 413 if value.isdigit() else 400
                    await _refuse(send, status, limit)
                    return
        received = 0
        body_done = False

        async def capped() -> Message:
            nonlocal received, body_done
            if body_done:
                return await receive()  # waiting for a disconnect: no body deadline
            try:
                # A client that stops sending mid-body does not hold the request open.
                async with asyncio.timeout(BODY_IDLE_SECONDS):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, "request body timed out") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
                body_done = not message.get("more_body", False)
            return message

        await self.app(scope, capped, send)


async def _refuse(send: Send, status: int, limit: int) -> None:
    text = (
        f'{{"error": "request body larger than {limit} bytes", "status": 413}}'
        if status == 413
        else '{"error": "malformed Content-Length", "status": 400}'
    )
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
