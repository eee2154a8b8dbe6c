"""A stand-in for Google's token signer: an RSA key, its JWKS and ID tokens it signs."""

from __future__ import annotations

import base64
import json
import time
from functools import cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KID = "k1"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@cache
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: rsa.RSAPrivateKey | None = None) -> dict[str, Any]:
    nums = (key or signing_key()).public_key().public_numbers()
    return {
        "keys": [
            {
                "kty": "RSA",
                "kid": KID,
                "alg": "RS256",
                "n": b64(nums.n.to_bytes(256, "big")),
                "e": b64(nums.e.to_bytes(3, "big")),
            }
        ]
    }


def id_token(
    *, audience: str, email: str, key: rsa.RSAPrivateKey | None = None, **claims: Any
) -> str:
    """A Google-style ID token (without the ``Bearer`` prefix)."""
    now = int(time.time())
    body = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "iat": now,
        "exp": now + 3600,
        "email": email,
        "email_verified": True,
    } | claims
    head = b64(json.dumps({"alg": "RS256", "kid": KID, "typ": "JWT"}).encode())
    payload = b64(json.dumps(body).encode())
    sig = (key or signing_key()).sign(
        f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{head}.{payload}.{b64(sig)}"
