"""The whole app as an attacker on loopback meets it: every adapter on, production-shaped.

Slack events (signed with the test signing secret), OAuth install, the Matrix appservice
(hs_token), federation (Ed25519-signed peer requests), the OIDC tick route and /health, in one
ASGI app over a migrated SQLite file. The homeserver URL points at a closed loopback port and
the OIDC key set is whatever the test makes ``app.oidc.fetch_google_keys`` return (the
verifier looks it up late), so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, make_url
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app.assembly import build_runtime
from app.core.endpoints import Endpoint
from app.federation import signing
from app.runtime import Runtime
from app.settings import Settings
from app.slack.workspaces import BOT_TOKEN_CONTEXT
from app.store.engine import make_engine
from app.store.migrate import upgrade
from app.store.models import Peer, Workspace
from app.store.syncs import SyncAdmin
from app.web import create_app
from tests.conftest import TEST_KEY

SIGNING_SECRET = "8f3b2c9e1d7a4f60b5e2c8d9a7f1e3b4"
HS_TOKEN = "hs-Zq8Xr4Lm2Vt7Nw1Kp5Jd9Hc3Gb6Fy0Sa"
AS_TOKEN = "as-Ye5Tn8Qw2Ru4Io7Pl1Mk3Jh6Gf9Ds0Az"
CLIENT_SECRET = "c7d1e9f3a5b2c8d4e6f0a1b3c5d7e9f2"
PUBLIC_URL = "https://syncbot.example"
INVOKER = "scheduler@proj.iam.gserviceaccount.com"
ROOM = "!bridged:hs.example"
PEER_ID = "peer-a"
PEER_ANCHOR = "slack:T0PEER/C0PEER"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hostile_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        local_development=False,
        database_backend="sqlite",
        token_encryption_key=TEST_KEY,
        slack_signing_secret=SIGNING_SECRET,
        slack_client_id="1111.2222",
        slack_client_secret=CLIENT_SECRET,
        public_url=PUBLIC_URL,
        federation_enabled=True,
        matrix_homeserver_url=f"http://127.0.0.1:{closed_port()}",
        matrix_server_name="hs.example",
        matrix_as_token=AS_TOKEN,
        matrix_hs_token=HS_TOKEN,
        matrix_permissions={"hs.example": "user"},
        tick_invokers=(INVOKER,),
        # Slack's API on a closed loopback port: deliveries fail fast, nothing leaves.
        slack_api_url=f"http://127.0.0.1:{closed_port()}/api/",
    )
    base.update(overrides)
    return Settings(**base)


class Hostile:
    """The app plus what an attacker and a legitimate peer each hold."""

    def __init__(self, runtime: Runtime, client: TestClient) -> None:
        self.runtime = runtime
        self.client = client
        self.peer_key = Ed25519PrivateKey.generate()

    @property
    def services(self) -> Any:
        return self.runtime.services

    @property
    def federation(self) -> Any:
        return self.services.federation

    def slack_headers(self, body: bytes, ts: str | None = None) -> dict[str, str]:
        stamp = ts or str(int(time.time()))
        base = f"v0:{stamp}:".encode() + body
        digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
        return {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": f"v0={digest}",
            "Content-Type": "application/json",
        }

    def peer_headers(self, body: bytes, path: str, *, key: Any = None, instance: str = PEER_ID):
        headers = signing.sign_headers(key or self.peer_key, instance, "POST", path, body)
        headers["Content-Type"] = "application/json"
        return headers

    def stream_chunked(
        self,
        method: str,
        path: str,
        chunk: bytes,
        chunks: int,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> tuple[int, int]:
        """Offer up to ``chunks`` copies of ``chunk`` as one chunked body (no Content-Length)
        straight to the ASGI app, so the test never holds it whole.

        Returns the response status and how many chunks the app pulled.
        """
        pulled = 0
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            nonlocal pulled
            pulled += 1
            return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"syncbot.example"),
                (b"transfer-encoding", b"chunked"),
                *headers,
            ],
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 443),
            "state": {},
        }
        asyncio.run(self.client.app(scope, receive, send))
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, pulled

    def add_peer(self) -> None:
        """A paired peer ``peer-a`` whose endpoint is in the sync ``fed``."""
        with self.runtime.sessions() as s, s.begin():
            s.add(
                Peer(
                    instance_id=PEER_ID,
                    url="https://peer-a.example",
                    public_key=signing.public_pem(self.peer_key),
                    status="active",
                )
            )
        SyncAdmin(self.runtime.sessions).add(
            "fed", Endpoint.parse(f"peer:{PEER_ID}/{PEER_ANCHOR}")
        )


def build(tmp_path: Path, **overrides: Any) -> tuple[Runtime, Engine]:
    settings = hostile_settings(**overrides)
    engine = make_engine(settings, url=make_url(f"sqlite:///{tmp_path / 'hostile.db'}"))
    upgrade(engine)
    runtime = build_runtime(settings, engine=engine)
    with runtime.sessions() as s, s.begin():
        s.add(
            Workspace(
                team_id="T0LOCAL",
                name="Local",
                bot_user_id="U0BOT",
                bot_id="B0BOT",
                bot_token_enc=runtime.cipher.encrypt("xoxb-local", context=BOT_TOKEN_CONTEXT),
            )
        )
    admin = SyncAdmin(runtime.sessions)
    admin.create("fed")
    admin.add("fed", Endpoint.slack("T0LOCAL", "C0LOCAL"))
    admin.add("fed", Endpoint.matrix(ROOM))
    return runtime, engine


@contextmanager
def hostile_app(tmp_path: Path, *, lifespan: bool = True, **overrides: Any) -> Iterator[Hostile]:
    runtime, engine = build(tmp_path, **overrides)
    app: Starlette = create_app(runtime, lifespan=lifespan)
    try:
        with TestClient(
            app, base_url="https://syncbot.example", raise_server_exceptions=False
        ) as c:
            hostile = Hostile(runtime, c)
            hostile.add_peer()
            yield hostile
    finally:
        runtime.close()
        engine.dispose()


def dumps(data: Any) -> bytes:
    return json.dumps(data).encode()
