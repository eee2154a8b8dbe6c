"""Weak secrets are refused in production, with a rule fitting each secret (issue #22, Low)."""

from __future__ import annotations

import random

import pytest

from app.settings import Settings

STRONG = {
    "slack_signing_secret": "8f3b2c9e1d7a4f60b5e2c8d9a7f1e3b4",
    "slack_client_id": "111.222",
    "slack_client_secret": "c7d1e9f3a5b2c8d4e6f0a1b3c5d7e9f2",
    "token_encryption_key": "Zq8vR1tYx3Lw9Kp2Nb6Hc4Jd7Fg0Sm5Ae",
    "matrix_homeserver_url": "https://matrix.example.org",
    "matrix_server_name": "example.org",
    "matrix_as_token": "as-Ye5Tn8Qw2Ru4Io7Pl1Mk3Jh6Gf9Ds0Az",
    "matrix_hs_token": "hs-Zq8Xr4Lm2Vt7Nw1Kp5Jd9Hc3Gb6Fy0Sa",
}


def production(**overrides: str) -> Settings:
    return Settings(local_development=False, **(STRONG | overrides))  # type: ignore[arg-type]


def test_strong_secrets_pass() -> None:
    assert production().production_problems() == []


@pytest.mark.parametrize(
    "attr,value,env",
    [
        # The probe's examples.
        ("token_encryption_key", "0123456789" * 4, "TOKEN_ENCRYPTION_KEY"),
        ("slack_signing_secret", "a" * 32, "SLACK_SIGNING_SECRET"),
        ("slack_client_secret", "x", "SLACK_CLIENT_SECRET"),
        ("matrix_as_token", "x", "MATRIX_AS_TOKEN"),
        # Long enough, but a pattern.
        ("slack_signing_secret", "0123456789abcdef0123456789abcdef", "SLACK_SIGNING_SECRET"),
        ("matrix_hs_token", "password" * 5, "MATRIX_HS_TOKEN"),
        ("token_encryption_key", "abababababababababababababababab", "TOKEN_ENCRYPTION_KEY"),
    ],
)
def test_weak_secrets_are_refused(attr: str, value: str, env: str) -> None:
    problems = production(**{attr: value}).production_problems()
    assert len(problems) == 1 and problems[0].startswith(env), problems


def test_secrets_shaped_like_slacks_are_never_refused() -> None:
    # Slack issues 32 lowercase hex digits; a seeded sample of them must all pass.
    rng = random.Random(22)
    for _ in range(2000):
        value = "".join(rng.choice("0123456789abcdef") for _ in range(32))
        assert production(slack_signing_secret=value).production_problems() == [], value


def test_local_development_accepts_sample_secrets() -> None:
    local = Settings(local_development=True, slack_signing_secret="x", token_encryption_key="y")
    assert local.production_problems() == []
