"""The real app (Slack + Matrix adapters, outbox worker) on loopback, in its own thread."""

from __future__ import annotations

from sqlalchemy import Engine

from app.core.outbox import RetryPolicy
from app.matrix.setup import MatrixAdapter, build_matrix
from app.services import Services
from app.settings import Settings
from app.store.cipher import TokenCipher
from tests.slack.harness import AppServer

# Ghost avatars: the fake Slack's profile image URLs are not served anywhere, so the test
# supplies the bytes (a distinct PNG-ish payload per URL, to see re-uploads).
AVATARS: dict[str, bytes] = {}


async def fake_avatar(url: str) -> tuple[bytes, str]:
    data = AVATARS.get(url) or b"\x89PNG\r\n\x1a\n" + url.encode()
    return data, "image/png"


class BridgeApp(AppServer):
    """The Slack harness's app with the Matrix adapter attached (and the bot registered)."""

    def __init__(self, settings: Settings, engine: Engine, *, port: int) -> None:
        super().__init__(
            settings,
            engine,
            port=port,
            retry=RetryPolicy(max_attempts=60, base_delay=0.05, max_delay=0.5),
        )
        self.matrix: MatrixAdapter | None = None

    def extend(self, services: Services, cipher: TokenCipher) -> None:
        self.matrix = build_matrix(
            settings=self.settings,
            sessions=services.sessions,
            cipher=cipher,
            relay=services.relay,
            outbox=services.outbox,
            authors=services.authors,
            slack=services.slack,
            fetch_avatar=fake_avatar,
            timeout=5.0,
        )
        services.extras["matrix"] = self.matrix

    async def on_loop_start(self) -> None:
        assert self.matrix is not None
        await self.matrix.start()

    async def on_loop_stop(self) -> None:
        assert self.matrix is not None
        await self.matrix.stop()
