"""The real app (Slack + Matrix adapters, outbox worker) on loopback, in its own thread."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from app.bridge.setup import SlackBridge
from app.core.outbox import RetryPolicy
from app.matrix.setup import MatrixAdapter
from app.settings import Settings
from app.slack.socket_manager import SocketModeManager
from app.slack.socket_mode import SocketTimings
from app.slack.socket_state import Backoff
from tests.slack.harness import AppServer

SOCKET_TIMINGS = SocketTimings(
    backoff=Backoff(base=0.02, cap=0.2, rate_limited=0.2), hello_timeout=5.0, heartbeat=10.0
)

# Ghost avatars: the fake Slack's profile image URLs are not served anywhere, so the test
# supplies the bytes (a distinct PNG-ish payload per URL, to see re-uploads).
AVATARS: dict[str, bytes] = {}


async def fake_avatar(url: str) -> tuple[bytes, str]:
    data = AVATARS.get(url) or b"\x89PNG\r\n\x1a\n" + url.encode()
    return data, "image/png"


class BridgeApp(AppServer):
    """The Slack harness's app with the Matrix adapter and the bridge (and the bot registered)."""

    def __init__(
        self, settings: Settings, engine: Engine, *, port: int, socket_mode: bool = False
    ) -> None:
        super().__init__(
            settings,
            engine,
            port=port,
            retry=RetryPolicy(max_attempts=60, base_delay=0.05, max_delay=0.5),
        )
        # With socket_mode, wired as `syncbot serve` does: Socket Mode started on login.
        self.socket_mode = socket_mode

    def assembly_options(self) -> dict[str, Any]:
        return {
            "socket_mode": self.socket_mode,
            "socket_timings": SOCKET_TIMINGS,
            "matrix": True,
            "fetch_avatar": fake_avatar,
            "matrix_timeout": 5.0,
        }

    @property
    def matrix(self) -> MatrixAdapter:
        assert self.parts is not None and self.parts.matrix is not None
        return self.parts.matrix

    @property
    def bridge(self) -> SlackBridge:
        assert self.parts is not None and self.parts.bridge is not None
        return self.parts.bridge

    @property
    def sockets(self) -> SocketModeManager | None:
        assert self.parts is not None
        return self.parts.socket_mode

    async def on_loop_start(self) -> None:
        await self.matrix.start()
        await self.bridge.start()
        if self.sockets is not None:
            await self.sockets.start()

    async def on_loop_stop(self) -> None:
        if self.sockets is not None:
            await self.sockets.stop()
        await self.bridge.stop()
        await self.matrix.stop()
