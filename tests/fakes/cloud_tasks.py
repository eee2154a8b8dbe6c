"""A fake Cloud Tasks (REST v2 ``tasks.create``) and GCE metadata server on loopback.

Created tasks are dispatched at their ``scheduleTime`` as HTTP requests carrying a Google-style
OIDC ID token for the task's ``oidcToken`` (signed by :mod:`tests.oidc_keys`); a non-2xx answer
is retried after a short backoff, up to ``max_attempts`` — like a queue's retry config. Task
names are unique: creating an existing name answers 409 ALREADY_EXISTS.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import web

from tests.oidc_keys import id_token

ACCESS_TOKEN = "fake-gcp-access-token"


@dataclass
class Task:
    name: str
    schedule: float  # epoch seconds
    request: dict[str, Any]
    created_at: float
    attempts: list[tuple[float, int]] = field(default_factory=list)  # (epoch, status)


class FakeCloudTasks:
    def __init__(self, *, max_attempts: int = 5, retry_backoff: float = 0.2) -> None:
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.tasks: dict[str, Task] = {}
        self.refused_creates = 0
        self.port = 0
        self._lock = threading.Lock()
        self._dispatches: set[asyncio.Future[None]] = set()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    async def _token(self, request: web.Request) -> web.Response:
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header")
        return web.json_response(
            {"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}
        )

    async def _create(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return web.json_response({"error": {"code": 401}}, status=401)
        parent = request.match_info["parent"]
        task = (await request.json())["task"]
        name = task["name"]
        if not name.startswith(f"{parent}/tasks/"):
            return web.json_response({"error": {"code": 400, "message": "bad name"}}, status=400)
        when = datetime.strptime(task["scheduleTime"], "%Y-%m-%dT%H:%M:%S.%fZ")
        with self._lock:
            if name in self.tasks:
                self.refused_creates += 1
                return web.json_response(
                    {"error": {"code": 409, "status": "ALREADY_EXISTS"}}, status=409
                )
            created = self.tasks[name] = Task(
                name=name,
                schedule=when.replace(tzinfo=UTC).timestamp(),
                request=task["httpRequest"],
                created_at=time.time(),
            )
        self._dispatches.add(asyncio.ensure_future(self._dispatch(created)))
        return web.json_response(task)

    async def _dispatch(self, task: Task) -> None:
        # Simulated: Cloud Tasks holds a task until its scheduleTime.
        await asyncio.sleep(max(0.0, task.schedule - time.time()))
        req = task.request
        oidc = req["oidcToken"]
        for _ in range(self.max_attempts):
            headers = dict(req.get("headers", {}))
            token = id_token(audience=oidc["audience"], email=oidc["serviceAccountEmail"])
            headers["Authorization"] = f"Bearer {token}"
            status = -1
            try:
                async with self._session.post(
                    req["url"],
                    data=base64.b64decode(req.get("body", "")),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=30),
                ) as answer:
                    status = answer.status
            except (TimeoutError, aiohttp.ClientError):
                pass
            task.attempts.append((time.time(), status))
            if 200 <= status < 300:
                return
            await asyncio.sleep(self.retry_backoff)  # simulated: the queue's retry backoff

    def start(self) -> FakeCloudTasks:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_get("/token", self._token)
            app.router.add_post("/v2/{parent:.+}/tasks", self._create)

            async def main() -> None:
                self._session = aiohttp.ClientSession()
                self._runner = web.AppRunner(app)
                await self._runner.setup()
                site = web.TCPSite(self._runner, "127.0.0.1", 0)
                await site.start()
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                ready.set()

            self._loop.run_until_complete(main())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True, name="fake-cloud-tasks")
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake Cloud Tasks did not start")
        return self

    def stop(self) -> None:
        async def close() -> None:
            await self._session.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
