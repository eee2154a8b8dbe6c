"""The real app (Slack + Matrix adapters, outbox worker) on loopback, in its own thread."""

from __future__ import annotations

from sqlalchemy import Engine

from app.core.outbox import RetryPolicy
from app.matrix.attach import wire_slack
from app.matrix.setup import MatrixAdapter, build_matrix
from app.services import Services
from app.settings import Settings
from app.slack.socket_manager import SocketModeManager
from app.slack.socket_mode import SocketTimings
from app.slack.socket_state import Backoff, ConnectionBoard
from app.store.cipher import TokenCipher
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
    """The Slack harness's app with the Matrix adapter attached (and the bot registered)."""

    def __init__(
        self, settings: Settings, engine: Engine, *, port: int, socket_mode: bool = False
    ) -> None:
        super().__init__(
            settings,
            engine,
            port=port,
            retry=RetryPolicy(max_attempts=60, base_delay=0.05, max_delay=0.5),
        )
        self.matrix: MatrixAdapter | None = None
        # With socket_mode, wired as `syncbot serve` does: Socket Mode and the Slack hooks.
        self.socket_mode = socket_mode
        self.sockets: SocketModeManager | None = None

    def extend(self, services: Services, cipher: TokenCipher) -> None:
        self.matrix = build_matrix(
            settings=self.settings,
            sessions=services.sessions,
            cipher=cipher,
            relay=services.relay,
            outbox=services.outbox,
            dispatcher=services.dispatcher,
            authors=services.authors,
            slack=services.slack,
            fetch_avatar=fake_avatar,
            timeout=5.0,
        )
        services.extras["matrix"] = self.matrix
        if self.socket_mode:
            self.sockets = SocketModeManager(
                workspaces=services.slack.workspaces,
                events=services.slack.events,
                board=ConnectionBoard(services.sessions),
                timings=SOCKET_TIMINGS,
            )
            services.extras["socket_mode"] = self.sockets
            wire_slack(self.matrix, services)

    async def on_loop_start(self) -> None:
        assert self.matrix is not None
        await self.matrix.start()
        if self.sockets is not None:
            await self.sockets.start()

    async def on_loop_stop(self) -> None:
        assert self.matrix is not None
        if self.sockets is not None:
            await self.sockets.stop()
        await self.matrix.stop()
