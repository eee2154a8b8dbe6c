"""The real app (Slack + Matrix adapters, outbox worker) on loopback, in its own thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from app.core.outbox import RetryPolicy
from app.matrix.setup import MatrixAdapter, build_matrix
from app.services import Services, build_services
from app.settings import Settings
from app.store.cipher import TokenCipher
from app.store.engine import session_factory

# Ghost avatars: the fake Slack's profile image URLs are not served anywhere, so the test
# supplies the bytes (a distinct PNG-ish payload per URL, to see re-uploads).
AVATARS: dict[str, bytes] = {}


async def fake_avatar(url: str) -> tuple[bytes, str]:
    data = AVATARS.get(url) or b"\x89PNG\r\n\x1a\n" + url.encode()
    return data, "image/png"


class BridgeApp:
    def __init__(self, settings: Settings, engine: Engine, *, port: int) -> None:
        self.settings = settings
        self.engine = engine
        self.port = port
        self.services: Services | None = None
        self.matrix: MatrixAdapter | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BridgeApp:
        cipher = TokenCipher(self.settings.token_encryption_key or "")
        self.services = build_services(
            self.settings,
            engine=self.engine,
            sessions=session_factory(self.engine),
            cipher=cipher,
            retry=RetryPolicy(max_attempts=60, base_delay=0.05, max_delay=0.5),
            slack_rate_scale=1000.0,
            slack_timeout=2.0,
        )
        self.matrix = build_matrix(
            settings=self.settings,
            sessions=self.services.sessions,
            cipher=cipher,
            relay=self.services.relay,
            outbox=self.services.outbox,
            authors=self.services.authors,
            slack=self.services.slack,
            fetch_avatar=fake_avatar,
            timeout=5.0,
        )
        self.services.extras["matrix"] = self.matrix
        app = Starlette(routes=self.services.routes)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        ready = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)

            async def main() -> None:
                assert self.services is not None and self.matrix is not None
                await self.matrix.start()
                worker = asyncio.ensure_future(self.services.outbox.run_forever(idle=0.2))
                serve = asyncio.ensure_future(self._server.serve())
                while not self._server.started:  # noqa: ASYNC110 - uvicorn exposes a flag only
                    await asyncio.sleep(0.01)
                ready.set()
                await serve
                worker.cancel()
                await self.matrix.stop()

            self.loop.run_until_complete(main())

        self._thread = threading.Thread(target=run, daemon=True, name="syncbot-matrix-app")
        self._thread.start()
        if not ready.wait(20):
            raise RuntimeError("app did not start")
        return self

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the app's loop (where its HTTP session lives)."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)
