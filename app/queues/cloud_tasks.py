"""GCP: Cloud Tasks calls ``POST /internal/deliver`` on the service, one task per notice.

A task carries one delivery id and an OIDC token minted as ``SYNCBOT_DELIVERY_INVOKER``; the
route accepts no other caller. When the row must wait (``Retry-After``, backoff, an earlier row
of its target) the route schedules a follow-up task for exactly then and answers 200, so Cloud
Tasks' own retry backoff is kept for real failures (an error answer: the task is retried).

Task names make creation idempotent (Cloud Tasks refuses a name it has seen); the name includes
the attempt count and the scheduled millisecond, so a follow-up never collides with its
predecessor.
The REST API is called with httpx and the metadata server's access token — the whole client
library (gRPC and all) would be a heavy dependency for one call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.core.dispatch import Dispatcher, Notifier
from app.core.ports import PendingDelivery
from app.errors import RemoteError
from app.oidc import OidcVerifier, TokenError

log = logging.getLogger("syncbot.queues.cloud_tasks")

DELIVERY_PATH = "/internal/deliver"  # infra.contract.DELIVERY_PATH (the bundle ships no infra/)
# Module attributes so tests can point them at a fake Cloud Tasks and a fake metadata server.
CLOUD_TASKS_API = "https://cloudtasks.googleapis.com/v2"
METADATA_TOKEN_URL = (
    "http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/token"
)
MAX_BODY = 4096
MIN_FOLLOW_UP = 0.2  # seconds


def delivery_url(public_url: str) -> str:
    return public_url.rstrip("/") + DELIVERY_PATH


class MetadataToken:
    """The runtime service account's access token, cached until shortly before it expires."""

    def __init__(self) -> None:
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self, http: httpx.AsyncClient) -> str:
        async with self._lock:
            if time.monotonic() < self._expires - 60:
                return self._token
            answer = await http.get(METADATA_TOKEN_URL, headers={"Metadata-Flavor": "Google"})
            if answer.status_code != 200:
                raise RemoteError(
                    "no access token from the metadata server",
                    network="gcp",
                    status=answer.status_code,
                    retryable=True,
                )
            data = answer.json()
            self._token = str(data["access_token"])
            self._expires = time.monotonic() + float(data.get("expires_in", 300))
            return self._token


class CloudTasksNotifier:
    name = "cloud_tasks"
    remote = True

    def __init__(self, *, queue: str, invoker: str, url: str, audience: str) -> None:
        self.queue = queue.strip("/")
        self.invoker = invoker
        self.url = url
        self.audience = audience
        self._token = MetadataToken()
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10.0)
        return self._http

    async def notify(self, pending: Sequence[PendingDelivery]) -> None:
        await asyncio.gather(*(self._create(p) for p in pending))

    def task(self, p: PendingDelivery, *, now: datetime | None = None) -> dict[str, Any]:
        """The Cloud Tasks task (REST shape) for one notice."""
        when = (now or datetime.now(UTC)) + timedelta(seconds=p.due_in)
        task_id = f"{p.uid}-{p.attempts}-{int(when.timestamp() * 1000)}"
        body = json.dumps({"delivery": p.uid}).encode()
        return {
            "name": f"{self.queue}/tasks/{task_id}",
            "scheduleTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "httpRequest": {
                "httpMethod": "POST",
                "url": self.url,
                "headers": {"Content-Type": "application/json"},
                "body": base64.b64encode(body).decode(),
                "oidcToken": {"serviceAccountEmail": self.invoker, "audience": self.audience},
            },
        }

    async def _create(self, p: PendingDelivery) -> None:
        http = self._client()
        token = await self._token.get(http)
        answer = await http.post(
            f"{CLOUD_TASKS_API}/{self.queue}/tasks",
            json={"task": self.task(p)},
            headers={"Authorization": f"Bearer {token}"},
        )
        if answer.status_code == 409:
            return  # this very task exists already: creation is idempotent by name
        if answer.status_code >= 300:
            raise RemoteError(
                f"Cloud Tasks refused a task: {answer.text[:200]}",
                network="gcp",
                status=answer.status_code,
                retryable=True,
            )


def delivery_route(dispatcher: Dispatcher, notifier: Notifier, verifier: OidcVerifier) -> Route:
    """``POST /internal/deliver``: one Cloud Tasks notice."""

    async def deliver(request: Request) -> JSONResponse:
        try:
            await asyncio.to_thread(verifier.verify, request.headers.get("authorization"))
        except TokenError as exc:
            return JSONResponse({"error": str(exc)}, status_code=401)
        body = await request.body()
        try:
            if len(body) > MAX_BODY:
                raise ValueError("too large")
            uid = json.loads(body)["delivery"]
            if not isinstance(uid, str) or not uid:
                raise ValueError("no delivery id")
        except (ValueError, KeyError, TypeError):
            # A malformed task can never succeed; the queue's bounded retry config ends it.
            return JSONResponse({"error": 'expected {"delivery": "<id>"}'}, status_code=400)
        try:
            waiting = await dispatcher.work(uid)
            if waiting is not None:
                # Never a follow-up for "right now": a task that fires a hair early must not
                # spin, and the wait is at least what the row still needs.
                follow_up = replace(waiting, due_in=max(waiting.due_in, MIN_FOLLOW_UP))
                await notifier.notify([follow_up])
        except Exception:
            log.exception("delivery task failed", extra={"delivery": uid})
            # Cloud Tasks retries the task with its backoff; the row is still pending.
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        return JSONResponse(
            {"ok": True, "settled": waiting is None, "due_in": waiting and waiting.due_in}
        )

    return Route(DELIVERY_PATH, deliver, methods=["POST"])
