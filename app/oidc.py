"""Verifying Google-signed OIDC ID tokens (Cloud Scheduler and Cloud Tasks calling us).

Any Google account can mint an ID token for any audience, so the audience alone proves
nothing: the token must also name one of the service accounts we expect.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.jsonbody import json_object

GOOGLE_CERTS = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
LEEWAY = 60
REFRESH = 60.0  # at most one key-set fetch a minute after a successful one
RETRY = 5.0  # ... and a failed fetch is retried this soon, not locked out for a minute


class TokenError(Exception):
    """The bearer token is missing, malformed, expired, or not from an expected caller."""


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def fetch_google_keys() -> dict[str, Any]:
    keys = httpx.get(GOOGLE_CERTS, timeout=5.0).json()
    if not isinstance(keys, dict):
        raise ValueError("Google's certificate list is not a JSON object")
    return keys


def _rsa_keys(jwks: Any) -> dict[str, rsa.RSAPublicKey]:
    keys: dict[str, rsa.RSAPublicKey] = {}
    for jwk in jwks.get("keys", []) if isinstance(jwks, dict) else []:
        if isinstance(jwk, dict) and jwk.get("kty") == "RSA":
            n = int.from_bytes(_b64(jwk["n"]), "big")
            e = int.from_bytes(_b64(jwk["e"]), "big")
            keys[str(jwk["kid"])] = rsa.RSAPublicNumbers(e, n).public_key()
    return keys


class OidcVerifier:
    def __init__(
        self,
        *,
        audience: str,
        invokers: frozenset[str],
        fetch_keys: Callable[[], dict[str, Any]] | None = None,
        issuers: frozenset[str] = GOOGLE_ISSUERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.audience = audience.rstrip("/")
        self.invokers = invokers
        self._fetch = fetch_keys
        self._issuers = issuers
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._next_fetch = 0.0
        self._clock = clock

    def _key(self, kid: str) -> rsa.RSAPublicKey:
        if kid not in self._keys and self._clock() >= self._next_fetch:
            # Google's key set unless given one (looked up late so tests can stand in for it).
            fetch = self._fetch or fetch_google_keys
            try:
                keys = _rsa_keys(fetch())
            except Exception as exc:
                # Not the caller's fault, but nothing to verify with: refuse this token and
                # try again shortly (the caller, a queue or a scheduler, retries).
                self._next_fetch = self._clock() + RETRY
                raise TokenError(f"signing keys unavailable ({type(exc).__name__})") from None
            self._keys = keys
            self._next_fetch = self._clock() + REFRESH
        try:
            return self._keys[kid]
        except KeyError:
            raise TokenError("unknown signing key") from None

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """Return the token's claims, or raise :class:`TokenError`."""
        if not authorization or not authorization.startswith("Bearer "):
            raise TokenError("missing bearer token")
        try:
            head_b64, body_b64, sig_b64 = authorization[7:].strip().split(".")
            header = json_object(_b64(head_b64), max_depth=8)
            claims = json_object(_b64(body_b64), max_depth=8)
            signature = _b64(sig_b64)
        except ValueError:
            raise TokenError("malformed token") from None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise TokenError("malformed token")
        if header.get("alg") != "RS256":
            raise TokenError("unexpected algorithm")
        key = self._key(str(header.get("kid")))
        try:
            key.verify(
                signature, f"{head_b64}.{body_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise TokenError("bad signature") from None
        now = time.time()
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (iat, exp)):
            raise TokenError("malformed token times")
        if not isinstance(claims.get("iss"), str) or claims.get("iss") not in self._issuers:
            raise TokenError("unexpected issuer")
        if str(claims.get("aud", "")).rstrip("/") != self.audience:
            raise TokenError("token is for another audience")
        if not (iat - LEEWAY <= now <= exp + LEEWAY):
            raise TokenError("token expired")
        email = claims.get("email")
        if (
            not isinstance(email, str)
            or email not in self.invokers
            or not claims.get("email_verified")
        ):
            raise TokenError("caller is not an expected service account")
        return claims
