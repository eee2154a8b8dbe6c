"""POST /internal/tick: only a Google-signed token for our audience from an expected account."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from app.oidc import OidcVerifier
from app.tick_route import tick_route
from tests.oidc_keys import id_token, jwks, signing_key

AUD = "https://syncbot.example.run.app"
SA = "scheduler@proj.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def key():
    return signing_key()


def token(key, **claims) -> str:
    claims = {"audience": AUD, "email": SA} | claims
    if "aud" in claims:
        claims["audience"] = claims.pop("aud")
    return "Bearer " + id_token(key=key, **claims)


class FakeRuntime:
    def __init__(self) -> None:
        self.ticks = 0

    def run_maintenance(self) -> dict:
        self.ticks += 1
        return {"outbox_catch_up": 0}


def test_tick_accepts_only_the_expected_caller(key) -> None:
    runtime = FakeRuntime()
    verifier = OidcVerifier(audience=AUD, invokers=frozenset({SA}), fetch_keys=lambda: jwks(key))
    client = TestClient(Starlette(routes=[tick_route(runtime, verifier)]))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = [
        None,
        "Bearer not.a.jwt",
        token(key, aud="https://someone-else.example"),
        token(key, email="attacker@gmail.com"),
        token(key, email_verified=False),
        token(key, exp=int(time.time()) - 3600),
        token(key, iss="https://evil.example"),
        token(other),  # signed by a key Google never published
    ]
    for auth in refused:
        headers = {"Authorization": auth} if auth else {}
        assert client.post("/internal/tick", headers=headers).status_code == 401, auth
    assert runtime.ticks == 0
    ok = client.post("/internal/tick", headers={"Authorization": token(key)})
    assert ok.status_code == 200 and ok.json()["ok"] and runtime.ticks == 1
